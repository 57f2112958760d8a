"""One run end to end: what it leaves behind, that it reproduces, and how it fails."""

import contextlib
import fcntl
import json
import logging
import math
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import TINY, shared_corpus, write_corpus
from lstm_sweep.data.datamodule import LMDataModule
from lstm_sweep.errors import ConfigError, DataError, DivergenceError
from lstm_sweep.run.callbacks import DivergenceWatch
from lstm_sweep.run.module import LitLanguageModel, SplitResult
from lstm_sweep.run.train import record_run, train

LSTM_TRAIN = str(Path(sys.executable).parent / "lstm-train")


def test_same_seed_same_numbers_other_seed_other_numbers(make_cfg, tmp_path):
    a = train(make_cfg("seed=3"), tmp_path / "a")
    b = train(make_cfg("seed=3"), tmp_path / "b")
    c = train(make_cfg("seed=4"), tmp_path / "c")
    assert a["test/loss"] == b["test/loss"] and a["val/ppl"] == b["val/ppl"]
    assert a["test/loss"] != c["test/loss"]


@pytest.mark.parametrize("cell", ["one", "two", "torch"])
def test_every_cell_trains_and_logs_the_synthetic_oracle(make_cfg, tmp_path, cell):
    metrics = train(make_cfg(f"model.cell={cell}", "model.num_layers=2", "trainer.max_epochs=1"), tmp_path)
    assert metrics["test/oracle_ppl"] < metrics["test/ppl"] < 200  # learned, not past the oracle
    assert math.isclose(metrics["test/ppl"], math.exp(metrics["test/loss"]))


def evaluate_by_hand(checkpoint: Path, datamodule: LMDataModule, split: str) -> float:
    """Mean NLL over a split, one window at a time in float64: the definition of test/loss."""
    module = LitLanguageModel.load_from_checkpoint(checkpoint, map_location="cpu")
    model = module.model.double().eval()
    inputs, targets = datamodule.tensors[split]
    with torch.no_grad():
        logits, _ = model(inputs, last_only=True)
        return torch.nn.functional.cross_entropy(logits, targets, reduction="mean").item()


@pytest.mark.parametrize("which", ["last", "best"])
def test_test_loss_is_the_token_weighted_mean_nll_of_the_chosen_checkpoint(make_cfg, tmp_path, which):
    cfg = make_cfg(f"trainer.test_checkpoint={which}", "trainer.max_epochs=3", "data.eval_batch_size=7")
    metrics = train(cfg, tmp_path)
    datamodule = LMDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup()
    checkpoints = tmp_path / "checkpoints"
    chosen = checkpoints / "last.ckpt" if which == "last" else next(checkpoints.glob("best-*.ckpt"))
    assert abs(evaluate_by_hand(chosen, datamodule, "test") - metrics["test/loss"]) < 1e-5
    if which == "best":
        assert chosen.name == f"best-epoch{metrics['best_val/epoch']}.ckpt"


def test_last_checkpoint_is_the_final_epoch_even_after_validation_stops_improving(make_cfg, tmp_path, monkeypatch):
    original = LitLanguageModel.result

    def worsening(self, split):  # val/ppl gets worse every epoch: epoch 0 stays the best
        result = original(self, split)
        if split != "val" or result is None:
            return result
        return SplitResult(result.loss, result.ppl + 1000.0 * self.current_epoch, result.tokens)

    monkeypatch.setattr(LitLanguageModel, "result", worsening)
    cfg = make_cfg("trainer.max_epochs=3", "trainer.test_checkpoint=last")
    metrics = train(cfg, tmp_path)
    checkpoints = tmp_path / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best-epoch0.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == metrics["steps"]
    assert "optimizer_states" not in last  # weights only: resuming is resume.ckpt's
    datamodule = LMDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup()
    assert abs(evaluate_by_hand(checkpoints / "last.ckpt", datamodule, "test") - metrics["test/loss"]) < 1e-5
    best = evaluate_by_hand(checkpoints / "best-epoch0.ckpt", datamodule, "test")
    assert abs(best - metrics["test/loss"]) > 1e-3  # the final weights, not the best epoch's


def test_testing_the_best_epoch_leaves_the_last_epochs_numbers_in_metrics(make_cfg, tmp_path, monkeypatch):
    """Testing reloads the tested checkpoint's state into the module and callbacks; the run's
    summary must still be of its last epoch and every epoch."""
    original = LitLanguageModel.result

    def worsening(self, split):  # epoch 0 stays the best
        result = original(self, split)
        if split != "val" or result is None:
            return result
        return SplitResult(result.loss, result.ppl + 1000.0 * self.current_epoch, result.tokens)

    monkeypatch.setattr(LitLanguageModel, "result", worsening)
    metrics = train(make_cfg("trainer.max_epochs=3", "trainer.test_checkpoint=best"), tmp_path)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert metrics["epochs"] == 3 and metrics["best_val/epoch"] == 0
    assert metrics["train/ppl"] == pytest.approx(events.Scalars("train/ppl")[-1].value, rel=1e-6)


def test_every_epoch_leaves_one_progress_line_in_the_log(make_cfg, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lstm_sweep.run.train")
    metrics = train(
        make_cfg(
            "trainer.max_epochs=2",
            "trainer.progress_bar=false",
            "optim.lr=0.004",
            "schedule=exponential",
            "schedule.start_epoch=1",
            "schedule.factor=0.5",
        ),
        tmp_path,
    )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(" in ")[0] for line in lines] == ["epoch 0 (1/2)", "epoch 1 (2/2)"]
    assert ", lr 0.004, " in lines[0] and ", lr 0.002, " in lines[1]  # the lr each epoch trained with
    best = f"best {metrics['best_val/ppl']:.2f} after epoch {metrics['best_val/epoch']}"
    assert f"val ppl {metrics['val/ppl']:.2f} ({best})" in lines[-1]
    assert f"train ppl {metrics['train/ppl']:.2f}, " in lines[-1] and "tokens/s" in lines[-1]


@pytest.mark.slow
def test_cli_run_folder_holds_config_events_checkpoints_and_metrics(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    # From an unrelated working directory: the configs ship inside the package.
    proc = subprocess.run(
        [LSTM_TRAIN, *TINY, f"data.cache_dir={cache_dir}", "model.cell=two", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "litlogger" not in proc.stdout + proc.stderr  # Lightning's product tip is filtered out
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "vocab.json",
        "checkpoints/last.ckpt",
        "metrics.json",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["best_val/epoch"] in (0, 1)

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/ppl",
        "val/loss",
        "val/ppl",
        "test/loss",
        "test/ppl",
        "train/lr",
        "train/tokens_per_sec",
        "test/oracle_ppl",
    } <= tags
    assert "hp_metric" not in tags
    assert len(events.Scalars("val/ppl")) == 2 and len(events.Scalars("train/loss")) > 2
    assert events.Scalars("test/ppl")[-1].value == pytest.approx(metrics["test/ppl"], rel=1e-6)
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


@pytest.mark.slow
def test_cli_bad_config_is_one_clear_line_and_exit_status_1(tmp_path, cache_dir):
    proc = subprocess.run(
        [LSTM_TRAIN, *TINY, f"data.cache_dir={cache_dir}", "model.cell=three", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "model.cell='three' is not a cell: neither a built-in or registered one (one, two, gru, rnn" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_config_stops_the_run_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.num_layers=0 must be an integer >= 1"):
        train(make_cfg("model.num_layers=0"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_missing_corpus_names_the_path(make_cfg, tmp_path):
    with pytest.raises(DataError, match=f"corpus folder {tmp_path / 'nowhere'} does not exist"):
        train(make_cfg("data=text", f"data.root={tmp_path / 'nowhere'}"), tmp_path / "run")


def test_text_corpus_with_an_empty_split_names_the_file(make_cfg, tmp_path):
    root = write_corpus(tmp_path / "corpus", "a b c\n", test="")
    with pytest.raises(DataError, match=f"{root / 'test.txt'} is empty"):
        train(make_cfg("data=text", f"data.root={root}"), tmp_path / "run")


def test_nan_loss_at_the_first_step_stops_the_run(make_cfg, tmp_path):
    with pytest.raises(DivergenceError, match=r"training loss became nan at step 0 \(epoch 0, batch 0\)"):
        train(make_cfg("model.decoder_bias_init=nan"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def poison_weights_after(monkeypatch, batch: int) -> None:
    """Make the decoder NaN right after training batch `batch` of the first epoch."""
    original = LitLanguageModel.on_train_batch_end

    def poisoned(self, outputs, batch_, batch_idx):
        original(self, outputs, batch_, batch_idx)
        if self.current_epoch == 0 and batch_idx == batch:
            with torch.no_grad():
                self.model.decoder.bias.fill_(float("nan"))

    monkeypatch.setattr(LitLanguageModel, "on_train_batch_end", poisoned)


def test_loss_turning_nan_mid_epoch_names_that_step(make_cfg, tmp_path, monkeypatch):
    poison_weights_after(monkeypatch, batch=4)
    with pytest.raises(DivergenceError, match=r"training loss became nan at step 5 \(epoch 0, batch 5\)"):
        train(make_cfg(), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("every", [3, 1000])
def test_deferred_divergence_check_still_names_the_first_bad_step(make_cfg, tmp_path, monkeypatch, every):
    """On an accelerator the loss is checked every log_every_n_steps (and at epoch end), not
    every step; the error must still name the step where the loss first went bad."""
    original = DivergenceWatch.on_fit_start

    def deferred(self, trainer, pl_module):
        original(self, trainer, pl_module)
        self.check_every = every

    monkeypatch.setattr(DivergenceWatch, "on_fit_start", deferred)
    poison_weights_after(monkeypatch, batch=4)
    with pytest.raises(DivergenceError, match=r"training loss became nan at step 5 \(epoch 0, batch 5\)"):
        train(make_cfg(), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_validation_loss_turning_nan_names_the_epoch(make_cfg, tmp_path, monkeypatch):
    poison_weights_after(monkeypatch, batch=3)
    with pytest.raises(DivergenceError, match=r"validation loss became nan after epoch 0 \(step 4\)"):
        train(make_cfg("trainer.limit_train_batches=4"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_a_huge_but_finite_loss_fails_the_run_as_diverged_never_finished(make_cfg, tmp_path):
    with pytest.raises(DivergenceError, match=r"(loss became|perplexity overflows).* the run stops"):
        record_run(make_cfg("optim=sgd", "optim.lr=1e6", "trainer.max_epochs=1"), tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed" and "DivergenceError" in status["error"]
    assert not (tmp_path / "metrics.json").exists()


def test_a_finished_run_is_never_overwritten(make_cfg, tmp_path):
    train(make_cfg("trainer.max_epochs=1"), tmp_path)
    before = (tmp_path / "metrics.json").read_bytes()
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(make_cfg("trainer.max_epochs=1"), tmp_path)
    assert (tmp_path / "metrics.json").read_bytes() == before


def test_report2021_experiment_is_the_course_setting(make_cfg):
    cfg = make_cfg("experiment=report2021", "data.root=penn_small", tiny=False)
    assert cfg.data.name == "penn_small" and cfg.data.protocol == "window"
    assert (cfg.data.n_step, cfg.data.batch_size, cfg.data.unk_token) == (5, 128, "<unk_word>")
    assert cfg.data.shuffle is False  # windows in corpus order, as the report's numbers indicate
    assert (cfg.model.embedding_size, cfg.model.hidden_size, cfg.model.init) == (256, 256, "linear")
    assert cfg.model.decoder_bias_init == 1.0
    assert (cfg.optim._target_, cfg.optim.lr, cfg.trainer.max_epochs) == ("torch.optim.Adam", 0.0005, 5)
    assert cfg.trainer.test_checkpoint == "last"


@pytest.mark.slow
def test_penn_small_trains_with_the_course_vocabulary(make_cfg, tmp_path):
    cfg = make_cfg(
        "experiment=report2021",
        f"data.root={shared_corpus('penn_small')}",
        "model.embedding_size=32",
        "model.hidden_size=32",
        "optim.lr=0.01",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=100",
        "trainer.progress_bar=false",
        tiny=False,
    )
    metrics = train(cfg, tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert len(vocab["itos"]) == 7611 + 4 and vocab["unk"] == "<unk_word>"
    # 100 batches learn at least the word frequencies: a uniform guess over the vocabulary
    # scores 7,615; this run measured 683
    assert metrics["test/ppl"] < len(vocab["itos"]) / 8 and "test/oracle_ppl" not in metrics


def test_the_step_loss_is_logged_at_every_log_every_n_steps_point_and_only_there(make_cfg, tmp_path):
    """The step loss is logged only on the steps Lightning writes (a per-step log cost ~4% of
    a step): every one of those points must still be there, across epochs."""
    metrics = train(make_cfg("trainer.max_epochs=2", "trainer.log_every_n_steps=3"), tmp_path)
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(2, metrics["steps"], 3))


@pytest.mark.slow
def test_the_progress_bar_shows_on_a_terminal_and_stays_out_of_a_redirected_stdout(tmp_path, cache_dir):
    args = [LSTM_TRAIN, *[o for o in TINY if not o.startswith("trainer.progress_bar")], f"data.cache_dir={cache_dir}"]
    piped = subprocess.run([*args, f"hydra.run.dir={tmp_path / 'piped'}"], capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert piped.stdout == ""  # not a byte of progress bar in a log file or a pipe
    main, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal's size
    proc = subprocess.Popen(
        [*args, f"hydra.run.dir={tmp_path / 'terminal'}"], stdout=terminal, stderr=subprocess.DEVNULL
    )
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the run has closed its end
        while chunk := os.read(main, 65536):
            shown += chunk
    os.close(main)
    assert proc.wait(timeout=300) == 0
    assert b"Epoch 1" in shown and b"it/s" in shown  # Lightning's bar, on the terminal


def test_a_run_returns_its_objective_for_an_optimizing_sweeper_and_nan_when_it_did_not_finish(make_cfg, tmp_path):
    from lstm_sweep.cli.train import objective

    cfg = make_cfg("trainer.max_epochs=1")
    metrics = train(cfg, tmp_path)
    assert objective(cfg, metrics) == metrics["best_val/ppl"]
    cfg.objective = "test/ppl"
    assert objective(cfg, metrics) == metrics["test/ppl"]
    assert math.isnan(objective(cfg, None))  # a failed run: an optimizing sweeper marks the trial failed


def test_a_model_too_large_for_memory_is_refused_in_one_line_and_recorded(make_cfg, tmp_path):
    """torch says it in a traceback from its allocator; the run says which settings, and fails."""
    cfg = make_cfg("model.embedding_size=100000000000")  # 200 words × 1e11 × 4 bytes
    with pytest.raises(ConfigError, match=r"the model \(model.embedding_size=100000000000, .* does not fit in memory"):
        record_run(cfg, tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "does not fit in memory" in status["error"]


def test_a_dollar_or_tilde_in_the_run_folder_is_a_name_not_a_variable(make_cfg, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("LSTM_SWEEP_ELSEWHERE", str(elsewhere))
    run_dir = tmp_path / "lr=$LSTM_SWEEP_ELSEWHERE,tag=~x"
    train(make_cfg("trainer.max_epochs=1"), run_dir)
    assert list(run_dir.glob("events.out.tfevents.*")), "the run's scalars are in its own folder"
    assert not elsewhere.exists()
