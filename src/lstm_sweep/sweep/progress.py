"""The sweep's own progress, one line each time a run ends: how many of the grid's runs are
done, how long this start has taken and, at its pace so far, how long the rest will take.
lstm-sweep reads it from the sweep folder while its child trains, so it holds with progress
bars off, with parallel jobs, and with other processes completing the same folder."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from lstm_sweep.run.folder import is_finished, read_status_file

log = logging.getLogger("lstm_sweep.sweep")


def ended_runs(sweep_dir: Path) -> dict[str, str]:
    """Run folder name → "finished" or "failed", for the runs that have ended."""
    ended = {}
    for status_file in sweep_dir.glob("*/status.json"):
        run_dir = status_file.parent
        status = "finished" if is_finished(run_dir) else read_status_file(run_dir).get("status")
        if status in ("finished", "failed"):
            ended[run_dir.name] = status
    return ended


def planned_runs(sweep_dir: Path) -> int | None:
    """The grid's size, as the newest start recorded in sweep.json says."""
    try:
        return int(json.loads((sweep_dir / "sweep.json").read_text())["starts"][-1]["runs"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


class SweepProgress:
    def __init__(self, sweep_dir: Path):
        self.sweep_dir, self.start = sweep_dir, time.monotonic()
        self.ended = ended_runs(sweep_dir) if sweep_dir.is_dir() else {}
        self.before = len(self.ended)  # what earlier starts finished: not this start's pace

    def poll(self) -> None:
        """Log one line for each run that ended since the last poll."""
        if not self.sweep_dir.is_dir():
            return
        now = ended_runs(self.sweep_dir)
        total = planned_runs(self.sweep_dir)
        elapsed = time.monotonic() - self.start
        for name in sorted(set(now) - set(self.ended)):
            self.ended[name] = now[name]
            done = len(self.ended)
            line = f"run {name} {now[name]}: {done}" + (f" of {total}" if total else "") + " runs done"
            failed = sum(status == "failed" for status in self.ended.values())
            line += (f" ({failed} failed)" if failed else "") + f", {duration(elapsed)} into this start"
            if total and done > self.before:
                left = elapsed / (done - self.before) * max(total - done, 0)
                line += f", about {duration(left)} left" if total > done else ""
            log.info("%s", line)
