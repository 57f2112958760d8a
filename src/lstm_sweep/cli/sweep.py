"""`lstm-sweep`: the main job — a Hydra multirun of an experiment's grid, then its report.

    lstm-sweep                                     # the report grid on the built-in corpus
    lstm-sweep experiment=report2021 data.root=…/penn_small
    lstm-sweep model.hidden_size=64,128 seed='range(3)'
    lstm-sweep --dir multirun/report2021/2026-…    # complete an interrupted sweep
    lstm-sweep --dry-run model.hidden_size=64,128  # what it would start, resume and skip
    lstm-sweep hydra/launcher=slurm hydra.launcher.partition=gpu …   # submit to SLURM, return
    lstm-sweep --status multirun/report2021/2026-…  # where each run stands
    lstm-sweep --until-decided model.cell experiment=report2021 …  # seeds in rounds until decided

The sweep itself is `lstm-train -m` with the same overrides, run as a child process
(cli/launch.py; the grid and the run folders are its sweeper's, lstm_sweep.sweep.grid); this
command picks the sweep folder, waits, and then writes the report (lstm_sweep.analysis.report);
with --until-decided it runs one such sweep a round (cli/rounds.py). A run that
fails is recorded and the others go on; the report is written either way; the exit status
is 1 if any run did not finish. Running again on an existing sweep folder skips the finished runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from lstm_sweep.cli import rounds
from lstm_sweep.cli.launch import finish, launch
from lstm_sweep.errors import log_user_error
from lstm_sweep.files import cannot_write
from lstm_sweep.sweep.status import print_status, submitted_since

log = logging.getLogger("lstm_sweep.sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-sweep",
        description="The main job: a Hydra multirun of an experiment's grid, then its report.",
        epilog="Any other argument is a Hydra override, as for lstm-train.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="the sweep folder (default: multirun/<name>/<date>_<time>_<pid>); "
        "an existing one is completed, its finished runs skipped",
    )
    parser.add_argument("--out", type=Path, help="the report folder (default: reports/<name>)")
    parser.add_argument("--no-report", action="store_true", help="run the sweep only")
    parser.add_argument(
        "--config-dir",
        "-cd",
        type=Path,
        metavar="DIR",
        help="a folder of your own configs, searched first (DIR/experiment/NAME.yaml is "
        "experiment=NAME), as lstm-train's --config-dir",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs the sweep would start, resume and skip (as finished); start none",
    )
    parser.add_argument(
        "--status",
        type=Path,
        metavar="DIR",
        help="show each run of the sweep folder DIR as it stands (and its SLURM job's, if "
        "submitted with hydra/launcher=slurm); start nothing",
    )
    rounds.add_arguments(parser)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("--")]
    if unknown:
        parser.error(f"unrecognized option {unknown[0]} (Hydra overrides look like key=value)")
    args.overrides = overrides
    return args


def experiment_name(overrides: list[str]) -> str:
    """The experiment the overrides select (`experiment=NAME` or `+experiment=NAME`), else "default"."""
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group == "experiment" and not override.is_sweep_override():
            return str(override.value())
    return "default"


def default_sweep_dir(name: str) -> Path:
    # As config.yaml's hydra.sweep.dir; chosen here because the report needs to know it.
    return Path("multirun") / name / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}_{os.getpid()}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    if args.status:
        try:
            return print_status(args.status)
        except Exception as err:
            return log_user_error(err, log)
    try:
        sweep_dir = args.dir or default_sweep_dir(experiment_name(args.overrides))
    except Exception as err:  # Hydra's parser: an override that is not key=value
        log.error("%s", str(err).strip().splitlines()[0])
        return 1
    if not (args.no_report or args.dry_run):  # found now, not once every run has trained
        problem = cannot_write(args.out or "reports")
        if problem:
            log.error("the report's folder%s: %s", f" (--out {args.out})" if args.out else "", problem)
            return 1
    if args.until_decided:
        return rounds.until_decided(args, argv, sweep_dir)
    started = time.time()
    code = launch(argv, args.overrides, sweep_dir, args.config_dir, args.dry_run)
    if code is not None:
        return code
    if (submission := submitted_since(sweep_dir, started)) is not None:  # hydra/launcher=slurm: queued
        log.info(
            "the sweep is queued (array %s, report %s); `lstm-sweep --status %s` shows where it stands",
            submission["array"],
            submission["report"] or "none",
            sweep_dir,
        )
        return 0
    return finish(sweep_dir, args.out, report=not args.no_report)


if __name__ == "__main__":
    sys.exit(main())
