"""`lstm-sweep --until-decided`: the comparisons a sweep folder's runs make, the seeds the next
round needs (none for a configuration whose comparisons have stopped), the one-line refusals,
the report's section — and, end to end, rounds of real runs that stop, resume after a kill
at the same looks, and show their first round in a dry run."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import TINY
from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.report import sequential_section
from lstm_sweep.analysis.sequential import Design, questions, record, seeds_needed, verdict
from lstm_sweep.cli import sweep as sweep_cli
from lstm_sweep.cli.rounds import run_names
from lstm_sweep.errors import ConfigError
from lstm_sweep.naming import with_seed
from lstm_sweep.records import SEQUENTIAL_FILE, read_status, recorded_status

BIN = Path(sys.executable).parent
DESIGN = Design(alpha=0.05, round_seeds=5, max_seeds=30)
FACTORS = ["model.cell", "model.num_layers"]


def runs_table(seeds: int, effect_at: dict[int, float], status: dict[str, str] | None = None) -> pd.DataFrame:
    """A course grid's runs: model two is `effect_at[layers]` ppl below model one, seed noise 1 ppl."""
    rng = np.random.default_rng(0)
    rows = []
    for cell in ("one", "two"):
        for layers in (1, 2):
            for seed in range(seeds):
                name = f"cell={cell},layers={layers},seed={seed}"
                ppl = 280 + rng.normal() - (effect_at[layers] if cell == "two" else 0)
                rows.append(
                    {
                        "run": name,
                        "model.cell": cell,
                        "model.num_layers": layers,
                        "seed": seed,
                        "status": (status or {}).get(name, "finished"),
                        "test/ppl": ppl,
                        "error": "",
                    }
                )
    return pd.DataFrame(rows)


def test_each_context_is_its_own_comparison_and_a_clear_effect_is_decided_at_the_first_look():
    runs = runs_table(5, {1: 50.0, 2: 0.0})
    found = questions(runs, FACTORS, ["cell"], "test/ppl", DESIGN)
    assert [(q.factor, q.context, q.a, q.b) for q in found] == [
        ("model.cell", {"model.num_layers": 1}, "one", "two"),
        ("model.cell", {"model.num_layers": 2}, "one", "two"),
    ]
    assert [q.result.outcome for q in found] == ["decided", "continue"]
    assert "model one vs model two at layers=1: decided, model two is better (5 seeds each" in verdict(
        found[0], "test/ppl"
    )
    # the decided comparison's configurations get no more seeds; the open one's get the next look's
    assert seeds_needed(found, DESIGN) == [
        ({"model.num_layers": 2, "model.cell": "one"}, 10),
        ({"model.num_layers": 2, "model.cell": "two"}, 10),
    ]


def test_a_configuration_in_two_comparisons_runs_the_seeds_the_longer_needs():
    runs = runs_table(5, {1: 50.0, 2: 0.0})
    found = questions(runs, FACTORS, ["cell", "layers"], "test/ppl", DESIGN)
    assert len(found) == 4
    assert [q.result.outcome for q in found] == ["decided", "continue", "continue", "decided"]
    needed = {(c["model.cell"], c["model.num_layers"]): n for c, n in seeds_needed(found, DESIGN)}
    # model two at 1 layer is 50 ppl off both its neighbours: both its comparisons have stopped;
    # model one at 1 layer is still needed by the open layer comparison of model one
    assert needed == {("one", 2): 10, ("two", 2): 10, ("one", 1): 10}


def test_a_look_waits_for_every_seed_of_its_round_on_both_sides():
    runs = runs_table(10, {1: 0.0, 2: 0.0}, status={"cell=two,layers=1,seed=7": "failed"})
    (first, _) = questions(runs, FACTORS, ["cell"], "test/ppl", DESIGN)
    assert [look.n for look in first.result.looks] == [5]  # seed 7 of model two is missing for look 2


def test_the_names_of_the_runs_a_round_needs():
    sweep = Sweep(Path("s"), runs_table(5, {1: 0.0, 2: 0.0}), pd.DataFrame(), FACTORS)
    names = run_names(sweep, [({"model.cell": "two", "model.num_layers": 2}, 7)])
    assert names == [f"cell=two,layers=2,seed={s}" for s in range(7)]
    # runs whose folders were made unique (naming.unique_name) are found under their own names
    runs = runs_table(5, {1: 0.0, 2: 0.0})
    runs["run"] = [name + "~0123abcd" if name.startswith("cell=two,layers=2") else name for name in runs["run"]]
    names = run_names(
        Sweep(Path("s"), runs, pd.DataFrame(), FACTORS), [({"model.cell": "two", "model.num_layers": 2}, 7)]
    )
    assert names == [f"cell=two,layers=2,seed={s}~0123abcd" for s in range(5)] + [
        f"cell=two,layers=2,seed={s}" for s in (5, 6)
    ]
    assert with_seed("cell=one,data.split_fractions=[0.8,0.1,0.1],seed=3", 12) == (
        "cell=one,data.split_fractions=[0.8,0.1,0.1],seed=12"
    )


@pytest.mark.parametrize(
    "asked, message",
    [
        (["lr"], "--until-decided lr: the sweep does not sweep it (it sweeps model.cell, model.num_layers)"),
        (["seed"], "--until-decided seed: the sweep does not sweep it"),
    ],
)
def test_a_factor_the_sweep_does_not_sweep_is_refused(asked, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        questions(runs_table(5, {1: 0.0, 2: 0.0}), FACTORS, asked, "test/ppl", DESIGN)


def test_a_factor_of_three_values_is_refused():
    runs = runs_table(5, {1: 0.0, 2: 0.0})
    runs.loc[0, "model.cell"] = "three"
    with pytest.raises(ConfigError, match=r"model.cell takes 3 values in the sweep \(three, one, two\); a comparison"):
        questions(runs, FACTORS, ["model.cell"], "test/ppl", DESIGN)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--round-seeds", "1"], "--round-seeds=1 must be at least 2 (a look needs a spread)"),
        (["--max-seeds", "3"], "--max-seeds=3 must be at least --round-seeds=5"),
        (["--alpha", "1.5"], "--alpha=1.5 must be in (0, 1)"),
        (["--margin", "-1"], "--margin=-1.0 must be a finite number > 0"),
        (["seed=0,1"], "seed=0,1: --until-decided chooses the seeds itself; leave seed out"),
    ],
)
def test_a_bad_design_is_refused_in_one_line_before_anything_runs(tmp_path, caplog, options, message):
    with caplog.at_level(logging.ERROR):
        code = sweep_cli.main(["--dir", str(tmp_path / "s"), "--until-decided", "cell", *options])
    assert code == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [message]
    assert not (tmp_path / "s").exists()


def test_the_report_says_how_many_seeds_each_comparison_took_and_why_it_stopped(tmp_path):
    runs = runs_table(10, {1: 50.0, 2: 0.0})
    folder = tmp_path / "sweep"
    folder.mkdir()
    found = questions(runs, FACTORS, ["cell"], "test/ppl", DESIGN)
    (folder / SEQUENTIAL_FILE).write_text(json.dumps(record(DESIGN, "test/ppl", ["cell"], found)))
    text = sequential_section(Sweep(folder, runs, pd.DataFrame(), FACTORS), tmp_path)
    assert "| model two − model one | layers=1 | 5 " in text
    assert "decided: the interval excludes 0 (model two is better)" in text
    assert "| model two − model one | layers=2 | 10 " in text and "open: more seeds are needed" in text
    assert "Runs the comparisons took: 30, against 120 for 30 seeds" in text
    assert "Some comparisons are still open" in text
    looks = pd.read_csv(tmp_path / "sequential.csv")
    assert list(looks["n"]) == [5, 5, 10] and list(looks["outcome"]) == ["decided", "continue", "continue"]


def test_the_report_recomputes_the_looks_from_the_runs_not_the_record(tmp_path):
    runs = runs_table(5, {1: 50.0, 2: 0.0})
    folder = tmp_path / "sweep"
    folder.mkdir()
    found = questions(runs, FACTORS, ["cell"], "test/ppl", DESIGN)
    written = record(DESIGN, "test/ppl", ["cell"], found)
    written["comparisons"][1]["outcome"] = "decided"  # a record that says more than its runs
    (folder / SEQUENTIAL_FILE).write_text(json.dumps(written))
    text = sequential_section(Sweep(folder, runs, pd.DataFrame(), FACTORS), tmp_path)
    assert text.count("decided: the interval excludes 0") == 1


# --------------------------------------------------------------------------- end to end

GRID = [*TINY, "model.num_layers=1", "trainer.max_epochs=1"]
ROUNDS = ["--until-decided", "cell", "--round-seeds", "2", "--max-seeds", "4"]


def lstm_sweep(cwd: Path, cache_dir: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "lstm-sweep"), *args, f"data.cache_dir={cache_dir}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, cache_dir):
    cwd = tmp_path_factory.mktemp("rounds")
    proc = lstm_sweep(cwd, cache_dir, "--dir", "s", *ROUNDS, *GRID)
    _, err = proc.communicate(timeout=900)
    return cwd, proc.returncode, err


@pytest.mark.slow
def test_rounds_add_seeds_until_the_most_and_the_report_says_so(rounds):
    cwd, code, err = rounds
    assert code == 0, err[-3000:]
    assert "round 2: 4 runs (seeds up to 3 of 2 configurations)" in err
    assert "every comparison has stopped after 2 rounds" in err
    record = json.loads((cwd / "s" / SEQUENTIAL_FILE).read_text())
    (comparison,) = record["comparisons"]
    assert [look["n"] for look in comparison["looks"]] == [2, 4] and comparison["seeds"] == 4
    starts = json.loads((cwd / "s" / "sweep.json").read_text())["starts"]
    assert [s["runs"] for s in starts] == [4, 4]  # the whole grid, then only the new seeds
    report = (cwd / "reports" / "default" / "REPORT.md").read_text()
    assert "## Seeds until decided" in report and "| model two − model one | all " in report


@pytest.mark.slow
def test_a_killed_loop_resumes_at_the_same_looks(rounds, tmp_path, cache_dir):
    cwd, code, _ = rounds
    assert code == 0
    proc = lstm_sweep(tmp_path, cache_dir, "--dir", "s", *ROUNDS, *GRID, start_new_session=True)
    deadline = time.monotonic() + 600
    while not list((tmp_path / "s").glob("cell=*,seed=2/status.json")):  # round 2 has begun
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the loop; its child sweep stops its runs itself
    proc.wait(timeout=60)
    while any(recorded_status(read_status(p.parent))[0] == "running" for p in (tmp_path / "s").glob("*/status.json")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    again = lstm_sweep(tmp_path, cache_dir, "--dir", "s", *ROUNDS, *GRID)
    _, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert "round 1:" in err and "seeds up to 3" in err
    resumed = json.loads((tmp_path / "s" / SEQUENTIAL_FILE).read_text())
    uninterrupted = json.loads((cwd / "s" / SEQUENTIAL_FILE).read_text())
    assert resumed == uninterrupted  # runs resume bit for bit: the same numbers, the same looks


@pytest.mark.slow
def test_a_dry_run_shows_the_design_and_the_first_round(tmp_path, cache_dir):
    proc = lstm_sweep(tmp_path, cache_dir, "--dry-run", "--dir", "s", *ROUNDS, *GRID)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "design: α = 0.05; looks at seeds per configuration 2 (|z| ≥ 2.772), 4 (|z| ≥ 1.979)" in out
    assert "start                     cell=one,seed=1" in out
    assert "4 runs in s: 4 start; dry run, nothing started" in out
    assert not (tmp_path / "s").exists()
