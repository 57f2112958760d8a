"""`lstm-sweep --status`: a run's own record and its SLURM job's state, read together
(SLURM's accounting stubbed here; test_slurm.py asks a real cluster)."""

import json

import pytest

from lstm_sweep.files import write_json as write_whole
from lstm_sweep.records import SLURM_FILE as RECORD_FILE
from lstm_sweep.sweep import status as status_module
from lstm_sweep.sweep.slurm import JOBS_FOLDER

# run: (status.json record or None for no folder, SLURM state or None for a local run, expected)
CASES = {
    "done": ({"status": "finished"}, "COMPLETED", "finished"),
    "bad-value": ({"status": "failed", "error": "model.cell='three' is not one of …"}, "COMPLETED", "failed"),
    "queued": (None, "PENDING", "pending"),
    "requeued": ({"status": "interrupted", "error": "stopped by SIGTERM"}, "PENDING", "pending"),
    "training": ({"status": "running", "host": "elsewhere", "pid": 1}, "RUNNING", "running"),
    "held": ({"status": "running", "host": "elsewhere", "pid": 1}, "SUSPENDED", "suspended"),
    "cancelled": ({"status": "interrupted", "error": "stopped by SIGTERM"}, "CANCELLED", "cancelled"),
    "cancelled-queued": (None, "CANCELLED", "cancelled"),
    "capped": (
        {"status": "interrupted", "error": "stopped at SLURM's time limit; not requeued"},
        "FAILED",
        "interrupted",
    ),
    "out-of-memory": ({"status": "running", "host": "elsewhere", "pid": 1}, "OUT_OF_MEMORY", "failed"),
    "local": ({"status": "finished"}, None, "finished"),
}


def write_json(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, data)


def test_each_run_reads_as_its_record_and_its_job_say_together(tmp_path, monkeypatch, fake_run):
    jobs = {}
    for i, (run, (record, state, _)) in enumerate(CASES.items()):
        if record is not None:
            fake_run(tmp_path / run, status=record)
        if state is not None:
            jobs[run] = f"100_{i}"
    write_json(
        tmp_path / RECORD_FILE,
        {"submissions": [{"date": "2026-11-25T10:00:00+00:00", "array": "100", "report": "101", "runs": jobs}]},
    )
    states = {
        job: {
            "state": CASES[run][1],
            "exit": "0:9" if run == "out-of-memory" else "0:0",
            "requeues": 1 if run == "requeued" else 0,
        }
        for run, job in jobs.items()
    }
    states["101"] = {"state": "PENDING", "exit": "0:0", "requeues": 0}
    monkeypatch.setattr(status_module, "job_states", lambda ids: {j: states[j] for j in ids})
    rows = {row["run"]: row for row in status_module.run_states(tmp_path)}
    assert {run: row["state"] for run, row in rows.items()} == {run: case[2] for run, case in CASES.items()}
    assert rows["requeued"]["requeues"] == 1 and rows["local"]["job"] == ""
    assert rows["out-of-memory"]["detail"] == f"job {jobs['out-of-memory']} OUT_OF_MEMORY (exit 0:9)"
    assert status_module.report_state(tmp_path) == "report job 101: pending"


def test_a_sweep_never_submitted_reads_from_its_records_alone(tmp_path, capsys, fake_run):
    fake_run(tmp_path / "run", status="finished")
    assert status_module.print_status(tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["run", "finished"]
    assert out[-1] == f"1 runs in {tmp_path}: 1 finished; no report job"


def test_a_damaged_record_is_one_clear_error(tmp_path):
    from lstm_sweep.errors import ConfigError

    (tmp_path / RECORD_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=r"slurm\.json cannot be read"):
        status_module.run_states(tmp_path)


def test_a_run_whose_job_never_started_is_listed_by_the_report(tmp_path, fake_run):
    from lstm_sweep.analysis.read import read_sweep

    write_json(
        tmp_path / RECORD_FILE,
        {
            "submissions": [
                {"date": "2026-11-25T10:00:00+00:00", "array": "7", "report": None, "runs": {"seed=1": "7_1"}}
            ]
        },
    )
    (tmp_path / JOBS_FOLDER).mkdir()
    (tmp_path / JOBS_FOLDER / "tasks-0.json").write_text(
        json.dumps([{"run": "seed=1", "overrides": ["seed=1", "hydra.job.config.override_dirname.exclude_keys=[]"]}])
    )
    fake_run(tmp_path / "seed=0", status={"status": "failed", "error": "boom"})
    runs = read_sweep(tmp_path).runs.set_index("run")
    assert runs.loc["seed=1", "status"] == "unfinished"
    assert runs.loc["seed=1", "error"] == "submitted as SLURM job 7_1, which never started"


def fake_command(bin_dir, name: str, script: str) -> None:
    """A stand-in for one of SLURM's tools, first on PATH for the test."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text("#!/bin/sh\n" + script)
    (bin_dir / name).chmod(0o755)


def test_a_run_whose_job_died_on_another_node_reads_interrupted_where_sacct_tells(tmp_path, monkeypatch, fake_run):
    """Its record says running and names a host that cannot be asked; SLURM knows the job ended."""
    import os

    from lstm_sweep.analysis.read import read_sweep

    write_json(
        tmp_path / RECORD_FILE,
        {
            "submissions": [
                {
                    "date": "2026-11-25T10:00:00+00:00",
                    "array": "7",
                    "report": None,
                    "runs": {"seed=0": "7_0", "seed=1": "7_1"},
                }
            ]
        },
    )
    for seed in (0, 1):
        fake_run(
            tmp_path / f"seed={seed}",
            config={"seed": seed},
            overrides=[f"seed={seed}"],
            status={"status": "running", "host": "node-elsewhere", "pid": 1},
        )
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    fake_command(bin_dir, "sacct", "printf '7_0|RUNNING|0:0\\n7_1|REQUEUED|0:0\\n7_1|OUT_OF_MEMORY|0:125\\n'\n")
    runs = read_sweep(tmp_path).runs.set_index("run")
    assert runs.loc["seed=0", "status"] == "running"
    assert (runs.loc["seed=1", "status"], runs.loc["seed=1", "error"]) == (
        "interrupted",
        "its SLURM job 7_1 ended OUT_OF_MEMORY (exit 0:125) before the run recorded an outcome",
    )
    # read off the cluster: sacct cannot reach SLURM's accounting, and the record stands
    fake_command(bin_dir, "sacct", "echo 'sacct: error: Problem talking to the database' >&2; exit 1\n")
    assert set(read_sweep(tmp_path).runs["status"]) == {"running"}


COUNTED_SUBMISSION = """
import sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

composed = []
load = ConfigLoaderImpl.load_sweep_config


def counted(self, master_config, sweep_overrides):
    composed.append(tuple(sweep_overrides))
    return load(self, master_config, sweep_overrides)


ConfigLoaderImpl.load_sweep_config = counted
from lstm_sweep.cli.train import main
try:
    main()
finally:
    print("composed", len(composed), len(set(composed)))
"""


@pytest.mark.slow
def test_a_submitted_grid_composes_each_run_once(tmp_path):
    """The HPARAMS columns, Hydra's legality check and the launcher share the sweep's
    compositions: Hydra composes once per set of config-group choices (sweep/compose.py)."""
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    fake_command(bin_dir, "sbatch", "echo 4242\n")  # a queue that takes anything
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            COUNTED_SUBMISSION,
            "-m",
            "hydra/launcher=slurm",
            "model.cell=one,two",
            "seed=range(3)",
            "model.num_layers=1",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "composed 1 1" in proc.stdout  # one set of group choices; was once a run, 6
    submission = json.loads((tmp_path / "sweep" / RECORD_FILE).read_text())["submissions"][0]
    assert sorted(submission["runs"]) == [f"cell={c},seed={s}" for c in ("one", "two") for s in range(3)]


def test_a_live_pid_of_another_process_is_no_running_run():
    """A pid is reused: "running" holds only for the process, pid and start time, that wrote it."""
    import os
    import socket

    from lstm_sweep.records import process_start, recorded_status, status_record

    ours = status_record("running")
    assert ours["pid"] == os.getpid() and recorded_status(ours) == ("running", "")
    reused = {**ours, "started": process_start(os.getpid()) - 1}  # this pid, an earlier process's record
    status, why = recorded_status(reused)
    assert status == "interrupted" and "the pid is another's now" in why
    older = {"status": "running", "host": socket.gethostname(), "pid": os.getpid()}  # no start time kept
    assert recorded_status(older) == ("running", "")


def test_progress_counts_finished_failed_and_skipped_runs_apart(tmp_path, caplog, fake_run):
    import logging

    from lstm_sweep.files import write_json
    from lstm_sweep.sweep.progress import SweepProgress

    write_json(tmp_path / "sweep.json", {"name": "x", "starts": [{"runs": 5}]})
    fake_run(tmp_path / "seed=0", status="finished").joinpath("metrics.json").write_text("{}")
    progress = SweepProgress(tmp_path)  # seed=0 finished before this start: skipped
    fake_run(tmp_path / "seed=1", status="finished").joinpath("metrics.json").write_text("{}")
    fake_run(tmp_path / "seed=2", status={"status": "failed", "error": "ValueError: x"})
    with caplog.at_level(logging.INFO, logger="lstm_sweep.sweep"):
        progress.poll()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("run seed=1 finished: 2 of 5 runs finished (1 before this start), 0 min into")
    assert lines[1].startswith("run seed=2 failed: 2 of 5 runs finished (1 before this start), 1 failed, 0 min")
    assert lines[1].endswith("about 0 min left")
