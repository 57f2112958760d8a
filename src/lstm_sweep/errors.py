"""The errors a user can cause: each message names the key, file or step at fault."""

import errno

# A full, read-only or forbidden disk: the user's to fix, so one line too.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


class LstmSweepError(Exception):
    """A problem with the user's config, data or run; shown as one line, exit status 1."""


class ConfigError(LstmSweepError, ValueError):
    """A config value is invalid; the message names the key."""


class DataError(LstmSweepError, ValueError):
    """A corpus is missing or malformed; the message names the file (and line or byte)."""


class RunFinished(ConfigError):
    """The run folder already holds a finished run, which is never written over."""


class OtherRunFinished(ConfigError):
    """The run folder holds a finished run of other settings: neither skipped as this run's nor
    written over, not even its log."""


class ResumeUnreadable(ConfigError):
    """The run's resume checkpoint cannot be read: the run is recorded failed, with why."""


class RunBusy(LstmSweepError):
    """Another process is training this run (it holds the run folder's lock)."""


class DivergenceError(LstmSweepError, ArithmeticError):
    """The training loss stopped being finite; the message names the step."""


def one_line(err: BaseException) -> str:
    """A library's exception as one line for a user's error message: its type and the first
    line of its text (torch's and json's can run to many)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def is_disk_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in DISK_ERRNOS


def user_message(err: BaseException) -> str | None:
    """The one line a command prints for an error the user can act on (then exits 1), or None
    for a fault of the program, whose traceback is wanted."""
    if isinstance(err, LstmSweepError):
        return str(err)
    if isinstance(err, OSError) and is_disk_error(err):
        where = f" {err.filename}" if err.filename else ""
        if err.errno in (errno.EACCES, errno.EPERM):  # reading or writing: say no more than we know
            return f"permission denied:{where}"
        return f"cannot write{where}: {err.strerror}"
    return None


def log_user_error(err: Exception, log, **extra) -> int:
    """For a command's `except Exception`: a user's error is logged in one line and the exit
    status (1) returned; a fault of the program is raised again, with its traceback."""
    message = user_message(err)
    if message is None:
        raise err
    log.error("%s", message, **extra)
    return 1
