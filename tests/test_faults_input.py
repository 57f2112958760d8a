"""Bad input, damaged for real: corpora as editors save them, lstm-generate's options and
files, and run folders cut short or overwritten with garbage under lstm-aggregate."""

import json
import logging
import math
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from helpers import TINY, compose_run, fake_run, write_corpus
from lstm_sweep.analysis.read import read_sweep
from lstm_sweep.analysis.report import write_report
from lstm_sweep.cli import aggregate, generate
from lstm_sweep.data.corpus import read_corpus
from lstm_sweep.errors import DataError
from lstm_sweep.run.train import train

BIN = Path(sys.executable).parent
BOM = "\ufeff"


# --------------------------------------------------------------------------- corpora


@pytest.mark.parametrize("tokenize", ["word", "char"])
def test_a_byte_order_mark_is_no_part_of_the_first_token(tmp_path, tokenize):
    root = write_corpus(tmp_path / "corpus", BOM + "The cat\n", valid=BOM + "The\n", test=BOM + "cat\n")
    corpus = read_corpus(root, tokenize)
    lines = ["The cat", "The", "cat"]
    expected = [line.split() if tokenize == "word" else list(line) for line in lines]
    assert [corpus[split] for split in ("train", "valid", "test")] == [[tokens] for tokens in expected]


def test_a_single_file_corpus_loses_its_byte_order_mark(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(BOM + "".join(f"line {i}\n" for i in range(40)), encoding="utf-8")
    assert read_corpus(path)["train"][0] == ["line", "0"]


@pytest.mark.parametrize("text", [BOM, BOM + " \n\n\t\n", " \n"], ids=["bom", "bom and blanks", "blanks"])
def test_a_file_of_only_a_byte_order_mark_and_blanks_is_empty(tmp_path, text):
    root = write_corpus(tmp_path / "corpus", "a b\n", valid=text)
    with pytest.raises(DataError, match=r"^\S+valid\.txt is empty: it holds no tokens$"):
        read_corpus(root)


# --------------------------------------------------------------------------- a finished run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, cache_dir) -> Path:
    """A tiny run trained in-process, with the status.json and .hydra/ files a sweep gives it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    cfg = compose_run(*TINY, f"data.cache_dir={cache_dir}")
    train(cfg, run_dir)
    return fake_run(run_dir, config=OmegaConf.to_container(cfg), status="finished")


def copy_run(run: Path, to: Path, seed: int) -> Path:
    """A copy of the run as seed `seed` of a sweep (its overrides say so)."""
    shutil.copytree(run, to)
    return fake_run(to, overrides=["model.cell=one", f"seed={seed}"], status=None)


def records(path: Path) -> list[bytes]:
    """An event file's records, each framed as TFRecord frames it: length, its CRC, data, its CRC."""
    data, found, at = path.read_bytes(), [], 0
    while at < len(data):
        end = at + 12 + struct.unpack("<Q", data[at : at + 8])[0] + 4
        found.append(data[at:end])
        at = end
    return found


def holds_scalar(record: bytes, tag: str) -> bool:
    """Whether an event record is a point of scalar `tag` (the HPARAMS records name it too)."""
    return tag.encode() in record and b"_hparams_" not in record


def scalars_file(run: Path) -> Path:
    """The event file that holds every epoch's val/ppl."""
    return max(run.glob("events.out.tfevents.*"), key=lambda p: sum(b"val/ppl" in r for r in records(p)))


def end_before_last(path: Path, tag: str) -> None:
    """The event file as a crash leaves it: whole records, the last ending before the last `tag`."""
    kept = records(path)
    kept = kept[: max(i for i, r in enumerate(kept) if holds_scalar(r, tag))]
    path.write_bytes(b"".join(kept))


def cut(path: Path, keep: float) -> None:
    """The file cut short, as by a full disk or a killed copy: only its first `keep` fraction."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def cut_inside_last(path: Path, tag: str) -> None:
    """The file cut short, as by a full disk or a killed copy: in the middle of the record
    that holds the last `tag`."""
    kept = records(path)
    last = max(i for i, r in enumerate(kept) if holds_scalar(r, tag))
    path.write_bytes(b"".join(kept[:last]) + kept[last][: len(kept[last]) // 2])


def rewrite_metrics(run: Path, **changes) -> None:
    """metrics.json rewritten by Python's json, which writes NaN and Infinity unless told not to."""
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **changes}))


# --------------------------------------------------------------------------- lstm-generate


def generate_main(caplog, capsys, *args: str) -> tuple[int, list[str]]:
    """lstm-generate in-process: its exit status and its error lines; nothing may reach stdout."""
    with caplog.at_level(logging.WARNING, logger="lstm_sweep.run.generate"):
        status = generate.main([str(a) for a in args])
    assert capsys.readouterr().out == ""
    return status, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--temperature", "nan", "--temperature=nan must be a finite number > 0"),
        ("--temperature", "inf", "--temperature=inf must be a finite number > 0"),
        ("--temperature", "0", "--temperature=0.0 must be a finite number > 0"),
        ("--temperature", "-1", "--temperature=-1.0 must be a finite number > 0"),
        ("--tokens", "-1", "--tokens=-1 must be >= 0"),
        ("--seed", "99999999999999999999", "--seed=99999999999999999999 must be in [0, 4294967295]"),
        ("--seed", "-1", "--seed=-1 must be in [0, 4294967295]"),
    ],
)
def test_generate_refuses_a_bad_option_in_one_line(finished_run, caplog, capsys, option, value, says):
    assert generate_main(caplog, capsys, finished_run, option, value) == (1, [says])


def damage_for_generate(run: Path, damage: str) -> list[str]:
    """Do `damage` to the run; the extra arguments that lead lstm-generate to it."""
    last = run / "checkpoints" / "last.ckpt"
    if damage == "truncated checkpoint":
        cut(last, 0.5)
    elif damage == "garbage checkpoint":
        last.write_bytes(bytes(range(256)) * 40)
    elif damage == "another program's checkpoint":
        torch.save({"state_dict": {}}, last)
    elif damage == "checkpoint is a folder":
        return ["--checkpoint", str(run / "checkpoints")]
    elif damage == "no vocabulary":
        (run / "vocab.json").unlink()
    elif damage == "vocabulary cut short":
        cut(run / "vocab.json", 0.5)
    elif damage == "two best checkpoints":
        best = next((run / "checkpoints").glob("best-*.ckpt"))
        shutil.copy(best, run / "checkpoints" / "best-epoch9.ckpt")  # a stale one from an earlier attempt
        return ["--checkpoint", "best"]
    return []


@pytest.mark.parametrize(
    "damage, says",
    [
        (
            "truncated checkpoint",
            r"^checkpoint \S+/last\.ckpt cannot be read: cut short, or not a checkpoint "
            r"\(\w+ in torch\.load\)$",
        ),
        (
            "garbage checkpoint",
            r"^checkpoint \S+/last\.ckpt cannot be read: cut short, or not a checkpoint "
            r"\(\w+ in torch\.load\)$",
        ),
        (
            "another program's checkpoint",
            r"^checkpoint \S+/last\.ckpt is not an lstm-sweep run's: "
            r"KeyError: 'hyper_parameters'$",
        ),
        ("checkpoint is a folder", r"^checkpoint \S+/checkpoints is a folder, not a checkpoint file$"),
        ("no vocabulary", r"^no vocabulary at \S+/vocab\.json$"),
        ("vocabulary cut short", r"^vocabulary \S+/vocab\.json cannot be read: JSONDecodeError: [^\n]+$"),
        (
            "two best checkpoints",
            r"^--checkpoint best: \S+ holds 2 best checkpoints \(best-epoch1\.ckpt, "
            r"best-epoch9\.ckpt\); name one as --checkpoint FILE$",
        ),
    ],
)
def test_generate_names_a_damaged_file_in_one_line(finished_run, tmp_path, caplog, capsys, damage, says):
    run = shutil.copytree(finished_run, tmp_path / "run")
    extra = damage_for_generate(run, damage)
    status, errors = generate_main(caplog, capsys, run, "--tokens", "5", *extra)
    assert status == 1 and len(errors) == 1, errors
    assert re.match(says, errors[0]), errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage checkpoint", "two best checkpoints"])
def test_lstm_generate_exits_1_with_one_line_and_no_traceback(finished_run, tmp_path, damage):
    run = shutil.copytree(finished_run, tmp_path / "run")
    extra = damage_for_generate(run, damage)
    proc = subprocess.run([str(BIN / "lstm-generate"), str(run), *extra], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    nan = subprocess.run([str(BIN / "lstm-generate"), str(run), "--temperature", "nan"], capture_output=True, text=True)
    assert nan.returncode == 1 and nan.stderr.strip().splitlines() == [
        "lstm-generate: ERROR: --temperature=nan must be a finite number > 0"
    ]


# --------------------------------------------------------------------------- lstm-aggregate


def damage_run(run: Path, damage: str) -> None:
    """Do `damage` (a key of DAMAGES) to the run folder, as a crash, a full disk or a slip does."""
    hydra = run / ".hydra"
    if damage == "config missing":
        (hydra / "config.yaml").unlink()
    elif damage == "config garbage":
        (hydra / "config.yaml").write_bytes(b"\x00\xff\xfe garbage \x80")
    elif damage == "config emptied":
        (hydra / "config.yaml").write_text("")
    elif damage == "overrides missing":
        (hydra / "overrides.yaml").unlink()
    elif damage == "overrides truncated":  # in the last key: a cut at a line's end still reads as overrides
        text = (hydra / "overrides.yaml").read_text()
        (hydra / "overrides.yaml").write_text(text[: text.rindex("seed=") + 2])
    elif damage == "status truncated":
        cut(run / "status.json", 0.5)
    elif damage == "status no object":
        (run / "status.json").write_text('["finished"]')
    elif damage == "metrics truncated":
        cut(run / "metrics.json", 0.5)
    elif damage == "metrics with NaN":
        rewrite_metrics(run, **{"test/ppl": math.nan})
    elif damage == "metrics with Infinity":
        rewrite_metrics(run, **{"val/ppl": math.inf})
    elif damage == "metrics with an infinite test/ppl":  # 1e999 is JSON, read as inf
        text = (run / "metrics.json").read_text()
        (run / "metrics.json").write_text(re.sub(r'"test/ppl": [^,]+', '"test/ppl": 1e999', text))
    elif damage == "metrics disagree":
        rewrite_metrics(run, **{"test/ppl": json.loads((run / "metrics.json").read_text())["test/ppl"] * 1.0001})
    elif damage == "event file cut in a record":
        cut_inside_last(scalars_file(run), "val/ppl")
    elif damage == "event file ends before the last val/ppl":
        end_before_last(scalars_file(run), "val/ppl")
    elif damage == "event file ends before the last train/ppl":  # the last epoch's val/ppl is there
        end_before_last(scalars_file(run), "train/ppl")
    elif damage == "event file ends before its HPARAMS records":  # the last thing a run writes
        path = next(p for p in run.glob("events.out.tfevents.*") if any(b"_hparams_/" in r for r in records(p)))
        kept = records(path)
        path.write_bytes(b"".join(kept[: min(i for i, r in enumerate(kept) if b"_hparams_/" in r)]))
    elif damage == "status missing":
        (run / "status.json").unlink()
    elif damage == "metrics missing":  # status.json still says finished
        (run / "metrics.json").unlink()
    elif damage == "event files gone":
        for path in run.glob("events.out.tfevents.*"):
            path.unlink()


DAMAGES = {  # the damage, and what the run's error column says about it
    "config missing": ".hydra/config.yaml is missing",
    "config garbage": ".hydra/config.yaml cannot be read: UnicodeDecodeError",
    "config emptied": ".hydra/config.yaml cannot be read: ValueError: it holds no settings",
    "overrides missing": ".hydra/overrides.yaml is missing",
    "overrides truncated": ".hydra/overrides.yaml cannot be read",
    "status truncated": "status.json cannot be read: JSONDecodeError",
    "status no object": "status.json cannot be read: ValueError: it holds a list, not a JSON object",
    "metrics truncated": "metrics.json cannot be read: JSONDecodeError",
    "metrics with NaN": "metrics.json cannot be read: ValueError: NaN is not a JSON value",
    "metrics with Infinity": "metrics.json cannot be read: ValueError: Infinity is not a JSON value",
    "metrics with an infinite test/ppl": "metrics.json's test/ppl is inf, not a finite number",
    "metrics disagree": "the event files' last test/ppl is",
    "event file cut in a record": "the event files",
    "event file ends before the last val/ppl": "the event files hold 1 val/ppl points, metrics.json 2 epochs",
    "event file ends before the last train/ppl": "the event files' last train/ppl is",
    "event file ends before its HPARAMS records": "the event files hold no HPARAMS _hparams_/session_start_info",
    "status missing": "status.json is missing",
    "metrics missing": "status.json says finished, but metrics.json is missing",
    "event files gone": "the event files hold no test/ppl",
}


@pytest.fixture
def sweep_of_two(finished_run, tmp_path) -> Path:
    """A sweep of two copies of the finished run, seeds 0 and 1; the first keeps an earlier
    attempt's files, which are no run of their own."""
    sweep = tmp_path / "sweep"
    healthy = copy_run(finished_run, sweep / "seed=0", seed=0)
    shutil.copytree(healthy, healthy / "attempts" / "0")
    copy_run(finished_run, sweep / "seed=1", seed=1)
    return sweep


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_is_found_marked_and_kept_out_of_every_mean(sweep_of_two, tmp_path, damage):
    damage_run(sweep_of_two / "seed=1", damage)
    sweep, out = write_report(sweep_of_two, tmp_path / "report")
    runs = sweep.runs.set_index("run")
    assert runs["status"].to_dict() == {"seed=0": "finished", "seed=1": "damaged"}
    assert DAMAGES[damage] in runs.loc["seed=1", "error"]
    assert pd.read_csv(out / "summary_test_perplexity.csv")["n"].tolist() == [1]
    document = (out / "REPORT.md").read_text()
    assert "| all             |          1 |        0 |            0 |         1 |" in document
    assert f"- `seed=1`: damaged — {runs.loc['seed=1', 'error']}" in document


def test_a_healthy_sweep_has_no_damaged_run_and_aggregates_with_status_0(sweep_of_two, tmp_path, caplog):
    assert aggregate.main([str(sweep_of_two), "--out", str(tmp_path / "report")]) == 0
    assert (read_sweep(sweep_of_two).runs["status"] == "finished").all()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_aggregate_writes_the_report_then_exits_1_for_a_damaged_run(sweep_of_two, tmp_path, caplog):
    cut(sweep_of_two / "seed=1" / "status.json", 0.5)
    assert aggregate.main([str(sweep_of_two), "--out", str(tmp_path / "report")]) == 1
    assert (tmp_path / "report" / "REPORT.md").exists()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(
        f"damaged run {sweep_of_two / 'seed=1'}, kept out of every mean: status.json cannot be read: JSONDecodeError"
    )


def test_a_compared_sweep_names_its_damaged_runs(sweep_of_two, tmp_path, caplog):
    other = shutil.copytree(sweep_of_two, tmp_path / "other")
    (other / "seed=1" / "metrics.json").write_text("{")
    with caplog.at_level(logging.WARNING):
        write_report(sweep_of_two, tmp_path / "report", [("same", other)])
    assert [r.getMessage() for r in caplog.records] == ["--compare same: 1 damaged runs left out: seed=1"]


def test_aggregate_refuses_a_missing_sweep_folder_with_status_1(tmp_path, caplog):
    assert aggregate.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "report")]) == 1
    assert [r.getMessage() for r in caplog.records] == [f"sweep folder {tmp_path / 'nowhere'} does not exist"]


def test_a_run_whose_fixed_settings_are_not_its_sweeps_is_damaged_not_counted(sweep_of_two, tmp_path):
    """A run made by hand into the folder, or a same-named run of another sweep copied in."""
    fixed = {"model.cell": "one", "trainer.max_epochs": "3", "data.root": "/elsewhere", "hydra.launcher.n_jobs": "2"}
    (sweep_of_two / "sweep.json").write_text(
        json.dumps(
            {
                "name": "default",
                "swept": ["seed"],
                "starts": [{"command": "lstm-sweep", "date": "2026-12-06", "machine": "here", "fixed": fixed}],
            }
        )
    )
    for seed, epochs in ((0, 3), (1, 5)):
        fake_run(
            sweep_of_two / f"seed={seed}",
            overrides=["model.cell=one", f"trainer.max_epochs={epochs}", "data.root=/here", f"seed={seed}"],
            status=None,
        )
    sweep, out = write_report(sweep_of_two, tmp_path / "report")
    runs = sweep.runs.set_index("run")
    assert runs["status"].to_dict() == {"seed=0": "finished", "seed=1": "damaged"}  # data.root: where, not what
    assert runs.loc["seed=1", "error"] == "its settings are not its sweep's: trainer.max_epochs=5 (the sweep's 3)"
    assert pd.read_csv(out / "summary_test_perplexity.csv")["n"].tolist() == [1]


def test_a_fixed_value_that_is_nan_is_its_own_runs_value(sweep_of_two, tmp_path):
    from lstm_sweep.analysis.read import settings_damage

    info = {"starts": [{"fixed": {"model.decoder_bias_init": "nan", "seed": "1"}}]}
    assert settings_damage({"model.decoder_bias_init": math.nan, "seed": 1}, info) == ""
    assert settings_damage({"model.decoder_bias_init": 0.5, "seed": 1}, info) == (
        "its settings are not its sweep's: model.decoder_bias_init=0.5 (the sweep's nan)"
    )


def test_aggregate_refuses_an_out_it_cannot_write_before_reading_the_sweep(sweep_of_two, tmp_path, caplog):
    a_file = tmp_path / "a file"
    a_file.write_text("kept")
    assert aggregate.main([str(sweep_of_two), "--out", str(a_file / "report")]) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"the report's folder (--out {a_file / 'report'}): cannot write in {a_file} (a file, not a folder)"
    ]
    assert a_file.read_text() == "kept"


def test_a_garbage_sweep_json_is_warned_about_and_left_out(sweep_of_two, tmp_path, caplog):
    (sweep_of_two / "sweep.json").write_text('{"name": "default", "swept": ["se')
    with caplog.at_level(logging.WARNING):
        sweep, out = write_report(sweep_of_two, tmp_path / "report")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(sweep_of_two / "sweep.json") in warnings[0]
    assert sweep.info == {} and (sweep.runs["status"] == "finished").all()
    assert "- no start record: " in (out / "REPORT.md").read_text()


@pytest.mark.slow
def test_lstm_aggregate_exits_1_after_writing_the_report_of_a_damaged_sweep(sweep_of_two, tmp_path):
    cut_inside_last(scalars_file(sweep_of_two / "seed=1"), "val/ppl")
    proc = subprocess.run(
        [str(BIN / "lstm-aggregate"), str(sweep_of_two), "--out", str(tmp_path / "report")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "damaged run" in proc.stderr and (tmp_path / "report" / "REPORT.md").exists()
