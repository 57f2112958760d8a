"""Sweeps on SLURM that need nobody waiting: the grid goes in as one job array, the report
as a job that starts once every run's job has ended (`afterany`: also when some failed or
were cancelled), and the command returns. The job ids go into the sweep folder's
`slurm.json`, from which `lstm-sweep --status` reads the sweep's state.

Each array task is one run of the grid, trained as `lstm-train -m` trains it (the same
folder, config and skipping of finished runs; run locks keep a run from training twice when
local processes complete the same folder). The task execs Python from the batch script, so
SLURM's time-limit warning (`--signal=B:USR1@…`) reaches the run (run/slurm.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from filelock import FileLock

from lstm_sweep.errors import ConfigError
from lstm_sweep.fields import at_least, setting
from lstm_sweep.files import write_json, write_text
from lstm_sweep.records import SLURM_FILE
from lstm_sweep.run.slurm import MAX_REQUEUES_VARIABLE, TIME_LIMIT_SIGNAL
from lstm_sweep.sweep.grid import quote

log = logging.getLogger("lstm_sweep.sweep")

JOBS_FOLDER = ".slurm"  # job scripts, task lists and the jobs' output


@dataclass
class SlurmSettings:
    """hydra/launcher=slurm's keys (its config is hydra_plugins/lstm_sweep_slurm), as the
    submission below takes them."""

    partition: Optional[str] = setting(None, "the partition (sbatch --partition); null: the cluster's default")
    time_min: int = at_least(1, 60, doc="each job's time limit in minutes; a longer run requeues itself")
    cpus_per_task: int = at_least(1, 1, doc="CPUs of each run's job: its torch threads")
    mem_gb: Optional[float] = at_least(0, None, strict=True, doc="memory of each run's job")
    gpus: int = at_least(0, 0, doc="GPUs of each run's job (with trainer.accelerator=gpu)")
    max_requeues: int = at_least(0, 5, doc="requeues after the time limit; then the run stays unfinished")
    signal_delay_s: int = at_least(1, 120, doc="SLURM's warning before the time limit: the run checkpoints, requeues")
    array_parallelism: Optional[int] = at_least(1, None, doc="at most this many runs at once")
    report: bool = setting(True, "a report job once every run's job has ended")
    report_out: Optional[str] = setting(None, "the report job's folder (default: lstm-aggregate's)")
    additional_parameters: dict[str, str] = setting(
        doc="any other sbatch option: +hydra.launcher.additional_parameters.qos=high", factory=dict
    )


def sbatch_options(settings: SlurmSettings, name: str) -> list[str]:
    options = [f"--job-name={name}", f"--time={settings.time_min}", f"--cpus-per-task={settings.cpus_per_task}"]
    if settings.partition:
        options.append(f"--partition={settings.partition}")
    if settings.mem_gb:
        options.append(f"--mem={int(settings.mem_gb * 1024)}M")
    if settings.gpus:
        options.append(f"--gpus-per-task={settings.gpus}")
    options += [f"--{key.replace('_', '-')}={value}" for key, value in settings.additional_parameters.items()]
    return options


def array_script(sweep_dir: Path, tasks_file: Path, settings: SlurmSettings, count: int) -> str:
    """The job array: task i trains run i of tasks_file."""
    spread = f"%{settings.array_parallelism}" if settings.array_parallelism else ""
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {o}" for o in sbatch_options(settings, f"lstm-sweep:{sweep_dir.name}")),
        f"#SBATCH --array=0-{count - 1}{spread}",
        f"#SBATCH --output={sweep_dir.absolute() / JOBS_FOLDER / '%A_%a.out'}",
        "#SBATCH --open-mode=append",  # a requeued job's output goes on in the same file
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:{TIME_LIMIT_SIGNAL.name.removeprefix('SIG')}@{settings.signal_delay_s}",
        f"export {MAX_REQUEUES_VARIABLE}={settings.max_requeues}",
        f"cd {shlex.quote(os.getcwd())}",
        # exec: the warning goes to the batch shell, which is then the run itself
        "exec "
        + shlex.join([sys.executable, "-m", "lstm_sweep.cli.slurm_task", str(tasks_file.absolute())])
        + ' "$SLURM_ARRAY_TASK_ID"',
    ]
    return "\n".join(lines) + "\n"


def report_script(sweep_dir: Path, settings: SlurmSettings) -> str:
    aggregate = Path(sys.executable).parent / "lstm-aggregate"
    out = ["--out", settings.report_out] if settings.report_out else []
    options = [
        o
        for o in sbatch_options(settings, f"lstm-sweep-report:{sweep_dir.name}")
        if not o.startswith(("--cpus-per-task", "--gpus", "--time"))
    ]
    lines = [
        "#!/bin/bash",
        *(f"#SBATCH {o}" for o in options),
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --time=60",
        f"#SBATCH --output={sweep_dir.absolute() / JOBS_FOLDER / 'report-%j.out'}",
        f"cd {shlex.quote(os.getcwd())}",
        # the report is written whatever the runs' fate; its exit status says if any did not finish
        "exec " + shlex.join([str(aggregate), str(sweep_dir.absolute()), *out]),
    ]
    return "\n".join(lines) + "\n"


def sbatch(script: Path, *options: str) -> str:
    """Submit a script; its job id."""
    try:
        result = subprocess.run(["sbatch", "--parsable", *options, str(script)], capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(
            "hydra/launcher=slurm needs SLURM's sbatch on PATH: submit from a machine of the cluster"
        ) from None
    if result.returncode != 0:
        raise ConfigError(f"sbatch refused {script.name}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip().split(";")[0]


def submit(sweep_dir: Path, tasks: list[dict], settings: SlurmSettings) -> dict:
    """Submit each task ({run, overrides}) as one task of a job array, and the report job after
    them; record and return the submission."""
    jobs = sweep_dir / JOBS_FOLDER
    jobs.mkdir(parents=True, exist_ok=True)
    with FileLock(str(sweep_dir / ".slurm.lock")):
        previous = read_record(sweep_dir)
        number = len(previous["submissions"])
        tasks_file = jobs / f"tasks-{number}.json"
        write_json(tasks_file, tasks)
        script = jobs / f"array-{number}.sh"
        write_text(script, array_script(sweep_dir, tasks_file, settings, len(tasks)))
        array = sbatch(script)
        report = None
        if settings.report:
            report_file = jobs / f"report-{number}.sh"
            write_text(report_file, report_script(sweep_dir, settings))
            report = sbatch(report_file, f"--dependency=afterany:{array}")
        submission = {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "array": array,
            "report": report,
            "runs": {task["run"]: f"{array}_{i}" for i, task in enumerate(tasks)},
        }
        write_json(sweep_dir / SLURM_FILE, {"submissions": [*previous["submissions"], submission]})
    return submission


def task_arguments(tasks_file: Path, index: int) -> list[str]:
    """lstm-train's command line for task `index` of a submission's tasks file."""
    task = json.loads(tasks_file.read_text())[index]
    return [
        "--multirun",
        *task["overrides"],
        f"hydra.sweep.dir={quote(task['sweep_dir'])}",
        f"hydra.sweep.subdir={quote(task['run'])}",
        "hydra/launcher=basic",
        "hydra.sweeper.task=true",
    ]


def read_record(sweep_dir: Path) -> dict:
    path = sweep_dir / SLURM_FILE
    if not path.exists():
        return {"submissions": []}
    try:
        record = json.loads(path.read_text())
        if isinstance(record.get("submissions"), list):
            return record
    except (ValueError, AttributeError):
        pass
    raise ConfigError(f"{path} cannot be read: it is not the record lstm-sweep writes")


def submitted_runs(sweep_dir: Path) -> dict[str, dict]:
    """{run: {job, overrides}} of every submission (a later one of a run counts), for a report
    that must list a run whose job never started (cancelled while pending); {} if none or
    the record cannot be read."""
    try:
        submissions = read_record(sweep_dir)["submissions"]
    except ConfigError:
        return {}
    runs = {}
    for number, submission in enumerate(submissions):
        try:
            tasks = json.loads((sweep_dir / JOBS_FOLDER / f"tasks-{number}.json").read_text())
        except (OSError, ValueError):
            tasks = []
        overrides = {task.get("run"): task.get("overrides", []) for task in tasks if isinstance(task, dict)}
        for run, job in submission.get("runs", {}).items():
            runs[run] = {"job": job, "overrides": overrides.get(run, [])}
    return runs


# SLURM's job states (sacct's) as a run's, for `lstm-sweep --status` where the run's own record
# cannot say more. A preempted or requeued job waits to run again: pending. COMPLETED is not
# here: the run's own record says how it ended.
JOB_STATES = {
    "PENDING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "PREEMPTED": "pending",
    "CONFIGURING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",
    "RESIZING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "SUSPENDED": "suspended",
    "CANCELLED": "cancelled",
    "TIMEOUT": "timed out",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
}
# A job in these states has not ended.
LIVE_WORDS = ("pending", "running", "suspended")
LIVE_STATES = tuple(state for state, word in JOB_STATES.items() if word in LIVE_WORDS)


def ended_without_outcome(runs: list[str], submitted: dict[str, dict]) -> dict[str, str]:
    """{run: why} for the runs whose record still says running while SLURM says their job has
    ended (killed for memory, its node lost): no process is left to record an outcome. A
    record on another node cannot be checked by its PID; its job can. Empty where sacct
    cannot tell (a sweep folder read off the cluster): those runs stay running."""
    jobs = {run: submitted[run]["job"] for run in runs if run in submitted}
    try:
        states = job_states(sorted(set(jobs.values())))
    except (ConfigError, OSError) as err:
        log.debug("SLURM's accounting not asked: %s", err)
        return {}
    ended = {}
    for run, job in jobs.items():
        state = states.get(job)
        if state and state["state"] not in LIVE_STATES:
            ended[run] = (
                f"its SLURM job {job} ended {state['state']} (exit {state['exit']}) before the run recorded an outcome"
            )
    return ended


def job_states(job_ids: list[str]) -> dict[str, dict]:
    """SLURM's accounting for these jobs: {job id: {state, exit, requeues}}; a job listed more
    than once (each requeue leaves a record) counts its requeues."""
    if not job_ids:
        return {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    result = subprocess.run(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--duplicates",
            "--allocations",
            "--format=JobID,State,ExitCode",
            "--jobs",
            ",".join(arrays),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ConfigError(f"sacct cannot tell the jobs' states: {result.stderr.strip()}")
    states: dict[str, dict] = {}
    for line in result.stdout.splitlines():
        job, state, exit_code = line.split("|")[:3]
        entry = states.setdefault(job, {"requeues": 0})
        if state.startswith(("REQUEUED", "PREEMPTED")):
            entry["requeues"] += 1
        entry.update(state=state.split()[0], exit=exit_code)  # the last record is the latest
    return states
