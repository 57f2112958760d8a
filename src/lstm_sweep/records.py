"""The records a run and a sweep leave on disk, defined once: their file names, what they
hold and how they are read. Everything that writes one goes through files.py (whole or not
at all); the writers are the run's folder (run/folder.py), its summary (run/summary.py), the
grid sweeper (sweep/grid.py) and the SLURM submission (sweep/slurm.py).

A run folder:
- `status.json`: {"status": running | finished | failed | interrupted, "error": "…"}; a
  running record names its process ({"host", "pid"}), so a reader can tell a dead one's;
- `metrics.json`: the final numbers (run/summary.py's RunSummary.metrics), written last: a
  run that has it is finished, and is never written over.

A sweep folder:
- `sweep.json`: {"name", "swept": [keys in grid order], "starts": [{"command", "fixed",
  "runs", "date", "machine", "versions"}, …]}, one start per time the sweep was run;
- `slurm.json`: {"submissions": [{"date", "array", "report", "runs": {run: job}}, …]};
- `sequential.json`, a sweep run until decided (`lstm-sweep --until-decided`): {"until_decided":
  [factors], "metric", "design": {"alpha", "round_seeds", "max_seeds", "margin", "looks",
  "boundaries"}, "comparisons": [{"factor", "context", "a", "b", "outcome", "seeds",
  "looks": [{"n", "diff", "low", "high", "z", "boundary", "outcome"}, …]}, …]}; the report
  takes the question and the design from it and recomputes the looks from the runs.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.json"
SWEEP_FILE = "sweep.json"
SLURM_FILE = "slurm.json"
SEQUENTIAL_FILE = "sequential.json"


def read_object(path: Path) -> dict:
    """A JSON file's object, strictly: the NaN and Infinity that Python writes by default are
    no JSON, and a file holding them was written wrong."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON value")

    data = json.loads(path.read_text(), parse_constant=refuse)
    if not isinstance(data, dict):
        raise ValueError(f"it holds a {type(data).__name__}, not a JSON object")
    return data


# --------------------------------------------------------------------------- a run's


def status_record(status: str, error: BaseException | str | None = None) -> dict:
    """status.json's record: "running" names this process; an outcome names its error."""
    record: dict[str, Any] = {"status": status}
    if status == "running":
        record.update(host=socket.gethostname(), pid=os.getpid(), started=process_start(os.getpid()))
    if error is not None:
        record["error"] = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return record


def read_status(run_dir: Path) -> dict:
    """status.json's record; empty when there is none or it cannot be read."""
    try:
        record = json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def recorded_status(record: dict) -> tuple[str, str]:
    """A status.json record's status and error. "running" holds only while its process lives: a
    run whose process died without recording an outcome (SIGKILL, a full disk) is interrupted.
    A process on another host cannot be seen, so its run stays running."""
    status, error = record.get("status", "unfinished"), record.get("error", "")
    if status == "running" and record.get("host") == socket.gethostname() and not process_alive(record.get("pid")):
        return "interrupted", f"its process (pid {record['pid']}) ended without recording an outcome"
    if status == "running" and record.get("host") == socket.gethostname() and recycled(record):
        return (
            "interrupted",
            f"its process (pid {record['pid']}) ended without recording an outcome (the pid is another's now)",
        )
    return status, error


def process_start(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (/proc/PID/stat's 22nd field): with
    the pid, a process's identity — a pid alone is reused. None where /proc has no such file."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])  # the fields after the name, which may hold spaces


def recycled(record: dict) -> bool:
    """Whether the live process with the record's pid is another than the one that wrote it."""
    started = record.get("started")
    if not isinstance(started, int) or not isinstance(record.get("pid"), int):
        return False  # not recorded (runs made before): the pid alone decides
    now = process_start(record["pid"])
    return now is not None and now != started


def process_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # not known: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_finished(run_dir: Path) -> bool:
    return (run_dir / METRICS_FILE).exists()


# --------------------------------------------------------------------------- a sweep's


def read_sweep_record(sweep_dir: Path) -> dict:
    """sweep.json, strictly (OSError or ValueError where it cannot be read)."""
    record = read_object(sweep_dir / SWEEP_FILE)
    if not isinstance(record.get("starts", []), list):
        raise ValueError("its starts are not a list")
    return record


def sweep_starts(sweep_dir: Path) -> list[dict]:
    """sweep.json's starts, read only (a damaged or missing record: none)."""
    try:
        return list(read_sweep_record(sweep_dir)["starts"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def planned_runs(sweep_dir: Path) -> int | None:
    """The grid's size, as the newest start recorded in sweep.json says."""
    starts = sweep_starts(sweep_dir)
    try:
        return int(starts[-1]["runs"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None
