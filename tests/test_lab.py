"""The recurrent-LM lab: stream protocol, characters, single-file corpora, tying, schedules,
early stopping and generation."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import STREAM, as_dict, compose_run, logged, shared_corpus, write_corpus
from lstm_sweep.analysis.compare import reference_setting
from lstm_sweep.data.corpus import read_corpus, tokenize_lines
from lstm_sweep.data.datamodule import LMDataModule
from lstm_sweep.data.protocols import (
    StreamBatches,
    StreamProtocol,
    batchify,
    stream_tensor,
)
from lstm_sweep.data.vocab import Vocab
from lstm_sweep.errors import DataError
from lstm_sweep.model.lm import LanguageModel
from lstm_sweep.run.generate import generate, load_run
from lstm_sweep.run.module import LitLanguageModel
from lstm_sweep.run.train import train

EXPERIMENTS = Path(__file__).parent.parent / "experiments"


def test_stream_batches_of_a_hand_computed_toy_stream():
    vocab = Vocab.build([["a", "b", "c"], ["d", "e"]], unk="<unk>")  # a=4 b=5 c=6 d=7 e=8, <eos>=3
    stream = stream_tensor([["a", "b", "c"], ["d", "e"]], vocab)
    assert stream.tolist() == [4, 5, 6, 3, 7, 8, 3]
    columns = batchify(stream, 2)  # 7 tokens → 2 columns of 3, the last token dropped
    assert columns.tolist() == [[4, 3], [5, 7], [6, 8]]
    batches = StreamBatches(columns, bptt=2)
    assert len(batches) == 1
    x, y = batches[0]
    assert x.tolist() == [[4, 5], [3, 7]] and y.tolist() == [[5, 6], [7, 8]]
    longer = StreamBatches(batchify(torch.arange(20), 2), bptt=4)  # columns 0..9 and 10..19
    shapes = [tuple(longer[i][0].shape) for i in range(len(longer))]
    assert shapes == [(2, 4), (2, 4), (2, 1)]  # the last batch is shorter
    assert longer[2][1].tolist() == [[9], [19]]


def test_the_stream_protocol_carries_the_hidden_state_from_batch_to_batch():
    torch.manual_seed(0)
    model = LanguageModel(30, 8, 8, cell="two").eval()
    tokens = torch.randint(4, 30, (2, 9), generator=torch.Generator().manual_seed(0))
    first, second = (tokens[:, :4], tokens[:, 1:5]), (tokens[:, 4:8], tokens[:, 5:9])
    with torch.no_grad():
        nll_1, count_1, state = StreamProtocol.nll(model, first, None)
        nll_2, count_2, _ = StreamProtocol.nll(model, second, state)
        logits, _ = model(tokens[:, :8])  # the two batches as one sequence
        whole = torch.nn.functional.cross_entropy(logits.reshape(-1, 30), tokens[:, 1:9].reshape(-1), reduction="sum")
    assert torch.allclose(nll_1 + nll_2, whole, atol=1e-4) and count_1 + count_2 == 16
    assert all(not t.requires_grad for layer in state for t in layer)  # detached: truncated BPTT


def test_each_split_starts_its_epoch_from_a_zero_state(make_cfg):
    torch.manual_seed(0)
    module = LitLanguageModel(as_dict(make_cfg(*STREAM)), vocab_size=30).eval()
    tokens = torch.randint(4, 30, (2, 9), generator=torch.Generator().manual_seed(0))
    first, second = (tokens[:, :4], tokens[:, 1:5]), (tokens[:, 4:8], tokens[:, 5:9])
    with torch.no_grad():
        module.on_validation_epoch_start()
        module.validation_step(first, 0)
        module.validation_step(second, 1)
        module.on_test_epoch_start()
        module.test_step(second, 0)  # from zero, not from validation's state
        alone, _ = module.model(second[0])
        expected = torch.nn.functional.cross_entropy(alone.reshape(-1, 30), second[1].reshape(-1), reduction="sum")
    assert module.result("test").loss == pytest.approx(expected.item() / 8, rel=1e-5)
    assert module.result("val").tokens == 16
    module.on_validation_epoch_start()  # a new epoch: nothing summed yet
    assert module.result("val") is None


@pytest.mark.parametrize("cell", ["one", "gru", "rnn"])
def test_stream_protocol_trains_end_to_end(make_cfg, tmp_path, cell):
    metrics = train(make_cfg(*STREAM, f"model.cell={cell}", "trainer.max_epochs=2"), tmp_path)
    vocabulary = len(json.loads((tmp_path / "vocab.json").read_text())["itos"])
    # Learned something: well below a uniform guess over the vocabulary (~204 tokens).
    assert 1 < metrics["test/ppl"] < 0.75 * vocabulary and "test/oracle_ppl" not in metrics


def test_char_tokens_are_unicode_characters():
    assert tokenize_lines("Hi 你好!\n\n  é\n", "char") == [["H", "i", " ", "你", "好", "!"], [" ", " ", "é"]]
    assert tokenize_lines("Hi 你好!\n", "word") == [["Hi", "你好!"]]


def test_a_single_file_is_split_by_lines_in_order(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("".join(f"line {i}\n\n" for i in range(40)))
    corpus = read_corpus(path)
    assert [len(corpus[s]) for s in ("train", "valid", "test")] == [36, 2, 2]
    assert corpus["valid"][0] == ["line", "36"] and corpus["test"][-1] == ["line", "39"]
    assert read_corpus(tmp_path)["train"] == corpus["train"]  # a folder holding only that file
    path.write_text("one\ntwo\n")
    with pytest.raises(DataError, match=r"book\.txt has 2 non-blank lines: too few for a valid split"):
        read_corpus(path)


def test_time_machine_reads_as_characters_with_the_split_rule(make_cfg):
    cfg = make_cfg("experiment=timemachine_char", f"data.root={shared_corpus('timemachine')}")
    datamodule = LMDataModule(cfg.data, seed=0)
    datamodule.setup()
    assert cfg.data.tokenize == "char" and cfg.data.protocol == "stream"
    assert " " in datamodule.vocab.stoi and "T" in datamodule.vocab.stoi and len(datamodule.vocab) < 120
    x, y = next(iter(datamodule.train_dataloader()))
    assert x.shape == (32, 35) and torch.equal(x[:, 1:], y[:, :-1])


def test_tied_weights_share_one_tensor():
    model = LanguageModel(50, 16, 16, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    assert sum(p is model.embedding.weight for p in model.parameters()) == 1


def test_init_range_covers_every_parameter():
    torch.manual_seed(0)
    model = LanguageModel(50, 16, 16, 2, cell="two", init_range=0.1)
    assert all(p.abs().max() <= 0.1 for p in model.parameters())
    assert model.embedding.weight.abs().max() > 0.09


def test_exponential_schedule_halves_after_the_start_epoch(make_cfg, tmp_path):
    train(
        make_cfg(
            "schedule=exponential",
            "schedule.start_epoch=2",
            "schedule.factor=0.5",
            "optim.lr=0.01",
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=3",
        ),
        tmp_path,
    )
    assert logged(tmp_path, "train/lr") == pytest.approx([0.01, 0.01, 0.005, 0.0025])


def test_plateau_schedule_divides_exactly_when_validation_does_not_improve(make_cfg, tmp_path):
    # With lr 1e-30 SGD changes nothing: val/ppl never improves after the first epoch.
    train(
        make_cfg(
            "optim=sgd",
            "optim.lr=1e-30",
            "schedule=plateau",
            "schedule.factor=0.25",
            "trainer.max_epochs=4",
            "trainer.limit_train_batches=3",
        ),
        tmp_path,
    )
    val = logged(tmp_path, "val/ppl")
    assert len(set(val)) == 1
    assert logged(tmp_path, "train/lr") == pytest.approx([1e-30, 2.5e-31, 6.25e-32, 1.5625e-32])


def test_plateau_keeps_the_rate_while_validation_improves(make_cfg, tmp_path):
    train(make_cfg("schedule=plateau", "trainer.max_epochs=3"), tmp_path)
    val, lr = logged(tmp_path, "val/ppl"), logged(tmp_path, "train/lr")
    expected, best = [lr[0]], math.inf
    for v in val[:-1]:  # each epoch's val/ppl sets the next epoch's lr
        expected.append(expected[-1] * (1 if v < best else 0.25))
        best = min(best, v)
    assert lr == pytest.approx(expected)


def test_early_stopping_ends_the_run_after_patience_epochs(make_cfg, tmp_path):
    metrics = train(
        make_cfg(
            "optim=sgd",
            "optim.lr=1e-30",
            "trainer.early_stopping_patience=2",
            "trainer.max_epochs=10",
            "trainer.limit_train_batches=3",
        ),
        tmp_path,
    )
    assert metrics["epochs"] == 3  # the first epoch, then two without improvement


@pytest.fixture(scope="module")
def char_run(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("char_run")
    text = "the time traveller\nwas one\n"
    root = write_corpus(tmp_path_factory.mktemp("corpus"), text * 50, valid=text * 5, test=text * 5)
    train(
        compose_run(
            "data=text",
            f"data.root={root}",
            "data.tokenize=char",
            *STREAM,
            "model.embedding_size=16",
            "model.hidden_size=16",
            "trainer.max_epochs=2",
            "trainer.progress_bar=false",
        ),
        run_dir,
    )
    return run_dir


def test_generation_is_deterministic_with_a_seed(char_run):
    model, vocab, config = load_run(char_run)
    prefix = vocab.encode(list("the "))
    a = generate(model, vocab, config["data"], prefix, 60, temperature=0.8, seed=3)
    b = generate(model, vocab, config["data"], prefix, 60, temperature=0.8, seed=3)
    c = generate(model, vocab, config["data"], prefix, 60, temperature=0.8, seed=4)
    assert a == b and a != c and len(a) == 60


@pytest.mark.parametrize("protocol", ["stream", "window"])
def test_generation_never_emits_pad_or_sos(char_run, protocol):
    model, vocab, config = load_run(char_run)
    with torch.no_grad():  # make <pad> and <sos> by far the likeliest tokens
        model.decoder.bias[vocab.pad_id] = 100.0
        model.decoder.bias[vocab.stoi["<sos>"]] = 100.0
    data = {**config["data"], "protocol": protocol}
    ids = generate(model, vocab, data, [], 300, temperature=1.0, seed=0)
    assert vocab.pad_id not in ids and vocab.stoi["<sos>"] not in ids


@pytest.mark.slow
def test_lstm_generate_cli_prints_text_and_warns_about_unknown_words(char_run):
    cli = str(Path(sys.executable).parent / "lstm-generate")
    args = [cli, str(char_run), "--prefix", "the tïme", "--tokens", "30", "--temperature", "0.5", "--seed", "7"]
    first = subprocess.run(args, capture_output=True, text=True)
    second = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("the tïme")
    assert "not in the vocabulary, read as <unk>: 'ï'" in first.stderr
    missing = subprocess.run([cli, str(char_run / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1 and "run folder" in missing.stderr and "does not exist" in missing.stderr


@pytest.mark.parametrize("experiment", sorted(p.stem for p in EXPERIMENTS.glob("*.yaml")))
def test_a_reference_result_names_only_keys_the_experiment_has(make_cfg, experiment):
    """A misspelt key would match no run and leave the report's comparison empty."""
    cfg = make_cfg(f"experiment={experiment}", tiny=False)
    for entry in (cfg.get("reference") or {}).get("results", []):
        setting = reference_setting(dict(entry))
        assert setting and "test/ppl" in entry
        for key in setting:
            assert OmegaConf.select(cfg, key) is not None, f"{experiment}: reference key {key} is not in the config"
