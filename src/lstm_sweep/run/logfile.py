"""The run's train.log handler (config.yaml's hydra.job_logging): Hydra's file handler, except
that a log that cannot be written — a full or read-only disk — costs one line on the console,
not a traceback per record, and that records about a run not started here (a finished run
a sweep skips) stay out of that run's log, so nothing in a finished run's folder changes."""

from __future__ import annotations

import logging
import sys
from contextlib import suppress

from lstm_sweep.errors import one_line

NOT_IN_RUN_LOG = {"not_in_run_log": True}  # logging's `extra=`: console only


class RunLogFile(logging.FileHandler):
    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None, delay: bool = True):
        # delay: the file is opened at the first record, so a skipped run's log is not even opened
        super().__init__(filename, mode, encoding, delay)
        self.addFilter(lambda record: not getattr(record, "not_in_run_log", False))
        self.broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        try:
            super().emit(record)
        except OSError:  # opening the file (delayed to here) is outside logging's own guard
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):  # a program's fault (a bad format string): logging's traceback
            return super().handleError(record)
        self.broken = True
        stream, self.stream = self.stream, None
        if stream is not None:
            with suppress(OSError):  # what it still buffers cannot be written either
                stream.close()
        print(
            f"{self.baseFilename} cannot be written ({one_line(err)}); the run's log goes to the console only",
            file=sys.stderr,
        )
