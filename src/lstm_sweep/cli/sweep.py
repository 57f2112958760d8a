"""`lstm-sweep`: the main job — a Hydra multirun of an experiment's grid, then its report.

    lstm-sweep                                     # the report grid on the built-in corpus
    lstm-sweep experiment=report2021 data.root=…/penn_small
    lstm-sweep model.hidden_size=64,128 seed='range(3)'
    lstm-sweep --dir multirun/report2021/2026-…    # complete an interrupted sweep
    lstm-sweep --dry-run model.hidden_size=64,128  # what it would start, resume and skip
    lstm-sweep hydra/launcher=slurm hydra.launcher.partition=gpu …   # submit to SLURM, return
    lstm-sweep --status multirun/report2021/2026-…  # where each run stands

The sweep itself is `lstm-train -m` with the same overrides, run as a child process (the
grid and the run folders are its sweeper's, lstm_sweep.sweep.grid); this command picks the
sweep folder, waits, and then writes the report (lstm_sweep.analysis.report). A run that
fails is recorded and the others go on; the report is written either way; the exit status
is 1 if any run did not finish. Running again on an existing sweep folder skips the finished runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser

from lstm_sweep.analysis.read import read_sweep
from lstm_sweep.analysis.report import write_report
from lstm_sweep.errors import log_user_error
from lstm_sweep.records import STATUS_FILE, read_status
from lstm_sweep.sweep.child import PARENT_VARIABLE, SWEEP_DIR_VARIABLE
from lstm_sweep.sweep.grid import COMMAND_VARIABLE, quote
from lstm_sweep.sweep.progress import SweepProgress
from lstm_sweep.sweep.status import print_status, submitted_since

log = logging.getLogger("lstm_sweep.sweep")
PROGRESS_SECONDS = 2  # how often the sweep folder is read for runs that ended


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


def interrupted(sweep_dir: Path, since: float) -> bool:
    """Whether a run of the sweep was recorded as interrupted (Ctrl-C, a signal) in this start,
    i.e. since `since` (an earlier start's interrupted run is what this one completes)."""
    for status in sweep_dir.glob(f"*/{STATUS_FILE}"):
        try:
            if status.stat().st_mtime >= since and read_status(status.parent).get("status") == "interrupted":
                return True
        except OSError:
            continue
    return False


def pass_on(child: subprocess.Popen, signum: int) -> None:
    """The signal to the child's whole process group: every run records itself as interrupted.
    A hangup goes on as SIGTERM, which the runs handle (SIGHUP would kill them unrecorded)."""
    with suppress(ProcessLookupError):  # the group has just ended
        os.killpg(child.pid, signal.SIGTERM if signum == signal.SIGHUP else signum)


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
    # Its own process group, which its job workers join: a signal to this command is passed to
    # all of them (a terminal's Ctrl-C too, as the group is out of the terminal's reach), and
    # if this command is killed outright the child stops the group itself (child.py).
    started = time.time()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lstm_sweep.cli.train",
            "--multirun",
            *(["--config-dir", str(args.config_dir.absolute())] if args.config_dir else []),
            *args.overrides,
            f"hydra.sweep.dir={quote(str(sweep_dir))}",
            *(["hydra.sweeper.dry_run=true"] if args.dry_run else []),
        ],
        start_new_session=True,
        env={
            **os.environ,
            COMMAND_VARIABLE: shlex.join(["lstm-sweep", *argv]),
            PARENT_VARIABLE: str(os.getpid()),
            SWEEP_DIR_VARIABLE: str(Path(sweep_dir).absolute()),
        },
    )
    stopping = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    before = {signum: signal.signal(signum, lambda received, frame: pass_on(child, received)) for signum in stopping}
    progress = SweepProgress(sweep_dir)
    while True:
        try:
            child.wait(timeout=PROGRESS_SECONDS)
            break
        except subprocess.TimeoutExpired:
            progress.poll()
    progress.poll()
    for signum, handler in before.items():
        signal.signal(signum, handler)
    if args.dry_run:  # a preview: its output, or its refusal, is above
        return child.returncode
    if child.returncode < 0 or child.returncode >= 128 or interrupted(sweep_dir, started):
        # stopped by a signal: no report of a sweep cut short
        log.error("the sweep was stopped; `lstm-sweep --dir %s` with the same overrides completes it", sweep_dir)
        code = child.returncode
        return 128 + (-code if code < 0 else code - 128 if code >= 128 else signal.SIGINT)
    if child.returncode:  # refused (its error is above); a failed run is not that
        return child.returncode
    if (submission := submitted_since(sweep_dir, started)) is not None:  # hydra/launcher=slurm: queued
        log.info(
            "the sweep is queued (array %s, report %s); `lstm-sweep --status %s` shows where it stands",
            submission["array"],
            submission["report"] or "none",
            sweep_dir,
        )
        return 0
    try:
        if args.no_report:
            runs = read_sweep(sweep_dir).runs
        else:
            sweep, out = write_report(sweep_dir, args.out)
            runs = sweep.runs
            log.info("report: %s", out / "REPORT.md")
    except Exception as err:
        return log_user_error(err, log)
    failed = runs[runs["status"] != "finished"]
    for _, run in failed.iterrows():
        log.error("run %s %s: %s", run["run"], run["status"], run["error"])
    log.info("%d runs finished, %d did not (%s)", len(runs) - len(failed), len(failed), sweep_dir)
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
