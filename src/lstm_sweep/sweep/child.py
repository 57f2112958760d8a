"""lstm-sweep's child process (the Hydra multirun) ends when lstm-sweep does.

lstm-sweep starts the child in a process group of its own, which the child's job workers
(joblib's) join, and passes on the signals it receives to that group. A SIGKILL cannot be
passed on, so the child watches for its parent's death and then stops the whole group with
SIGTERM: each run records itself as interrupted, and nothing trains on unseen.

A Ctrl-C reaches the child and its workers together. Raised at once in the child, it makes
joblib kill its workers with SIGKILL, maybe before a worker has written its run's status: so
the child first waits, a bounded while, for the runs its group is training to record."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from lstm_sweep.records import read_status, recorded_status

PARENT_VARIABLE = "LSTM_SWEEP_PARENT_PID"  # set by lstm-sweep for its child
SWEEP_DIR_VARIABLE = "LSTM_SWEEP_DIR"  # and the sweep folder it runs in
POLL_SECONDS = 1.0
# A run records its outcome within a second of a Ctrl-C (its status.json, then the log); a
# run that has not after this long is left to read as interrupted by its dead process.
RECORD_GRACE_SECONDS = 20.0


def stop_with_parent() -> None:
    """In lstm-sweep's child: SIGTERM to the process group once the parent is gone."""
    parent = os.environ.pop(PARENT_VARIABLE, None)  # popped: the job workers need no watch of their own
    sweep_dir = os.environ.pop(SWEEP_DIR_VARIABLE, None)
    if parent is None:
        return
    # Set even where a shell that started it in the background left SIGINT ignored: lstm-sweep
    # passes on a Ctrl-C only to processes that heed it.
    signal.signal(signal.SIGINT, ctrl_c_after_runs_record(Path(sweep_dir)) if sweep_dir else signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(POLL_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-lstm-sweep", daemon=True).start()


def ctrl_c_after_runs_record(sweep_dir: Path):
    """A SIGINT handler: KeyboardInterrupt once no run of this process group is still
    "running" in `sweep_dir` (at most RECORD_GRACE_SECONDS); a second Ctrl-C raises at once."""
    waiting = False

    def handler(signum, frame) -> None:
        nonlocal waiting
        if not waiting:
            waiting = True
            deadline = time.monotonic() + RECORD_GRACE_SECONDS
            while runs_still_recording(sweep_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
        raise KeyboardInterrupt

    return handler


def runs_still_recording(sweep_dir: Path) -> list[str]:
    """The runs in `sweep_dir` that a live process of this group (not this one) still trains."""
    group, me = os.getpgrp(), os.getpid()
    busy = []
    for status_file in sweep_dir.glob("*/status.json"):
        record = read_status(status_file.parent)
        pid = record.get("pid")
        if recorded_status(record)[0] != "running" or pid == me or not isinstance(pid, int):
            continue
        try:
            if os.getpgid(pid) == group:
                busy.append(status_file.parent.name)
        except ProcessLookupError:  # it has just ended
            continue
    return busy
