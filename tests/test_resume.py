"""A run killed with SIGKILL and resumed ends exactly (==) as the same run never interrupted."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import STREAM, TINY, compose_run, outcome, run_until_killed
from lstm_sweep.errors import ConfigError
from lstm_sweep.run.train import record_run

CASES = {
    "window, dropout, Adam, plateau": [
        "model.cell=two",
        "model.num_layers=2",
        "model.dropout=0.3",
        "model.embedding_dropout=0.2",
        "schedule=plateau",
    ],
    "window in order, SGD, exponential, early stopping": [
        "data.shuffle=false",
        "optim=sgd",
        "optim.lr=2.0",
        "schedule=exponential",
        "schedule.start_epoch=1",
        "trainer.early_stopping_patience=1",
    ],
    "stream, dropout, clipping": [*STREAM, "model.dropout=0.25", "trainer.gradient_clip_val=0.5"],
}


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid-epoch", "epoch start"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_run_killed_and_resumed_equals_the_run_never_interrupted(tmp_path, cache_dir, case, where):
    overrides = [
        *TINY,
        f"data.cache_dir={cache_dir}",
        "trainer.max_epochs=3",
        "trainer.log_every_n_steps=3",
        "trainer.checkpoint_every_n_steps=" + ("7" if where == "mid-epoch" else "100000"),
        *CASES[case],
    ]
    record_run(compose_run(*overrides), tmp_path / "whole")
    whole = outcome(tmp_path / "whole")
    per_epoch = whole[0]["steps"] // whole[0]["epochs"]
    # mid-epoch: 3 steps after the checkpoint of step 7·k; epoch start: 1 step into epoch 2
    kill_at = per_epoch + 10 if where == "mid-epoch" else 2 * per_epoch + 1
    run_until_killed(tmp_path / "resumed", kill_at, overrides)
    assert (tmp_path / "resumed" / "checkpoints" / "resume.ckpt").is_file()
    record_run(compose_run(*overrides), tmp_path / "resumed")
    assert outcome(tmp_path / "resumed") == whole
    log = tmp_path / "resumed" / "train.log"
    assert not log.exists() or "resuming from" in log.read_text()


@pytest.mark.slow
def test_resuming_with_settings_that_change_results_is_refused_and_changes_nothing(tmp_path, cache_dir):
    overrides = [*TINY, f"data.cache_dir={cache_dir}", "trainer.checkpoint_every_n_steps=5"]
    run_until_killed(tmp_path / "run", 12, overrides)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"other settings: model.hidden_size \(16 → 32\), optim.lr"):
        record_run(compose_run(*overrides, "model.hidden_size=32", "optim.lr=0.01"), tmp_path / "run")
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # Keys that do not change results may differ; the run then resumes and finishes.
    record_run(
        compose_run(*overrides, "trainer.progress_bar=true", "trainer.checkpoint_every_n_steps=9"), tmp_path / "run"
    )
    assert (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "run" / "checkpoints" / "resume.ckpt").exists()  # a finished run needs none


@pytest.mark.slow
def test_without_resuming_the_interrupted_attempt_is_kept_aside_and_the_run_starts_over(tmp_path, cache_dir):
    overrides = [*TINY, f"data.cache_dir={cache_dir}", "trainer.checkpoint_every_n_steps=5"]
    run_until_killed(tmp_path / "run", 12, overrides)
    record_run(compose_run(*overrides, "trainer.resume=false"), tmp_path / "run")
    old = tmp_path / "run" / "attempts" / "0"
    assert (old / "checkpoints" / "resume.ckpt").is_file() and list(old.glob("events.out.tfevents.*"))
    record_run(compose_run(*overrides), tmp_path / "whole")
    assert outcome(tmp_path / "run") == outcome(tmp_path / "whole")  # one attempt's events, not two


@pytest.mark.slow
def test_lstm_train_on_a_finished_folder_refuses_and_rewrites_nothing(tmp_path, cache_dir):
    cli = [
        str(Path(sys.executable).parent / "lstm-train"),
        *TINY,
        f"data.cache_dir={cache_dir}",
        "trainer.max_epochs=1",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    assert subprocess.run(cli, capture_output=True, text=True).returncode == 0
    record = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert (tmp_path / "run" / ".hydra" / "config.yaml") in record
    proc = subprocess.run([*cli, "model.hidden_size=32"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "holds a finished run with other settings: model.hidden_size (16 → 32)" in proc.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == record


@pytest.mark.slow
def test_a_damaged_resume_checkpoint_is_named_and_nothing_is_lost(tmp_path, cache_dir):
    overrides = [*TINY, f"data.cache_dir={cache_dir}", "trainer.checkpoint_every_n_steps=5"]
    run_until_killed(tmp_path / "run", 12, overrides)
    checkpoint = tmp_path / "run" / "checkpoints" / "resume.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # as another program might leave it
    with pytest.raises(ConfigError, match=f"{checkpoint} cannot be read .*trainer.resume=false"):
        record_run(compose_run(*overrides), tmp_path / "run")
    assert checkpoint.stat().st_size == 1000 and not (tmp_path / "run" / "attempts").exists()


@pytest.mark.slow
def test_a_run_started_before_the_fused_step_resumes_with_the_step_it_had(tmp_path, cache_dir):
    """Its checkpoint's settings lack optim.fused: it ran torch's foreach step, so
    optim.fused=false resumes it and the fused default is refused, naming the key."""
    overrides = [*TINY, f"data.cache_dir={cache_dir}", "trainer.checkpoint_every_n_steps=5"]
    run_until_killed(tmp_path / "run", 12, [*overrides, "optim.fused=false"])
    checkpoint_file = tmp_path / "run" / "checkpoints" / "resume.ckpt"
    checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=True)
    del checkpoint["hyper_parameters"]["config"]["optim"]["fused"]  # as an older version wrote it
    torch.save(checkpoint, checkpoint_file)
    with pytest.raises(ConfigError, match=r"optim.fused \(False → True\)"):
        record_run(compose_run(*overrides), tmp_path / "run")
    record_run(compose_run(*overrides, "optim.fused=false"), tmp_path / "run")
    record_run(compose_run(*overrides, "optim.fused=false"), tmp_path / "whole")
    assert outcome(tmp_path / "run") == outcome(tmp_path / "whole")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_run_moved_or_copied_while_interrupted_tests_its_own_best_epoch(tmp_path, cache_dir, how):
    """resume.ckpt names the checkpoints relative to the run folder: resumed elsewhere, the run
    still knows its best epoch (here the first, before the kill), tests it, and leaves no stale
    best file; a copy's resume leaves the original as it was."""
    import shutil

    overrides = [
        *TINY,
        f"data.cache_dir={cache_dir}",
        "trainer.max_epochs=4",
        "optim.lr=0.2",  # the first epoch is the best: later ones overshoot
        "trainer.test_checkpoint=best",
        "trainer.checkpoint_every_n_steps=100000",
    ]
    record_run(compose_run(*overrides), tmp_path / "whole")
    whole = outcome(tmp_path / "whole")
    assert whole[0]["best_val/epoch"] == 0
    run_until_killed(tmp_path / "here", 2 * (whole[0]["steps"] // whole[0]["epochs"]) + 1, overrides)
    there = tmp_path / "elsewhere" / "run"
    there.parent.mkdir()
    if how == "moved":
        (tmp_path / "here").rename(there)
    else:
        shutil.copytree(tmp_path / "here", there)
        original = {p: p.read_bytes() for p in (tmp_path / "here").rglob("*") if p.is_file()}
    record_run(compose_run(*overrides), there)
    assert outcome(there) == whole
    kept = sorted(p.name for p in (there / "checkpoints").iterdir())
    assert kept == sorted(p.name for p in (tmp_path / "whole" / "checkpoints").iterdir())
    if how == "copied":
        assert {p: p.read_bytes() for p in (tmp_path / "here").rglob("*") if p.is_file()} == original
