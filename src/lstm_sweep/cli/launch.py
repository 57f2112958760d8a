"""lstm-sweep's child sweep: `lstm-train -m` with the sweep's overrides in a process group of
its own, the signals lstm-sweep receives passed on to it, its progress read from the sweep
folder, and — once it has ended — the report (lstm_sweep.analysis.report) and the exit status.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from lstm_sweep.errors import log_user_error
from lstm_sweep.records import STATUS_FILE, read_status
from lstm_sweep.sweep.child import PARENT_VARIABLE, SWEEP_DIR_VARIABLE
from lstm_sweep.sweep.grid import COMMAND_VARIABLE, quote
from lstm_sweep.sweep.progress import SweepProgress

log = logging.getLogger("lstm_sweep.sweep")
PROGRESS_SECONDS = 2  # how often the sweep folder is read for runs that ended


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


def launch(
    argv: list[str], overrides: list[str], sweep_dir: Path, config_dir: Path | None = None, dry_run: bool = False
) -> int | None:
    """Run the child sweep to its end: None where it ran (its runs finished or failed), else
    the exit status lstm-sweep ends with (a dry run's, a refusal's, a signal's)."""
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
            *(["--config-dir", str(config_dir.absolute())] if config_dir else []),
            *overrides,
            f"hydra.sweep.dir={quote(str(sweep_dir))}",
            *(["hydra.sweeper.dry_run=true"] if dry_run else []),
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
    if dry_run:  # a preview: its output, or its refusal, is above
        return child.returncode
    if child.returncode < 0 or child.returncode >= 128 or interrupted(sweep_dir, started):
        # stopped by a signal: no report of a sweep cut short
        log.error(
            "the sweep was stopped; `lstm-sweep --dir %s` with the same options and overrides completes it", sweep_dir
        )
        code = child.returncode
        return 128 + (-code if code < 0 else code - 128 if code >= 128 else signal.SIGINT)
    if child.returncode:  # refused (its error is above); a failed run is not that
        return child.returncode
    return None


def finish(sweep_dir: Path, out: Path | None, report: bool = True) -> int:
    """Write the sweep's report (unless not wanted), list the runs that did not finish, and
    return the exit status: 1 if any did not."""
    from lstm_sweep.analysis.read import read_sweep  # pandas and scipy: the report's, not the launch's
    from lstm_sweep.analysis.report import write_report

    try:
        if report:
            sweep, out = write_report(sweep_dir, out)
            runs = sweep.runs
            log.info("report: %s", out / "REPORT.md")
        else:
            runs = read_sweep(sweep_dir).runs
    except Exception as err:
        return log_user_error(err, log)
    failed = runs[runs["status"] != "finished"]
    for _, run in failed.iterrows():
        log.error("run %s %s: %s", run["run"], run["status"], run["error"])
    log.info("%d runs finished, %d did not (%s)", len(runs) - len(failed), len(failed), sweep_dir)
    return 1 if len(failed) else 0
