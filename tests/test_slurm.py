"""Sweeps submitted to a real SLURM cluster (tests/cluster/slurm-up.sh starts one on this
machine): submitted and left alone, a job requeued mid-training, one that fails and one
cancelled — the report comes, and its numbers equal (==) the same grid run locally."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import TINY

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

BIN = Path(sys.executable).parent
# Runs long enough (tens of seconds) to be requeued and cancelled while they train.
GRID = [*TINY, "data.generator.train_tokens=40000", "trainer.max_epochs=3", "trainer.checkpoint_every_n_steps=10",
        "model.num_layers=1", "seed=0,1"]


@pytest.fixture(scope="module")
def cluster():
    answer = subprocess.run(["sinfo", "-h"], capture_output=True, text=True) if shutil.which("sinfo") else None
    if answer is None or answer.returncode != 0:
        reason = "needs a SLURM cluster that answers `sinfo`: tests/cluster/slurm-up.sh starts one (as root)"
        if os.environ.get("LSTM_SWEEP_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def lstm_sweep(cwd: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "lstm-sweep"), *args, f"data.cache_dir={cache_dir}"],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def status(cwd: Path, sweep: str) -> dict[str, dict]:
    proc = subprocess.run([str(BIN / "lstm-sweep"), "--status", sweep], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = {}
    for line in lines[1:-1]:
        run, state, job, requeues, *detail = line.split(None, 4)
        rows[run] = {"state": state, "job": job, "requeues": int(requeues), "detail": " ".join(detail)}
    return rows | {"": {"summary": lines[-1]}}


def wait_for(predicate, what: str, seconds: float = 300):
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(0.5)
    return value


def job_of(sweep_dir: Path, run: str) -> str:
    return json.loads((sweep_dir / "slurm.json").read_text())["submissions"][-1]["runs"][run]


def test_a_submitted_sweep_needs_no_one_survives_requeue_and_cancel_and_equals_the_local_grid(
        cluster, tmp_path, cache_dir):
    started = time.monotonic()
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "cluster", "hydra/launcher=slurm", *GRID, "model.cell=one,two,three")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 60 and "the sweep is queued" in proc.stderr  # submitted, not waited for
    sweep_dir = tmp_path / "cluster"
    record = json.loads((sweep_dir / "slurm.json").read_text())["submissions"][-1]
    assert len(record["runs"]) == 6 and record["report"]

    # requeue one run mid-training, once its first resume checkpoint is written
    requeued = sweep_dir / "cell=one,seed=0"
    wait_for(lambda: (requeued / "checkpoints" / "resume.ckpt").exists(), "a resume checkpoint of cell=one,seed=0")
    subprocess.run(["scontrol", "requeue", job_of(sweep_dir, requeued.name)], check=True)
    # cancel another while it trains
    cancelled = sweep_dir / "cell=two,seed=1"
    wait_for(lambda: (cancelled / "checkpoints" / "resume.ckpt").exists(), "cell=two,seed=1 training")
    subprocess.run(["scancel", job_of(sweep_dir, cancelled.name)], check=True)

    report = tmp_path / "reports" / "default" / "REPORT.md"
    wait_for(lambda: "completed" in status(tmp_path, "cluster")[""]["summary"], "the report job", seconds=600)
    states = status(tmp_path, "cluster")
    assert {run: s["state"] for run, s in states.items() if run} == {
        "cell=one,seed=0": "finished", "cell=one,seed=1": "finished", "cell=two,seed=0": "finished",
        "cell=two,seed=1": "cancelled", "cell=three,seed=0": "failed", "cell=three,seed=1": "failed"}
    assert states["cell=one,seed=0"]["requeues"] >= 1 and "model.cell='three'" in states["cell=three,seed=0"]["detail"]
    assert states[""]["summary"].startswith("6 runs in cluster: 1 cancelled, 2 failed, 3 finished; report job")
    log = (requeued / "train.log").read_text()
    assert "resuming from" in log
    text = report.read_text()
    assert "Runs: 3 finished of 6." in text and "`cell=two,seed=1`: interrupted" in text
    assert "`cell=three,seed=0`: failed" in text

    # the same grid, run here: the same numbers, to the last bit
    local = lstm_sweep(tmp_path, cache_dir, "--dir", "local", "--no-report", "hydra/launcher=joblib",
                       "hydra.launcher.n_jobs=2", *GRID, "model.cell=one,two")
    assert local.returncode == 0, local.stderr[-3000:]
    here = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "local").glob("*/metrics.json")}
    finished = pd.read_csv(tmp_path / "reports" / "default" / "runs.csv").query("status == 'finished'")["run"]
    assert sorted(finished) == ["cell=one,seed=0", "cell=one,seed=1", "cell=two,seed=0"] and len(here) == 4
    timings = ("wall_time_sec", "train/tokens_per_sec")
    for run in finished:
        ours = json.loads((sweep_dir / run / "metrics.json").read_text())
        assert {k: v for k, v in ours.items() if k not in timings} == \
            {k: v for k, v in here[run].items() if k not in timings}, run
