"""The main job end to end: lstm-sweep → run folders → lstm-aggregate's tables, tests, figures."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import TINY, TINY_CORPUS, TINY_RUN, compose_run, fake_run
from lstm_sweep.analysis.read import read_sweep
from lstm_sweep.analysis.report import write_report
from lstm_sweep.naming import run_name, trial_label
from lstm_sweep.records import recorded_status
from lstm_sweep.run.folder import set_status
from lstm_sweep.sweep import child

BIN = Path(sys.executable).parent
SMALL_GRID = [*TINY, "trainer.max_epochs=2", "trainer.limit_train_batches=20", "seed=0,1"]


def lstm_sweep(cwd: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "lstm-sweep"), *args, f"data.cache_dir={cache_dir}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, cache_dir):
    """2 cells × 2 layers × 2 seeds through the real CLI, with one extra cell that fails."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = lstm_sweep(cwd, cache_dir, "--dir", "multirun/small", *SMALL_GRID, "model.cell=one,two,three")
    return cwd, proc


@pytest.mark.slow
def test_sweep_names_runs_by_their_swept_values(sweep):
    cwd, _ = sweep
    # .hparams/: the sweep's TensorBoard columns, beside the run folders
    names = sorted(p.name for p in (cwd / "multirun" / "small").iterdir() if p.is_dir() and p.name != ".hparams")
    assert names == [f"cell={c},layers={n},seed={s}" for c in ("one", "three", "two") for n in (1, 2) for s in (0, 1)]
    info = json.loads((cwd / "multirun" / "small" / "sweep.json").read_text())
    assert info["swept"] == ["model.cell", "model.num_layers", "seed"]
    assert info["starts"][0]["command"].startswith("lstm-sweep --dir multirun/small")


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_others_finish(sweep):
    cwd, proc = sweep
    assert proc.returncode == 1, proc.stderr[-2000:]
    runs = pd.read_csv(cwd / "reports" / "default" / "runs.csv")
    assert len(runs) == 12
    failed = runs[runs["model.cell"] == "three"]
    assert set(failed["status"]) == {"failed"}
    assert failed["error"].str.contains("model.cell='three' is not a cell: neither a built-in").all()
    assert set(runs[runs["model.cell"] != "three"]["status"]) == {"finished"}
    assert "run cell=three,layers=1,seed=0 failed" in proc.stderr
    # the sweep's own progress, one line per run as it ends, with or without progress bars
    ends = re.findall(r"run \S+ (?:finished|failed): \d+ of 12 runs finished", proc.stderr)
    assert len(ends) == 12
    assert "8 of 12 runs finished, 4 failed, " in proc.stderr  # failed runs are not counted as done
    report = (cwd / "reports" / "default" / "REPORT.md").read_text()
    assert "Runs: 8 finished of 12." in report and "`cell=three,layers=2,seed=1`: failed" in report


@pytest.mark.slow
def test_every_artefact_is_written(sweep):
    cwd, _ = sweep
    out = cwd / "reports" / "default"
    for stem in [
        "summary_test_perplexity",
        "summary_test_loss",
        "statistics_test_ppl",
        *(f"runs_cell={c},layers={n}" for c in ("one", "two") for n in (1, 2)),
    ]:
        for ext in ("md", "csv", "tex"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    for figure in ("learning_curves", "test_ppl"):
        assert (out / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{figure}.pdf").read_bytes()[:5] == b"%PDF-"
    report = (out / "REPORT.md").read_text()
    for section in (
        "## Provenance",
        "## Results",
        "## Statistics",
        "## Figures",
        "## Runs per configuration",
        "torch 2.",
        "lstm-sweep --dir multirun/small",
        "![Training and validation perplexity",
    ):
        assert section in report, section
    # provenance: the folder read, each start with the settings it fixed, and how to regenerate
    assert "- runs read from `multirun/small`" in report
    assert "fixed settings: " in report and "trainer.max_epochs=2" in report
    assert "- regenerate this report: `lstm-aggregate multirun/small --out reports/default`" in report
    table = (out / "runs_cell=two,layers=2.md").read_text()
    assert "| Times   | The value of loss   | The value of ppl   |" in table
    assert "| Average |" in table and "| Std     |" in table


def tensorboard_answers(logdir: Path, *requests: tuple[str, dict | None]) -> list:
    """TensorBoard itself, started on 127.0.0.1 over `logdir` and stopped (by its PID) after
    answering each (route, JSON body or None for a GET) as its pages ask them."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN / "tensorboard"), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ask(route: str, body: dict | None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url + route, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if ask("/data/plugin/scalars/tags", None):  # the folder is read
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "TensorBoard did not answer within 90 s"
            time.sleep(0.5)
        return [ask(route, body) for route, body in requests]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_tensorboard_lists_the_swept_keys_first_and_opens_on_the_curves(sweep):
    from lstm_sweep.sweep.board import METRICS

    cwd, _ = sweep
    folder = cwd / "multirun" / "small"
    experiment, groups, tags, layout = tensorboard_answers(
        folder,
        ("/data/plugin/hparams/experiment", {"experimentName": ""}),
        (
            "/data/plugin/hparams/session_groups",
            {
                "experimentName": "",
                "startIndex": 0,
                "sliceSize": 100,
                "allowedStatuses": ["STATUS_SUCCESS", "STATUS_UNKNOWN"],
            },
        ),
        ("/data/plugin/scalars/tags", None),
        ("/data/plugin/custom_scalars/layout", None),
    )
    # HPARAMS ticks the first five it lists: the swept keys come first, marked as differing
    infos = experiment["hparamInfos"]
    assert [i["name"] for i in infos[:3]] == ["model.cell", "model.num_layers", "seed"]
    assert all(i.get("differs") for i in infos[:3]) and not any(i.get("differs") for i in infos[3:])
    assert infos[0]["displayName"] == "model.cell (swept)" and len(infos) > 40
    assert [(m["name"]["tag"], m["displayName"]) for m in experiment["metricInfos"]] == list(METRICS)
    # one row a run, named short enough for the Trial ID column: swept values, then the sweep
    runs = sorted(p.name for p in folder.iterdir() if (p / "metrics.json").is_file())
    rows = {g["name"]: g["sessions"] for g in groups["sessionGroups"]}
    assert sorted(rows) == sorted(" · ".join(v.split("=")[1] for v in run.split(",")) + " · small" for run in runs)
    assert all(len(sessions) == 1 for sessions in rows.values()) and len(runs) >= 4
    # SCALARS and TIME SERIES open the first two tag groups: test/ and train/, never a one-point
    # group or Lightning's epoch counter
    every_tag = {tag for run_tags in tags.values() for tag in run_tags}
    assert "epoch" not in every_tag and {"val/ppl", "train/ppl", "train/loss", "val/best_ppl"} <= every_tag
    assert sorted({tag.split("/")[0] for tag in every_tag})[:3] == ["test", "train", "val"]
    charts = {c["title"] for category in layout["category"] for c in category["chart"]}
    assert layout["category"][0]["title"] == "compare runs" and "validation perplexity" in charts


@pytest.mark.slow
def test_means_equal_numpy_over_the_logged_values(sweep):
    cwd, _ = sweep
    result = read_sweep(cwd / "multirun" / "small")
    assert result.factors == ["model.cell", "model.num_layers"]
    for (cell, layers), group in result.finished.groupby(["model.cell", "model.num_layers"]):
        logged = [json.loads((Path(p) / "metrics.json").read_text()) for p in group["path"]]
        for metric in ("test/ppl", "test/loss", "val/ppl"):
            expected = np.mean([m[metric] for m in logged])
            assert group[metric].mean() == pytest.approx(expected, rel=1e-6), (cell, layers, metric)
        summary = pd.read_csv(cwd / "reports" / "default" / "summary_test_perplexity.csv")
        row = summary[(summary["model.cell"] == cell) & (summary["model.num_layers"] == layers)].iloc[0]
        # TensorBoard holds float32: the std of two close values magnifies its rounding past 1e-6
        as_logged = np.array([m["test/ppl"] for m in logged], dtype=np.float32).astype(float)
        mean, std = np.mean(as_logged), np.std(as_logged, ddof=1)
        assert (row["mean"], row["std"], row["n"]) == (pytest.approx(mean), pytest.approx(std), 2)
        shown = (cwd / "reports" / "default" / "summary_test_perplexity.md").read_text()
        assert f"{mean:.3f} ± {std:.3f} (n=2)" in shown
    epochs = result.epochs.merge(result.runs[["run", "status"]], on="run")
    assert (epochs[epochs.status == "finished"].groupby("run").size() == 2).all()


@pytest.mark.slow
def test_rerunning_skips_finished_runs_and_completes_unfinished_ones(sweep, cache_dir):
    cwd, _ = sweep
    folder = cwd / "multirun" / "small"
    finished = folder / "cell=one,layers=1,seed=0"
    interrupted = folder / "cell=two,layers=2,seed=1"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished.rglob("*") if p.is_file()}
    (interrupted / "metrics.json").unlink()  # as if killed before the end
    (interrupted / "status.json").write_text('{"status": "running"}')
    proc = lstm_sweep(cwd, cache_dir, "--dir", "multirun/small", *SMALL_GRID, "model.cell=one,two,three")
    assert proc.returncode == 1  # the cell=three runs fail again
    # nothing in a finished run's folder is touched, its train.log included
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished.rglob("*") if p.is_file()} == before
    assert "cell=one,layers=1,seed=0 already finished: skipped" in proc.stderr
    # the run that ended in this start gets a line (the invalid cell=three ones are refused again
    # before they start, leaving their records as they were)
    assert len(re.findall(r"run \S+ (?:finished|failed): \d+ of 12 runs finished", proc.stderr)) == 1
    assert "run cell=two,layers=2,seed=1 finished: 8 of 12 runs finished (7 before this start), 4 failed" in proc.stderr
    assert (interrupted / "metrics.json").exists()
    assert (interrupted / "attempts" / "0" / "status.json").exists()  # the old attempt kept aside
    assert json.loads((interrupted / "status.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_a_dry_run_lists_what_each_run_would_do_and_writes_nothing(sweep, cache_dir, tmp_path):
    cwd, _ = sweep
    folder = tmp_path / "small"
    shutil.copytree(cwd / "multirun" / "small", folder)
    for name, hidden in (("cell=two,layers=2,seed=1", 16), ("cell=two,layers=1,seed=1", 32)):
        interrupt(folder / name, hidden)  # killed mid-run; the second one's checkpoint has other settings
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    grid = [*SMALL_GRID, "model.cell=one,two,three", "seed=0,1,2"]
    proc = lstm_sweep(tmp_path, cache_dir, "--dry-run", "--dir", "small", *grid)
    assert proc.returncode == 1, proc.stderr[-2000:]  # runs would fail on a value; an interrupted one is no fault
    lines = {name: action.rstrip() for action, name in (line.rsplit(" ", 1) for line in proc.stdout.splitlines()[:-1])}
    assert lines["cell=one,layers=1,seed=0"] == "skip (finished)"
    assert lines["cell=three,layers=1,seed=0"] == "fail (bad value)"  # checked as the run would, before it trains
    assert "cell=three,layers=2,seed=2: model.cell='three' is not" in proc.stderr and "Traceback" not in proc.stderr
    assert lines["cell=two,layers=2,seed=2"] == "start"  # a new seed
    assert lines["cell=two,layers=2,seed=1"] == "resume"
    assert lines["cell=two,layers=1,seed=1"] == "refused (settings differ)"
    assert proc.stdout.splitlines()[-1] == (
        "18 runs in small: 4 start, 1 resume, 1 refused (settings differ), "
        "6 fail (bad value), 6 skip (finished); dry run, nothing started"
    )
    anew = lstm_sweep(tmp_path, cache_dir, "--dry-run", "--dir", "small", *grid, "trainer.resume=false")
    assert f"{'start over':<25} cell=two,layers=2,seed=1" in anew.stdout
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "reports").exists()
    refused = lstm_sweep(tmp_path, cache_dir, "--dry-run", "--dir", "small", *SMALL_GRID, "trainer.max_epochs=3")
    assert refused.returncode == 1 and refused.stderr.splitlines() == [
        f"lstm-train: error: {Path('small')} was swept with other fixed settings: trainer.max_epochs (2 → 3); "
        "complete it with the same ones, or sweep into another folder"
    ]
    by_hand = subprocess.run(  # lstm-train -m, the same refusal in the same one line
        [str(BIN / "lstm-train"), "-m", "hydra.sweep.dir=small", *SMALL_GRID, "trainer.max_epochs=3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert by_hand.returncode == 1 and by_hand.stderr.splitlines() == refused.stderr.splitlines()
    fresh = lstm_sweep(tmp_path, cache_dir, "--dry-run", *SMALL_GRID)
    assert fresh.returncode == 0 and "8 runs in multirun/default/" in fresh.stdout and ": 8 start;" in fresh.stdout
    assert not (tmp_path / "multirun").exists()


def interrupt(run: Path, hidden_size: int) -> None:
    """Make a finished run look killed mid-run: no metrics, status interrupted, and a resume
    checkpoint (its last weights, with the given model.hidden_size in its settings)."""
    (run / "metrics.json").unlink()
    (run / "status.json").write_text('{"status": "interrupted"}')
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["config"]["model"]["hidden_size"] = hidden_size
    torch.save(checkpoint, run / "checkpoints" / "resume.ckpt")


@pytest.mark.slow
def test_completing_a_sweep_with_other_fixed_settings_is_refused_and_rewrites_nothing(sweep, cache_dir):
    cwd, _ = sweep
    folder = cwd / "multirun" / "small"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    # another launcher is no other setting: it changes how runs are made, not what they compute
    proc = lstm_sweep(
        cwd,
        cache_dir,
        "--dir",
        "multirun/small",
        *SMALL_GRID,
        "model.cell=one,two,three",
        "trainer.max_epochs=3",
        "model.hidden_size=32",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert proc.returncode == 1
    assert (
        "was swept with other fixed settings: model.hidden_size (16 → 32), trainer.max_epochs (2 → 3);" in proc.stderr
    )
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # no run started, no .hydra/ rewritten, no start recorded


STOPPABLE = [
    *TINY,
    "data.generator.train_tokens=100000",
    "model.cell=one",
    "model.num_layers=1",
    "seed=0,1,2",
    "--no-report",
]
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def running_runs(folder: Path, count: int, timeout: float = 120) -> list[dict]:
    """Wait until `count` runs are training (status running, a resume checkpoint written)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = []
        for status in folder.glob("*/status.json"):
            with contextlib.suppress(ValueError, OSError):
                record = json.loads(status.read_text())
                if record["status"] == "running" and (status.parent / "checkpoints" / "resume.ckpt").exists():
                    running.append({**record, "run": status.parent})
        if len(running) >= count:
            return running
        time.sleep(0.2)
    raise AssertionError(f"{count} runs never trained at once in {folder}")


def wait_until_gone(group: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(group, signal.SIGKILL)
    raise AssertionError(f"processes of the sweep's group {group} outlived it")


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, launcher",
    [(signal.SIGKILL, "joblib"), (signal.SIGTERM, "basic"), (signal.SIGINT, "joblib")],
    ids=["kill -9", "kill", "Ctrl-C"],
)
def test_a_stopped_sweep_stops_every_run_records_it_interrupted_and_completes_when_run_again(
    tmp_path, cache_dir, signum, launcher
):
    args = [
        str(BIN / "lstm-sweep"),
        "--dir",
        str(tmp_path / "sw"),
        *STOPPABLE,
        *LAUNCHERS[launcher],
        f"data.cache_dir={cache_dir}",
    ]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running = running_runs(tmp_path / "sw", count=2 if launcher == "joblib" else 1)
    group = os.getpgid(running[0]["pid"])  # the sweep's own process group, workers included
    assert group not in (os.getpgrp(), proc.pid)
    proc.send_signal(signum)
    stderr = proc.communicate(timeout=120)[1]
    wait_until_gone(group)  # no run trains on unseen
    for run in running:
        recorded = json.loads((run["run"] / "status.json").read_text())
        says = "stopped by Ctrl-C (SIGINT)" if signum == signal.SIGINT else "stopped by SIGTERM"
        assert recorded_status(recorded) == ("interrupted", says), (run["run"].name, recorded)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + signum
        assert "the sweep was stopped; `lstm-sweep --dir" in stderr and "Traceback" not in stderr, stderr[-3000:]
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert set(read_sweep(tmp_path / "sw").runs["status"]) == {"finished"}


def running_in(sweep_dir: Path, name: str, **popen) -> subprocess.Popen:
    """A process that "trains" run `name`: its status.json says running, with its pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **popen)
    fake_run(sweep_dir / name, status={"status": "running", "host": socket.gethostname(), "pid": proc.pid})
    return proc


def test_ctrl_c_in_the_sweeps_child_waits_for_its_groups_runs_to_record_before_raising(tmp_path):
    # joblib kills its workers the moment the child raises: a worker still writing its run's
    # status would leave it "running" under a dead pid, its Ctrl-C unrecorded.
    worker = running_in(tmp_path, "cell=one,seed=0")  # this process group
    elsewhere = running_in(tmp_path, "cell=one,seed=1", start_new_session=True)  # another sweep's
    try:
        handler = child.ctrl_c_after_runs_record(tmp_path)
        recording = threading.Timer(
            0.5, set_status, (tmp_path / "cell=one,seed=0", "interrupted", "stopped by Ctrl-C (SIGINT)")
        )
        recording.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
        assert 0.5 <= time.monotonic() - start < 5  # until the worker recorded, not the other group's run
        assert child.runs_still_recording(tmp_path) == []
    finally:
        for proc in (worker, elsewhere):
            proc.kill()
            proc.wait()


def test_ctrl_c_in_the_sweeps_child_waits_a_bounded_while_and_a_second_one_not_at_all(tmp_path, monkeypatch):
    worker = running_in(tmp_path, "cell=one,seed=0")  # never records
    monkeypatch.setattr(child, "RECORD_GRACE_SECONDS", 0.5)
    try:
        handler = child.ctrl_c_after_runs_record(tmp_path)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
        assert 0.5 <= time.monotonic() - start < 5
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
        assert time.monotonic() - start < 0.2
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.slow
def test_an_experiment_of_ones_own_is_found_through_config_dir(tmp_path, cache_dir):
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "narrow.yaml").write_text(
        "# @package _global_\nmodel:\n  hidden_size: 12\n  embedding_size: 12\n"
    )
    args = [*TINY_CORPUS, "trainer.progress_bar=false", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    proc = lstm_sweep(
        tmp_path,
        cache_dir,
        "--config-dir",
        "mine",
        "experiment=narrow",
        "--dir",
        "sw",
        *args,
        "model.cell=one",
        "model.num_layers=1",
        "seed=0",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = (tmp_path / "sw" / "run" / ".hydra" / "config.yaml").read_text()
    assert "hidden_size: 12" in config and "embedding_size: 12" in config
    assert json.loads((tmp_path / "sw" / "sweep.json").read_text())["name"] == "narrow"
    single = subprocess.run(
        [
            str(BIN / "lstm-train"),
            "--config-dir",
            "mine",
            "experiment=narrow",
            *args,
            f"data.cache_dir={cache_dir}",
            "hydra.run.dir=one",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    assert "hidden_size: 12" in (tmp_path / "one" / ".hydra" / "config.yaml").read_text()


@pytest.mark.slow
def test_two_sweeps_started_together_get_their_own_folders(tmp_path, cache_dir):
    args = [
        *TINY,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "model.cell=one",
        "model.num_layers=1",
        "seed=0",
        "--no-report",
    ]
    procs = [
        subprocess.Popen(
            [str(BIN / "lstm-sweep"), *args, f"data.cache_dir={cache_dir}"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    folders = list((tmp_path / "multirun" / "default").iterdir())
    assert len(folders) == 2 and all((f / "run" / "metrics.json").exists() for f in folders)  # nothing swept


@pytest.mark.slow
def test_two_sweeps_on_one_folder_train_each_run_exactly_once(tmp_path, cache_dir):
    args = [
        "--dir",
        "shared",
        "--no-report",
        *SMALL_GRID,
        "model.num_layers=1",
        "model.cell=one,two",
        "trainer.threads=1",
        f"data.cache_dir={cache_dir}",
    ]
    procs = [
        subprocess.Popen(
            [str(BIN / "lstm-sweep"), *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    runs = sorted(p for p in (tmp_path / "shared").iterdir() if p.is_dir() and p.name != ".hparams")
    assert [r.name for r in runs] == [f"cell={c},seed={s}" for c in ("one", "two") for s in (0, 1)]
    for run in runs:
        assert json.loads((run / "status.json").read_text())["status"] == "finished"
        assert (run / "train.log").read_text().count("test/ppl ") == 1, run.name  # trained once
        assert not (run / "attempts").exists()  # nothing moved under a live run
    # each run was trained by one sweep and skipped by the other: found being trained, or
    # finished, as the two happened to interleave (a faster start can leave one behind)
    both = errors[0] + errors[1]
    assert both.count("being trained by another process: skipped") + both.count("already finished: skipped") == 4
    assert "Traceback" not in both


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_with_one_thread_each(tmp_path, cache_dir):
    proc = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "sw",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "model.num_layers=1",
        "seed=0",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    logs = [(tmp_path / "sw" / f"cell={c}" / "train.log").read_text() for c in ("one", "two")]
    cores = os.cpu_count()
    assert all(f"; {max(1, cores // 2)} torch threads" in log for log in logs)


@pytest.mark.slow
def test_report_of_another_sweep_is_never_overwritten(sweep, tmp_path, monkeypatch):
    cwd, _ = sweep
    monkeypatch.chdir(cwd)
    copy = tmp_path / "small-copy"
    subprocess.run(["cp", "-r", str(cwd / "multirun" / "small"), str(copy)], check=True)
    before = (cwd / "reports" / "default" / "REPORT.md").read_text()
    _, out = write_report(copy)
    assert out == Path("reports") / "default_small-copy"
    assert (cwd / "reports" / "default" / "REPORT.md").read_text() == before


def test_run_names():
    assert run_name("model.cell=one,model.num_layers=2,seed=3") == "cell=one,layers=2,seed=3"
    assert run_name("data.batch_size=8,optim.lr=0.1") == "batch_size=8,lr=0.1"
    assert run_name("data.name=a,model.name=b") == "data.name=a,model.name=b"  # would read alike
    assert run_name("data.root=/x/y") == "root=_x_y" and run_name("") == "run"
    # a list value keeps its commas and does not swallow the next key
    assert run_name("data.split_fractions=[0.8,0.1,0.1],model.cell=one") == "split_fractions=[0.8,0.1,0.1],cell=one"
    assert run_name("data.unk_token='a,b',seed=1") == "unk_token='a,b',seed=1"


def test_a_name_made_unique_stays_readable_short_and_its_runs_own():
    from lstm_sweep.naming import NAME_MAX, cut, readable_part, unique_name, with_seed

    a, b = unique_name("seed=0", "data.root=corpA\nseed=0"), unique_name("seed=0", "data.root=corpB\nseed=0")
    assert a != b and a.startswith("seed=0~") and len(a) == len("seed=0") + 9
    assert a == unique_name("seed=0", "data.root=corpA\nseed=0")  # the same run, the same folder, every start
    assert readable_part(a) == "seed=0" and readable_part("seed=0~x") == "seed=0~x"
    long = "unk_token=" + "x" * 300 + ",seed=1"
    name = unique_name(long, long)
    assert len(name) == NAME_MAX and readable_part(name) == long[: NAME_MAX - 9]
    assert with_seed(unique_name("cell=one,seed=3", "i"), 12) == "cell=one,seed=12"
    wide = "unk_token=" + "語" * 100 + ",seed=1"  # 300 bytes in 100 characters
    name = unique_name(wide, wide)
    assert len(name.encode()) <= NAME_MAX and readable_part(name) == cut(wide) and wide.startswith(cut(wide))


@pytest.mark.parametrize("value", ["a", "a\\b", "a\\", "it's", "a\\'b", "${x}", "a${b}c", "~abc", "a,b", "[x]", "$"])
def test_a_quoted_override_gives_back_its_value_in_the_config(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from lstm_sweep.sweep.grid import quote

    parsed = OverridesParser.create().parse_override(f"hydra.sweep.subdir={quote(value)}").value()
    assert OmegaConf.create({"subdir": parsed}).subdir == value


def test_a_finished_run_of_other_settings_is_never_skipped_as_this_one(tmp_path, make_cfg):
    from lstm_sweep.errors import ConfigError
    from lstm_sweep.fields import plain
    from lstm_sweep.run.resume import refuse_other_finished

    run = fake_run(tmp_path / "seed=0", config=plain(make_cfg("model.hidden_size=32")), status="finished")
    refuse_other_finished(run, plain(make_cfg("model.hidden_size=32", "data.root=/elsewhere")))  # where data lives
    with pytest.raises(
        ConfigError, match=r"seed=0 holds a finished run with other settings: model.hidden_size \(32 → 16\)"
    ):
        refuse_other_finished(run, plain(make_cfg("model.hidden_size=16")))


def test_trial_labels_fit_tensorboards_column_and_keep_two_sweeps_apart():
    assert trial_label(Path("multirun/r21/cell=two,layers=2,seed=9")) == "two · 2 · 9 · r21"
    assert trial_label(Path("a/split_fractions=[0.8,0.1,0.1],cell=one")) == "[0.8,0.1,0.1] · one · a"
    assert trial_label(Path("outputs/2026-11-26/02-13-00")) == "" and trial_label(Path("x/run")) == ""


def test_a_sweep_records_its_fixed_settings_and_refuses_others(tmp_path):
    from lstm_sweep.errors import ConfigError
    from lstm_sweep.sweep.grid import plan_grid, previous_starts, refuse_other_settings

    first = plan_grid({"seed": "range(2)"}, ["model.hidden_size=64", "data.root=/a", "trainer.progress_bar=false"])
    assert first.fixed == {"model.hidden_size": "64", "data.root": "/a", "trainer.progress_bar": "False"}
    starts = [{"fixed": first.fixed}]
    # Where the data is and how progress shows may change; what changes results may not.
    refuse_other_settings(tmp_path, plan_grid({"seed": "range(3)"}, ["model.hidden_size=64", "data.root=/b"]), starts)
    with pytest.raises(
        ConfigError,
        match=r"other fixed settings: model.hidden_size \(64 → 128\), "
        r"optim.lr \(not set → 0.1\); complete it with the same ones",
    ):
        refuse_other_settings(tmp_path, plan_grid(None, ["model.hidden_size=128", "optim.lr=0.1"]), starts)
    (tmp_path / "sweep.json").write_text('{"name": "x", "starts": [{"comm')  # cut short
    assert previous_starts(tmp_path) == [] and (tmp_path / "sweep.json.damaged").exists()


def test_an_experiment_brings_its_own_grid():
    from lstm_sweep.sweep.grid import plan_grid

    params = compose_run("experiment=ptb_medium", hydra=True).hydra.sweeper.params
    plan = plan_grid(params, ["experiment=ptb_medium", "data.root=/data/ptb"])
    assert plan.swept == ["model.cell", "seed"]
    assert {"model.num_layers", "data.root", "experiment"} <= set(plan.fixed)
    params = compose_run(hydra=True).hydra.sweeper.params
    plan = plan_grid(params, ["model.hidden_size=64,128", "seed=range(3)", "model.cell=two"])
    assert plan.swept == ["model.num_layers", "seed", "model.hidden_size"] and "model.cell" in plan.fixed


@pytest.mark.slow
def test_a_variation_sweep_is_compared_configuration_by_configuration(sweep, tmp_path):
    cwd, _ = sweep
    folder = cwd / "multirun" / "small"
    _, out = write_report(folder, tmp_path / "report", [("the same again", folder)])
    report = (out / "REPORT.md").read_text()
    assert "## Variations" in report and "### the same again" in report
    assert f"Its runs, read from `{folder}`:" in report
    assert f"--compare 'the same again={folder}'`" in report  # the regenerating command has it too
    assert "- cell=one,layers=1: the same again vs this sweep: no detectable difference (+0 ppl, 95% CI ± " in report
    table = pd.read_csv(out / "variation_the_same_again.csv")
    assert len(table) == 4 and set(table["diff"]) == {0.0}


def test_where_the_data_lives_is_no_factor_of_a_report(tmp_path):
    """A sweep completed on another machine has other data.root values: still one grid."""
    for seed, root in [(0, "/a/ptb"), (1, "/b/ptb")]:
        fake_run(
            tmp_path / "sweep" / f"seed={seed}",
            config={"seed": seed},
            overrides=[f"seed={seed}", f"data.root={root}"],
            scalars={"test/ppl": 100.0 + seed},
        )
    sweep = read_sweep(tmp_path / "sweep")
    assert sweep.factors == [] and "data.root" not in sweep.runs


def test_a_swept_list_value_labels_and_groups_its_runs(tmp_path):
    """Runs that differ in a list (`data.split_fractions=[…]`) are aggregated like any other factor."""
    for fractions, seed, ppl in [
        ("[0.8,0.1,0.1]", 0, 200.0),
        ("[0.8,0.1,0.1]", 1, 202.0),
        ("[0.9,0.05,0.05]", 0, 190.0),
        ("[0.9,0.05,0.05]", 1, 194.0),
    ]:
        fake_run(
            tmp_path / "sweep" / run_name(f"data.split_fractions={fractions},seed={seed}"),
            config={"seed": seed},
            overrides=[f"data.split_fractions={fractions}", f"seed={seed}"],
            scalars={"test/ppl": ppl},
        )
    sweep, out = write_report(tmp_path / "sweep", tmp_path / "report")
    assert sweep.factors == ["data.split_fractions"]
    assert sweep.runs["data.split_fractions"].tolist() == ["[0.8,0.1,0.1]"] * 2 + ["[0.9,0.05,0.05]"] * 2
    summary = pd.read_csv(out / "summary_test_perplexity.csv")
    assert summary["mean"].tolist() == [201.0, 192.0] and summary["n"].tolist() == [2, 2]


ONE_CONFIG = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "model.cell=one", "model.num_layers=1"]


def corpus_text(seed: int, lines: int) -> str:
    words = [f"w{i}" for i in range(40)]
    rng = __import__("random").Random(seed)
    return "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(lines)) + "\n"


@pytest.mark.slow
def test_a_sweep_over_two_corpora_trains_and_reports_every_run(tmp_path, cache_dir):
    """data.root is kept out of run names (where data lives), so both corpora's seed=0 read
    alike: each run gets a folder of its own, and the report tells the corpora apart."""
    from helpers import write_corpus

    roots = [
        write_corpus(tmp_path / name, corpus_text(i, 200), corpus_text(9, 30), corpus_text(8, 30))
        for i, name in enumerate(("corpA", "corpB"))
    ]
    args = ["--dir", "sw", "data=text", f"data.root={roots[0]},{roots[1]}", "seed=0,1", *TINY_RUN, *ONE_CONFIG]
    preview = lstm_sweep(tmp_path, cache_dir, "--dry-run", *args)
    names = [line.split()[-1] for line in preview.stdout.splitlines() if line.startswith("start ")]
    assert preview.returncode == 0 and len(set(names)) == 4 and all(n.startswith("seed=") for n in names)
    assert preview.stdout.splitlines()[-1] == "4 runs in sw: 4 start; dry run, nothing started"
    proc = lstm_sweep(tmp_path, cache_dir, *args, "--no-report")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "sw").glob("seed=*")) == sorted(names)
    sweep, out = write_report(tmp_path / "sw", tmp_path / "report")
    assert len(sweep.finished) == 4 and sweep.factors == ["data.root"]
    assert pd.read_csv(out / "summary_test_perplexity.csv")["n"].tolist() == [2, 2]
    again = lstm_sweep(tmp_path, cache_dir, "--dry-run", *args)  # the same folders on every start
    assert again.stdout.splitlines()[-1] == "4 runs in sw: 4 skip (finished); dry run, nothing started"


@pytest.mark.slow
def test_a_long_or_slashed_swept_value_gets_a_folder_and_a_report(tmp_path, cache_dir):
    long = "x" * 300
    args = ["--dir", "sw", f"data.unk_token=unk,a/b,{long}", "seed=0", *TINY, *ONE_CONFIG]
    proc = lstm_sweep(tmp_path, cache_dir, *args, "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    folders = sorted(p.name for p in (tmp_path / "sw").glob("unk_token=*"))
    assert len(folders) == 3 and max(map(len, folders)) <= 120 and "unk_token=a_b" in folders
    runs = pd.read_csv(tmp_path / "report" / "runs.csv")
    assert sorted(runs["data.unk_token"]) == sorted(["unk", "a/b", long]) and set(runs["status"]) == {"finished"}


def aggregate_damaged(folder: Path, out: Path) -> pd.DataFrame:
    """lstm-aggregate on a sweep holding a damaged run: exit status 1, the runs by name."""
    proc = subprocess.run([str(BIN / "lstm-aggregate"), str(folder), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return pd.read_csv(out / "runs.csv").set_index("run")


@pytest.mark.slow
def test_a_copied_run_folder_is_reported_as_a_stray_and_left_out(sweep, tmp_path):
    cwd, _ = sweep
    folder = tmp_path / "small"
    shutil.copytree(cwd / "multirun" / "small", folder)
    subprocess.run(
        ["cp", "-a", str(folder / "cell=one,layers=1,seed=0"), str(folder / "cell=one,layers=1,seed=0 copy")],
        check=True,
    )
    runs = aggregate_damaged(folder, tmp_path / "report")
    assert runs.loc["cell=one,layers=1,seed=0 copy", "status"] == "damaged"
    assert (
        "stray: its records are those of run 'cell=one,layers=1,seed=0'"
        in runs.loc["cell=one,layers=1,seed=0 copy", "error"]
    )
    summary = pd.read_csv(tmp_path / "report" / "summary_test_perplexity.csv")
    assert summary["n"].tolist() == [2, 2, 2, 2]  # two seeds each, the copy in none


@pytest.mark.slow
def test_another_runs_event_file_copied_into_a_finished_run_damages_it(sweep, tmp_path):
    """TensorBoard's reader merges the files: the run's event files then hold more epochs
    than metrics.json, the run's claim, says it trained."""
    cwd, _ = sweep
    folder = tmp_path / "small"
    shutil.copytree(cwd / "multirun" / "small", folder)
    (foreign,) = (folder / "cell=one,layers=1,seed=0").glob("events.out.tfevents.*")
    target = folder / "cell=one,layers=1,seed=1"
    shutil.copy2(foreign, target / (foreign.name[: -len(foreign.suffix)] + ".99"))  # after its own, by name
    runs = aggregate_damaged(folder, tmp_path / "report")
    assert runs.loc["cell=one,layers=1,seed=1", "status"] == "damaged"
    assert (
        "the event files hold 4 val/ppl points, metrics.json 2 epochs" in runs.loc["cell=one,layers=1,seed=1", "error"]
    )
    summary = pd.read_csv(tmp_path / "report" / "summary_test_perplexity.csv")
    assert summary["n"].tolist() == [1, 2, 2, 2]


@pytest.mark.slow
def test_a_finished_run_of_other_settings_is_refused_not_skipped_and_kept(sweep, cache_dir, tmp_path):
    """A folder moved in under a name of the grid is never counted as the grid's run."""
    cwd, _ = sweep
    folder = tmp_path / "small"
    shutil.copytree(cwd / "multirun" / "small", folder)
    moved_in = folder / "cell=two,layers=1,seed=1"
    saved = moved_in / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text().replace("hidden_size: 16", "hidden_size: 24"))
    before = {p: p.read_bytes() for p in moved_in.rglob("*") if p.is_file()}
    grid = [*SMALL_GRID, "model.cell=one,two"]
    preview = lstm_sweep(tmp_path, cache_dir, "--dry-run", "--dir", "small", *grid)
    assert f"{'refused (settings differ)':<25} cell=two,layers=1,seed=1" in preview.stdout
    assert preview.stdout.splitlines()[-1].endswith(
        "1 refused (settings differ), 7 skip (finished); dry run, nothing started"
    )
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "small", "--no-report", *grid)
    assert proc.returncode == 1
    assert (
        "run cell=two,layers=1,seed=1 failed: " + f"{moved_in} holds a finished run with other settings: "
        "model.hidden_size (24 → 16)"
    ) in proc.stderr
    assert {p: p.read_bytes() for p in moved_in.rglob("*") if p.is_file()} == before
