"""`lstm-sweep --status DIR`: each run of a sweep folder as it stands, from the run's own
record (status.json) and, for a submitted run, SLURM's accounting of its job: pending,
running, suspended, finished, failed, interrupted, cancelled, timed out — and how often its
job was requeued (preempted, or stopped at the time limit to resume).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lstm_sweep.errors import ConfigError
from lstm_sweep.records import read_status, recorded_status
from lstm_sweep.sweep.slurm import JOB_STATES, LIVE_WORDS, job_states, read_record


def submitted_since(sweep_dir: Path, since: float) -> dict | None:
    """The submission made after `since` (a timestamp), if this start submitted one."""
    try:
        submissions = read_record(sweep_dir)["submissions"]
    except ConfigError:
        return None
    if submissions and dt.datetime.fromisoformat(submissions[-1]["date"]).timestamp() >= int(since):
        return submissions[-1]
    return None


def run_states(sweep_dir: Path) -> list[dict]:
    """One row per run: run, state, job, requeues, detail."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep folder {sweep_dir} does not exist")
    jobs: dict[str, str] = {}
    for submission in read_record(sweep_dir)["submissions"]:
        jobs.update(submission["runs"])  # a later submission of a run is the one that counts
    names = sorted(set(jobs) | {p.parent.name for p in sweep_dir.glob("*/status.json")})
    accounting = job_states(sorted(set(jobs.values())))
    rows = []
    for name in names:
        status, error = recorded_status(read_status(sweep_dir / name) or {})
        job = jobs.get(name)
        slurm = accounting.get(job, {}) if job else {}
        job_state = slurm.get("state")
        if status in ("finished", "failed") or job_state is None:
            state = status  # the run's own record is the last word
        elif JOB_STATES.get(job_state) in (*LIVE_WORDS, "cancelled"):  # SLURM knows better than a record
            state = JOB_STATES[job_state]
        elif status == "interrupted":  # it stopped itself and says why (the time limit, SIGTERM)
            state = status
        elif job_state == "COMPLETED":  # the job ended without the run recording an outcome
            state = "unfinished"
        else:
            state = JOB_STATES.get(job_state, job_state.lower())
            error = error or f"job {job} {job_state} (exit {slurm.get('exit')})"
        rows.append(
            {"run": name, "state": state, "job": job or "", "requeues": slurm.get("requeues", 0), "detail": error}
        )
    return rows


def report_state(sweep_dir: Path) -> str:
    submissions = read_record(sweep_dir)["submissions"]
    report = submissions[-1].get("report") if submissions else None
    if not report:
        return "no report job"
    state = job_states([report]).get(report, {}).get("state", "unknown")
    return f"report job {report}: {state.lower()}"


def print_status(sweep_dir: Path) -> int:
    rows = run_states(sweep_dir)
    width = max([len(r["run"]) for r in rows] + [3])
    print(f"{'run':<{width}}  {'state':<11}  {'job':<14}  requeued  detail")
    for r in rows:
        print(f"{r['run']:<{width}}  {r['state']:<11}  {r['job']:<14}  {r['requeues']:>8}  {r['detail']}".rstrip())
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"{len(rows)} runs in {sweep_dir}: {summary or 'none'}; {report_state(sweep_dir)}")
    return 0
