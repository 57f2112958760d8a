"""A random search through the real command line: the dry run, a kill -9 and a resume that
trains each trial once with the same values, one-line refusals, and the Odyssey at Greff's
scale as a dry run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TINY
from lstm_sweep.analysis.read import read_sweep, trial_values
from test_sweep import lstm_sweep, running_runs, wait_until_gone

BIN = Path(sys.executable).parent
SEARCH = (
    "++hydra.sweeper.search={trials: 3, seed: 5, "
    'space: {optim.lr: "loguniform(1e-3, 1e-1)", model.hidden_size: "logint(8, 24)"}}'
)
UNSEARCHED = [o for o in TINY if not o.startswith("model.hidden_size=")]  # searched here
GRID = [*UNSEARCHED, "trainer.max_epochs=1", "model.num_layers=1", "model.cell=one,two", "seed=0", SEARCH]


@pytest.mark.slow
def test_a_dry_run_lists_the_trials_and_writes_nothing(tmp_path, cache_dir):
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "s", "--dry-run", *GRID)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("start ")]
    assert names == [f"cell={c},trial={t}" for t in range(3) for c in ("one", "two")]
    assert "trial 0: optim.lr=" in proc.stdout
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_killed_search_resumes_with_the_same_trials_none_trained_twice(tmp_path, cache_dir):
    args = [
        str(BIN / "lstm-sweep"),
        "--dir",
        str(tmp_path / "s"),
        "--no-report",
        *GRID,
        "data.generator.train_tokens=100000",
        "trainer.max_epochs=2",
        "trainer.checkpoint_every_n_steps=10",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"data.cache_dir={cache_dir}",
    ]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running = running_runs(tmp_path / "s", count=2)
    group = os.getpgid(running[0]["pid"])
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    os.killpg(group, signal.SIGKILL)  # kill -9 of the whole sweep, its workers too
    wait_until_gone(group)
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    sweep = read_sweep(tmp_path / "s")
    assert set(sweep.runs["status"]) == {"finished"} and len(sweep.runs) == 6
    trials = trial_values(sweep.search)
    for _, run in sweep.runs.iterrows():
        assert {k: run[k] for k in trials[run["trial"]]} == trials[run["trial"]], run["run"]
        log = (Path(run["path"]) / "train.log").read_text()
        assert log.count("test/ppl ") == 1, run["run"]  # tested once: none trained twice
    starts = json.loads((tmp_path / "s" / "sweep.json").read_text())["starts"]
    assert len(starts) == 2 and starts[0]["search"] == starts[1]["search"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "says"),
    [
        (
            '++hydra.sweeper.search={trials: 0, space: {optim.lr: "loguniform(1e-3, 1e-1)"}}',
            "hydra.sweeper.search.trials",
        ),
        ('++hydra.sweeper.search={trials: 2, space: {optim.lr: "loguniform(1e-1, 1e-3)"}}', "not below its high bound"),
        ('++hydra.sweeper.search={trials: 2, space: {optim.lr: "loguniform(-1, 1)"}}', "must be above 0"),
        ('++hydra.sweeper.search={trials: 2, space: {optim.lr: "normal(0, 1)"}}', "unknown distribution 'normal'"),
    ],
)
def test_a_bad_space_is_one_line_and_exit_1(tmp_path, cache_dir, override, says):
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "s", *UNSEARCHED, "seed=0", override)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not any((tmp_path / "s").glob("*/status.json"))


@pytest.mark.slow
def test_completing_a_search_with_another_seed_is_refused(tmp_path, cache_dir):
    first = lstm_sweep(tmp_path, cache_dir, "--dir", "s", "--no-report", *GRID, "trainer.limit_train_batches=2")
    assert first.returncode == 0, first.stderr[-2000:]
    other = lstm_sweep(
        tmp_path, cache_dir, "--dir", "s", *GRID, "trainer.limit_train_batches=2", "hydra.sweeper.search.seed=6"
    )
    assert other.returncode == 1 and "searched with another hydra.sweeper.search, its seed (5 → 6)" in other.stderr


@pytest.mark.slow
def test_the_odyssey_at_greffs_scale_dry_runs(tmp_path, cache_dir):
    from helpers import write_corpus

    root = write_corpus(tmp_path / "corpus", "a b c d e f\n" * 50)
    proc = lstm_sweep(
        tmp_path,
        cache_dir,
        "--dir",
        "s",
        "--dry-run",
        "experiment=odyssey",
        f"data.root={root}",
        "hydra.sweeper.search.trials=200",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1800 runs in" in proc.stdout and "1800 start" in proc.stdout
    assert "start                     cell=fgr,trial=199" in proc.stdout


@pytest.mark.slow
def test_until_decided_refuses_a_search_before_training(tmp_path, cache_dir):
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "s", "--until-decided", "model.cell", *GRID[:-2], SEARCH)
    assert proc.returncode == 1 and "a search's trials differ in theirs" in proc.stderr, proc.stderr[-2000:]
    assert not any((tmp_path / "s").glob("*/status.json"))
