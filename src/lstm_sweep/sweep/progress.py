"""The sweep's own progress, one line each time a run ends: how many of the grid's runs are
done, how long this start has taken and, at its pace so far, how long the rest will take.
lstm-sweep reads it from the sweep folder while its child trains, so it holds with progress
bars off, with parallel jobs, and with other processes completing the same folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from lstm_sweep.records import is_finished, planned_runs, read_status

log = logging.getLogger("lstm_sweep.sweep")


def ended_runs(sweep_dir: Path) -> dict[str, tuple[str, int]]:
    """Run folder name → ("finished" or "failed", when its status.json was written), for the
    runs that have ended: a run that ends again (a failed run tried again) is a new end."""
    ended = {}
    for status_file in sweep_dir.glob("*/status.json"):
        run_dir = status_file.parent
        try:
            written = status_file.stat().st_mtime_ns
        except OSError:
            continue
        status = "finished" if is_finished(run_dir) else read_status(run_dir).get("status")
        if status in ("finished", "failed"):
            ended[run_dir.name] = (status, written)
    return ended


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


class SweepProgress:
    def __init__(self, sweep_dir: Path):
        self.sweep_dir, self.start = sweep_dir, time.monotonic()
        self.ended = ended_runs(sweep_dir) if sweep_dir.is_dir() else {}
        self.before = {name for name, (status, _) in self.ended.items() if status == "finished"}  # skipped
        self.ends = 0  # runs that ended in this start: its pace

    def poll(self) -> None:
        """Log one line for each run that ended since the last poll. Progress is a courtesy:
        a folder it cannot read (a network filesystem's hiccup) costs a warning, not the sweep."""
        try:
            self._poll()
        except OSError as err:
            log.warning("cannot read the sweep's progress in %s: %s", self.sweep_dir, err)

    def _poll(self) -> None:
        if not self.sweep_dir.is_dir():
            return
        now = ended_runs(self.sweep_dir)
        total = planned_runs(self.sweep_dir)
        elapsed = time.monotonic() - self.start
        for name in sorted(n for n in now if now[n] != self.ended.get(n)):
            self.ended[name] = now[name]
            self.ends += 1
            statuses = {n: status for n, (status, _) in self.ended.items()}
            done = sum(status == "finished" for status in statuses.values())
            failed = sum(status == "failed" for status in statuses.values())
            skipped = sum(statuses.get(n) == "finished" for n in self.before)
            # folders of an earlier, other grid in the same sweep folder may count too: never "41 of 8"
            known = total is not None and 0 < total and done + failed <= total
            of = f" of {total}" if known else ""
            line = f"run {name} {now[name][0]}: {done}{of} runs finished"
            line += f" ({skipped} before this start)" if skipped else ""
            line += (f", {failed} failed" if failed else "") + f", {duration(elapsed)} into this start"
            if total is not None and known and total > done + failed:
                line += f", about {duration(elapsed / self.ends * (total - done - failed))} left"
            log.info("%s", line)
