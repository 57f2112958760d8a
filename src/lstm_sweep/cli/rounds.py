"""`lstm-sweep --until-decided FACTOR`: seeds in rounds until each comparison is decided.

    lstm-sweep --until-decided model.cell experiment=report2021 data.root=…/penn_small
    lstm-sweep --until-decided cell --until-decided layers --round-seeds 5 --max-seeds 30 …
    lstm-sweep --until-decided cell --margin 1.0 …   # or shown smaller than 1 ppl

The factor must take two values in the grid; it is compared at each combination of the
other factors' values (model one against model two at 1 layer, and at 2 layers). Each round
is one child sweep (cli/launch.py) into the same sweep folder: the first runs the whole grid
with seeds 0 … round_seeds−1; each later one only the runs the open comparisons need for
their next look (`hydra.sweeper.only`), so a configuration whose comparisons have stopped
gets no more seeds. After each round the looks are replayed from the runs on disk
(lstm_sweep.analysis.sequential), which makes the loop resume-safe: after a kill, the same
command with `--dir` skips the finished runs, reaches the same looks and goes on from there.

The question and the design go into the sweep folder's sequential.json, from which the report
recomputes the looks and says for each comparison how many seeds it took and why it stopped.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_sweep.cli.launch import finish, launch
from lstm_sweep.errors import ConfigError, log_user_error
from lstm_sweep.files import write_json
from lstm_sweep.naming import with_seed
from lstm_sweep.records import SEQUENTIAL_FILE, is_finished, read_status
from lstm_sweep.sweep.grid import ONLY_KEY, ROUNDS_KEY, quote
from lstm_sweep.sweep.progress import SweepProgress
from lstm_sweep.sweep.slurm import LIVE_STATES, job_states
from lstm_sweep.sweep.status import submitted_since

if TYPE_CHECKING:  # the statistics load scipy and pandas: only rounds need them, not every lstm-sweep
    from lstm_sweep.analysis.read import Sweep
    from lstm_sweep.analysis.sequential import Design, Question

log = logging.getLogger("lstm_sweep.sweep")

METRICS = ("test/ppl", "test/loss", "val/ppl", "val/loss", "best_val/ppl")  # lower is better
SLURM_POLL_SECONDS = 5  # how often a submitted round's jobs are asked after


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "seeds until decided",
        "run seeds in rounds until each comparison of FACTOR's two values is decided (a "
        "group-sequential test, O'Brien–Fleming α-spending), shown smaller than --margin, or "
        "--max-seeds is reached",
    )
    group.add_argument(
        "--until-decided",
        action="append",
        metavar="FACTOR",
        help="a swept key of two values (model.cell, or its short name cell); repeat for several",
    )
    group.add_argument("--round-seeds", type=int, default=5, metavar="N", help="seeds added per round (default 5)")
    group.add_argument(
        "--max-seeds", type=int, default=30, metavar="N", help="seeds per configuration at most (default 30)"
    )
    group.add_argument(
        "--margin",
        type=float,
        metavar="X",
        help="stop as equivalent once the difference is shown within ±X (the metric's units); default: never",
    )
    group.add_argument(
        "--alpha", type=float, default=0.05, help="the chance of a wrong decision over all looks (default 0.05)"
    )
    group.add_argument("--metric", choices=METRICS, default="test/ppl", help="what is compared (default test/ppl)")


def until_decided(args: argparse.Namespace, argv: list[str], sweep_dir: Path) -> int:
    from lstm_sweep.analysis.read import read_sweep
    from lstm_sweep.analysis.sequential import Design, questions, record, seeds_needed, verdict

    try:
        design = Design(args.alpha, args.round_seeds, args.max_seeds, args.margin)
        refuse_seed_overrides(args.overrides)
    except ConfigError as err:
        return log_user_error(err, log)
    first = [*args.overrides, f"seed=range({design.looks[0]})", f"{ROUNDS_KEY}=true"]
    if args.dry_run:
        print(design_lines(design), flush=True)
        print(f"first round: seeds 0–{design.looks[0] - 1} of every configuration of the grid", flush=True)
        return launch(argv, first, sweep_dir, args.config_dir, dry_run=True) or 0
    overrides, wanted, number = first, None, 1
    log.info("%s", design_lines(design))
    log.info("round 1: seeds 0–%d of every configuration of the grid", design.looks[0] - 1)
    while True:
        started = time.time()
        code = launch(argv, [*overrides, *slurm_overrides(args.overrides)], sweep_dir, args.config_dir)
        if code is not None:
            return code
        if (submission := submitted_since(sweep_dir, started)) is not None:
            wait_for_jobs(sweep_dir, submission["runs"])
        try:
            sweep = read_sweep(sweep_dir)
            found = questions(sweep.runs, sweep.factors, args.until_decided, args.metric, design)
        except Exception as err:
            return log_user_error(err, log)
        write_json(sweep_dir / SEQUENTIAL_FILE, record(design, args.metric, args.until_decided, found))
        for question in found:
            log.info("%s", verdict(question, args.metric))
        missing = missing_runs(sweep, found, wanted, design)
        if missing:
            for name, why in missing:
                log.error("run %s %s: the comparisons need it", name, why)
            log.error(
                "the rounds stop here; `lstm-sweep --dir %s` with the same options and overrides tries them again",
                sweep_dir,
            )
            finish(sweep_dir, args.out, report=not args.no_report)
            return 1
        needed = seeds_needed(found, design)
        if not needed:
            break
        wanted = run_names(sweep, needed)
        finished = set(sweep.finished["run"])
        new = [name for name in wanted if name not in finished]
        if not new:  # every run the next looks need has finished, and no look came of them
            log.error("the looks cannot go on: their runs have finished but give no look (%s)", sweep_dir)
            return 1
        number += 1
        log.info("round %d: %d runs (%s)", number, len(new), round_summary(needed))
        seeds = max(n for _, n in needed)
        overrides = [
            *args.overrides,
            f"seed=range({seeds})",
            f"{ONLY_KEY}=[{','.join(map(quote, new))}]",
            f"{ROUNDS_KEY}=true",
        ]
    log.info(
        "every comparison has stopped after %d rounds: %s",
        number,
        "; ".join(f"{q.result.outcome} after {q.result.seeds} seeds" for q in found),
    )
    return finish(sweep_dir, args.out, report=not args.no_report)


def round_summary(needed: list[tuple[dict, int]]) -> str:
    """`seeds up to 9 of 4 configurations`, grouped by the seeds they need."""
    counts: dict[int, int] = {}
    for _, n in needed:
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(
        f"seeds up to {n - 1} of {k} configuration{'s' if k > 1 else ''}" for n, k in sorted(counts.items())
    )


def refuse_seed_overrides(overrides: list[str]) -> None:
    for override in overrides:
        if override.lstrip("+~").split("=", 1)[0] == "seed":
            raise ConfigError(f"{override}: --until-decided chooses the seeds itself; leave seed out")


def slurm_overrides(overrides: list[str]) -> list[str]:
    """On SLURM, no report job a round: lstm-sweep waits for the rounds and writes the report."""
    return ["hydra.launcher.report=false"] if "hydra/launcher=slurm" in overrides else []


def design_lines(design: Design) -> str:
    looks = ", ".join(f"{n} (|z| ≥ {c:.3f})" for n, c in zip(design.looks, design.boundaries()))
    margin = f", equivalent within ±{design.margin:g}" if design.margin is not None else ""
    return f"design: α = {design.alpha:g}{margin}; looks at seeds per configuration {looks}"


def missing_runs(sweep: Sweep, found: list[Question], wanted: list[str] | None, design: Design) -> list[tuple]:
    """(run, why) for each run the last round was to finish and did not: failed, damaged or
    never made. In the first round, every configuration's first round_seeds seeds."""
    runs = sweep.runs.set_index("run")
    if wanted is None:
        configs = [q.config(level) for q in found for level in (q.a, q.b)]
        wanted = run_names(sweep, [(config, design.looks[0]) for config in configs])
    missing = []
    for name in dict.fromkeys(wanted):
        if name not in runs.index:
            missing.append((name, "was not made"))
        elif runs.loc[name, "status"] != "finished":
            error = runs.loc[name, "error"]
            missing.append((name, f"{runs.loc[name, 'status']}" + (f" ({error})" if error else "")))
    return missing


def run_names(sweep: Sweep, needed: list[tuple[dict, int]]) -> list[str]:
    """The folder names of seeds 0 … n−1 of each configuration: the folder of that seed where
    the sweep holds one (its name may carry a unique suffix, naming.unique_name), else the
    readable name of a run of the configuration with the seed in it."""
    names = []
    for config, n in needed:
        mask = sweep.runs["run"].notna()
        for key, value in config.items():
            mask &= sweep.runs[key] == value
        if not mask.any():
            raise ConfigError(f"no run of {config} in {sweep.folder}: the first round has not made one")
        runs = sweep.runs[mask]
        made = dict(zip(runs["seed"], runs["run"])) if "seed" in runs else {}
        example = str(runs["run"].iloc[0])
        names += [str(made[seed]) if seed in made else with_seed(example, seed) for seed in range(n)]
    return names


def wait_for_jobs(sweep_dir: Path, jobs: dict[str, str]) -> None:
    """Wait until every run of a submitted round has ended: its record says finished or failed,
    or SLURM's accounting says its job is no longer pending, running or suspended."""
    runs = list(jobs)
    log.info("round submitted to SLURM (%d runs); waiting for its jobs", len(runs))
    progress = SweepProgress(sweep_dir)
    while True:
        progress.poll()
        states = job_states(sorted(set(jobs.values())))
        live = [
            run
            for run in runs
            if not is_finished(sweep_dir / run)
            and read_status(sweep_dir / run).get("status") != "failed"
            and states.get(jobs[run], {}).get("state", "PENDING") in LIVE_STATES
        ]
        if not live:
            return
        time.sleep(SLURM_POLL_SECONDS)
