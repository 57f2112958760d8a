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

from helpers import TINY, extra

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

BIN = Path(sys.executable).parent
# Runs long enough (tens of seconds) to be requeued and cancelled while they train.
GRID = [
    *TINY,
    "data.generator.train_tokens=40000",
    "trainer.max_epochs=3",
    "trainer.checkpoint_every_n_steps=10",
    "model.num_layers=1",
    "seed=0,1",
]


@pytest.fixture(scope="module")
def cluster():
    answer = subprocess.run(["sinfo", "-h"], capture_output=True, text=True) if shutil.which("sinfo") else None
    if answer is None or answer.returncode != 0:
        reason = "needs a SLURM cluster that answers `sinfo`: tests/cluster/slurm-up.sh starts one (as root)"
        if os.environ.get("LSTM_SWEEP_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def lstm_sweep(cwd: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "lstm-sweep"), *args, f"data.cache_dir={cache_dir}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def status(cwd: Path, sweep: str) -> dict[str, dict]:
    proc = subprocess.run(
        [str(BIN / "lstm-sweep"), "--status", sweep], cwd=cwd, capture_output=True, text=True, timeout=60
    )
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
    cluster, tmp_path, cache_dir
):
    started = time.monotonic()
    proc = lstm_sweep(
        tmp_path, cache_dir, "--dir", "cluster", "hydra/launcher=slurm", *GRID, "model.cell=one,two,three"
    )
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
        "cell=one,seed=0": "finished",
        "cell=one,seed=1": "finished",
        "cell=two,seed=0": "finished",
        "cell=two,seed=1": "cancelled",
        "cell=three,seed=0": "failed",
        "cell=three,seed=1": "failed",
    }
    assert states["cell=one,seed=0"]["requeues"] >= 1 and "model.cell='three'" in states["cell=three,seed=0"]["detail"]
    assert states[""]["summary"].startswith("6 runs in cluster: 1 cancelled, 2 failed, 3 finished; report job")
    log = (requeued / "train.log").read_text()
    assert "resuming from" in log
    text = report.read_text()
    assert "Runs: 3 finished of 6." in text and "`cell=two,seed=1`: interrupted" in text
    assert "`cell=three,seed=0`: failed" in text

    # the same grid, run here: the same numbers, to the last bit
    local = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "local",
        "--no-report",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *GRID,
        "model.cell=one,two",
    )
    assert local.returncode == 0, local.stderr[-3000:]
    here = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "local").glob("*/metrics.json")}
    finished = pd.read_csv(tmp_path / "reports" / "default" / "runs.csv").query("status == 'finished'")["run"]
    assert sorted(finished) == ["cell=one,seed=0", "cell=one,seed=1", "cell=two,seed=0"] and len(here) == 4
    timings = ("wall_time_sec", "train/tokens_per_sec")
    for run in finished:
        ours = json.loads((sweep_dir / run / "metrics.json").read_text())
        assert {k: v for k, v in ours.items() if k not in timings} == {
            k: v for k, v in here[run].items() if k not in timings
        }, run


def test_a_run_longer_than_its_time_limit_finishes_across_requeues_and_the_cap_stops_one(cluster, tmp_path, cache_dir):
    # ~2 min of training against a 2-minute limit, warned 30 s ahead — SLURM may warn up to a
    # minute early, so each job trains 20-80 s before its warning and the run needs requeues.
    long_run = [
        *TINY,
        "data.generator.train_tokens=300000",
        "trainer.max_epochs=4",
        "model.embedding_size=128",
        "model.hidden_size=128",
        "model.num_layers=1",
        "model.cell=one",
        "seed=0",
        "hydra/launcher=slurm",
        "hydra.launcher.time_min=2",
        "hydra.launcher.signal_delay_s=30",
        "hydra.launcher.report=false",
    ]
    for name, cap in (("enough", 10), ("capped", 0)):
        proc = lstm_sweep(tmp_path, cache_dir, "--dir", name, *long_run, f"hydra.launcher.max_requeues={cap}")
        assert proc.returncode == 0, proc.stderr[-3000:]

    def settled(name: str) -> dict | None:
        row = status(tmp_path, name)["run"] if (tmp_path / name / "run").exists() else None
        return row if row and row["state"] not in ("pending", "running") else None

    enough = wait_for(lambda: settled("enough"), "the run to finish across requeues", seconds=600)
    assert enough["state"] == "finished" and enough["requeues"] >= 1
    log = (tmp_path / "enough" / "run" / "train.log").read_text()
    assert "SLURM's time-limit warning" in log and "resuming from" in log
    capped = wait_for(lambda: settled("capped"), "the capped run to stop", seconds=300)
    assert capped["state"] in ("interrupted", "timed out") and capped["requeues"] == 0
    record = json.loads((tmp_path / "capped" / "run" / "status.json").read_text())
    assert (
        record["status"] == "interrupted"
        and "not requeued: it was requeued 0 times, the most allowed" in record["error"]
    )

    # resumed across jobs, the run equals the same run never interrupted
    local = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "local",
        "--no-report",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *[o for o in long_run if not o.startswith("hydra")],
    )  # 1 thread, as the job
    assert local.returncode == 0, local.stderr[-3000:]
    timings = ("wall_time_sec", "train/tokens_per_sec")
    ours, here = (json.loads((tmp_path / d / "run" / "metrics.json").read_text()) for d in ("enough", "local"))
    assert {k: v for k, v in ours.items() if k not in timings} == {k: v for k, v in here.items() if k not in timings}


@pytest.mark.extras
def test_hydras_own_submitit_launcher_still_runs_a_sweep_with_threads_shared(tmp_path, cache_dir):
    """The blocking path (pip install "lstm-sweep[slurm]"): Hydra's submitit_local runs every
    job at once, so each gets cores ÷ jobs threads."""
    extra("hydra_plugins.hydra_submitit_launcher", "slurm")
    proc = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "local",
        "--no-report",
        "hydra/launcher=submitit_local",
        *TINY,
        "model.num_layers=1",
        "model.cell=one",
        "seed=0,1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for run in ("seed=0", "seed=1"):
        log = (tmp_path / "local" / run / "train.log").read_text()
        assert f"{max(1, (os.cpu_count() or 1) // 2)} torch threads" in log
        assert json.loads((tmp_path / "local" / run / "status.json").read_text())["status"] == "finished"


def test_a_sweep_completed_by_cluster_jobs_and_a_local_process_at_once_trains_each_run_once(
    cluster, tmp_path, cache_dir
):
    grid = [
        *TINY,
        "data.generator.train_tokens=20000",
        "trainer.max_epochs=2",
        "model.num_layers=1",
        "model.cell=one,fgr",  # a variant too: FGR's state is five tensors, resumed and reported alike
        "seed=0,1",
    ]
    submitted = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "mixed",
        "--no-report",
        "hydra/launcher=slurm",
        "hydra.launcher.array_parallelism=1",
        "hydra.launcher.report=false",
        *grid,
    )
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    local = lstm_sweep(tmp_path, cache_dir, "--dir", "mixed", "--no-report", *grid)
    assert local.returncode in (0, 1), local.stderr[-3000:]  # 1: runs the cluster still trained when it ended
    wait_for(
        lambda: all(r["state"] == "finished" for run, r in status(tmp_path, "mixed").items() if run),
        "every run finished",
        seconds=600,
    )
    runs = sorted(p.parent for p in (tmp_path / "mixed").glob("*/metrics.json"))
    assert len(runs) == 4
    for run in runs:
        assert (run / "train.log").read_text().count("corpus: train") == 1, run.name  # trained once, by one of them
        assert not (run / "attempts").exists()


def test_seeds_until_decided_runs_each_round_as_a_job_array_and_waits_for_it(cluster, tmp_path, cache_dir):
    proc = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "rounds",
        "--until-decided",
        "cell",
        "--round-seeds",
        "2",
        "--max-seeds",
        "4",
        "hydra/launcher=slurm",
        *TINY,
        "model.num_layers=1",
        "trainer.max_epochs=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep_dir = tmp_path / "rounds"
    submissions = json.loads((sweep_dir / "slurm.json").read_text())["submissions"]
    # the whole grid's first seeds, then only the new seeds; no report job per round
    assert [sorted(s["runs"]) for s in submissions] == [
        ["cell=one,seed=0", "cell=one,seed=1", "cell=two,seed=0", "cell=two,seed=1"],
        ["cell=one,seed=2", "cell=one,seed=3", "cell=two,seed=2", "cell=two,seed=3"],
    ]
    assert [s["report"] for s in submissions] == [None, None]
    (comparison,) = json.loads((sweep_dir / "sequential.json").read_text())["comparisons"]
    assert [look["n"] for look in comparison["looks"]] == [2, 4]
    assert "## Seeds until decided" in (tmp_path / "reports" / "default" / "REPORT.md").read_text()


def test_a_search_submitted_to_the_cluster_runs_its_trials_and_reports_them(cluster, tmp_path, cache_dir):
    search = (
        "++hydra.sweeper.search={trials: 3, seed: 1, "
        'space: {optim.lr: "loguniform(1e-3, 1e-1)", model.hidden_size: "logint(8, 24)"}}'
    )
    tiny = [
        *(o for o in TINY if not o.startswith("model.hidden_size=")),
        "trainer.max_epochs=1",
        "model.num_layers=1",
        "seed=0",
        "model.cell=one,two",
        search,
    ]
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "search", "hydra/launcher=slurm", *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wait_for(lambda: "completed" in status(tmp_path, "search")[""]["summary"], "the search's report job", seconds=600)
    states = status(tmp_path, "search")
    assert {run: s["state"] for run, s in states.items() if run} == {
        f"cell={c},trial={t}": "finished" for c in ("one", "two") for t in range(3)
    }
    from lstm_sweep.analysis.read import read_sweep, trial_values

    sweep = read_sweep(tmp_path / "search")
    trials = trial_values(sweep.search)
    for _, run in sweep.runs.iterrows():
        assert {k: run[k] for k in trials[run["trial"]]} == trials[run["trial"]], run["run"]
    text = (tmp_path / "reports" / "default" / "REPORT.md").read_text()
    assert "## Search" in text and "A random search of 3 trials (search seed 1)" in text
