"""What a run does inside a SLURM job: it trains on the CPUs the job was given, and when
SLURM warns of the time limit (SIGUSR1, which submitted sweeps ask for with `--signal`) it
stops as on SIGTERM — a resume checkpoint at the next batch, nothing lost (resume.py) — and
requeues its job, up to `LSTM_SWEEP_MAX_REQUEUES` times; the requeued job resumes it.

Preemption and `scontrol requeue` send SIGTERM and requeue the job themselves; `scancel`
sends SIGTERM too. In every case the run is recorded as interrupted, with its checkpoint.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess

log = logging.getLogger(__name__)

TIME_LIMIT_SIGNAL = signal.SIGUSR1
MAX_REQUEUES_VARIABLE = "LSTM_SWEEP_MAX_REQUEUES"  # set by the submitted job script
DEFAULT_MAX_REQUEUES = 5


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def slurm_cpus() -> int | None:
    """The CPUs SLURM gave the job's task (--cpus-per-task), if it says."""
    value = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(value) if value and value.isdigit() else None


def job_id() -> str:
    """The job as scontrol names it: an array task is <array job>_<task>."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ["SLURM_JOB_ID"]


def restarts() -> int:
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0)


class TimeLimitWarning:
    """SIGUSR1 remembered: the run stops at the next batch as on SIGTERM (resume.py asks
    `warned()`), and can then requeue its job. A flag, not a second signal, and installed
    before anything slow (cli/slurm_task.py): SLURM may warn up to a minute early, while the
    interpreter still loads, and SIGUSR1's default is to end the process."""

    received = False

    @staticmethod
    def install() -> None:
        def handler(signum, frame):
            TimeLimitWarning.received = True

        signal.signal(TIME_LIMIT_SIGNAL, handler)

    @staticmethod
    def warned() -> bool:
        return TimeLimitWarning.received


def requeue_after_time_limit(record) -> None:
    """Requeue this job (it resumes from its checkpoint), unless it has been requeued the most
    times allowed. `record(text)` writes the run's status first: requeueing ends the job, and
    SIGTERM is ignored from here so that nothing cuts the run's exit short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit = int(os.environ.get(MAX_REQUEUES_VARIABLE) or DEFAULT_MAX_REQUEUES)
    done = restarts()
    if done >= limit:
        record(f"stopped at SLURM's time limit; not requeued: it was requeued {done} times, the most allowed")
        return
    job = job_id()
    record(f"stopped at SLURM's time limit; job {job} requeued ({done + 1} of {limit}), to resume")
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if result.returncode != 0:
        record(f"stopped at SLURM's time limit; requeueing job {job} failed: {result.stderr.strip()}")
