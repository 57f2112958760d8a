"""lstm-sweep's child process (the Hydra multirun) ends when lstm-sweep does.

lstm-sweep starts the child in a process group of its own, which the child's job workers
(joblib's) join, and passes on the signals it receives to that group. A SIGKILL cannot be
passed on, so the child watches for its parent's death and then stops the whole group with
SIGTERM: each run records itself as interrupted, and nothing trains on unseen."""

from __future__ import annotations

import os
import signal
import threading
import time

PARENT_VARIABLE = "LSTM_SWEEP_PARENT_PID"  # set by lstm-sweep for its child
POLL_SECONDS = 1.0


def stop_with_parent() -> None:
    """In lstm-sweep's child: SIGTERM to the process group once the parent is gone."""
    parent = os.environ.pop(PARENT_VARIABLE, None)  # popped: the job workers need no watch of their own
    if parent is None:
        return
    # Started in the background by a shell, it would inherit an ignored SIGINT; lstm-sweep
    # passes on a Ctrl-C only to processes that heed it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(POLL_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-lstm-sweep", daemon=True).start()
