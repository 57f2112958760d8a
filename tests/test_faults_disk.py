"""A full or read-only output disk, for real (a small tmpfs, a read-only bind mount; both need
root): one line and status 1, the run recorded as failed — never "running" forever — and,
once there is room, the run resumes and ends as if the disk had never filled."""

import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TINY, outcome
from lstm_sweep.records import recorded_status
from lstm_sweep.run import folder
from lstm_sweep.run.folder import set_status
from lstm_sweep.run.logfile import RunLogFile

BIN = Path(sys.executable).parent


def mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"needs root and mount to fill or protect a disk for real: {proc.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk))  # full in epoch 1, after its resume.ckpt
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.fixture
def read_only_disk(tmp_path):
    source, disk = tmp_path / "source", tmp_path / "ro"
    source.mkdir()
    disk.mkdir()
    mount("--bind", str(source), str(disk))
    try:
        mount("-o", "remount,bind,ro", str(disk))
        yield source, disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def errors_in(stderr: str) -> list[str]:
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if "ERROR" in line or "error:" in line]


@pytest.mark.slow
def test_a_full_disk_fails_the_run_in_one_line_and_with_room_it_resumes_as_if_never_full(
    tmp_path, cache_dir, small_disk
):
    train = [str(BIN / "lstm-train"), *TINY, f"data.cache_dir={cache_dir}"]
    run = small_disk / "run"
    proc = subprocess.run([*train, f"hydra.run.dir={run}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    [error] = errors_in(proc.stderr)
    assert "cannot write" in error and str(run / "checkpoints") in error and "No space left on device" in error
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "No space left on device" in status["error"]
    assert (run / "checkpoints" / "resume.ckpt").is_file() and not (run / "metrics.json").exists()
    assert not list(run.rglob(".*.tmp"))  # no half-written file left to eat the space

    mount("-o", "remount,size=16m", str(small_disk))  # room again: the same command resumes
    proc = subprocess.run([*train, f"hydra.run.dir={run}"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from" in proc.stderr
    whole = subprocess.run([*train, f"hydra.run.dir={tmp_path / 'whole'}"], capture_output=True, timeout=300)
    assert whole.returncode == 0
    assert outcome(run) == outcome(tmp_path / "whole")


@pytest.mark.slow
def test_a_read_only_output_folder_is_refused_in_one_line_and_nothing_changes(
    tmp_path, cache_dir, read_only_disk, fake_run
):
    source, disk = read_only_disk
    fake_run(source / "old_run", status="failed")
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    commands = {
        "new run": [str(BIN / "lstm-train"), *TINY, f"hydra.run.dir={disk / 'new_run'}"],
        "old run": [str(BIN / "lstm-train"), *TINY, f"hydra.run.dir={disk / 'old_run'}"],
        "sweep": [str(BIN / "lstm-sweep"), "--dir", str(disk / "sweep"), *TINY, "seed=0,1"],
        "report": [str(BIN / "lstm-aggregate"), str(disk), "--out", str(disk / "report")],
        # the report's folder is asked about before any run trains, not after the last
        "sweep's report": [str(BIN / "lstm-sweep"), "--dir", str(tmp_path / "trained"), *TINY, "--out", str(disk)],
    }
    for name, command in commands.items():
        proc = subprocess.run([*command], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 1, name
        [error] = errors_in(proc.stderr)
        assert "Read-only file system" in error or "read-only file system" in error, (name, error)
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "trained").exists()


def test_a_failure_is_recorded_even_when_its_file_cannot_be_written_whole(tmp_path, monkeypatch, caplog):
    set_status(tmp_path, "running")

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(folder, "write_json", disk_full)
    set_status(tmp_path, "failed", OSError(errno.ENOSPC, "No space left on device"))
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "failed"  # written in place
    assert "could not be written whole" in caplog.text


def test_a_running_status_holds_only_while_its_process_lives():
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    here = {"status": "running", "host": socket.gethostname()}
    assert recorded_status({**here, "pid": os.getpid()}) == ("running", "")
    status, error = recorded_status({**here, "pid": ended.pid})
    assert status == "interrupted" and f"pid {ended.pid}" in error
    assert recorded_status({**here, "host": "elsewhere", "pid": ended.pid})[0] == "running"  # cannot be seen


@pytest.mark.parametrize(
    "path, says",
    [
        ("/dev/full", "No space left on device"),  # every write: ENOSPC
        ("/nowhere/train.log", "No such file or directory"),
    ],
)
def test_a_log_that_cannot_be_written_costs_one_line_not_a_traceback_per_record(capfd, path, says):
    handler = RunLogFile(path)
    for message in ("one", "two", "three"):
        handler.handle(_record(message))
    handler.close()
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"{path} cannot be written" in err and says in err


def test_a_record_about_a_run_not_started_here_stays_out_of_its_log(tmp_path):
    handler = RunLogFile(str(tmp_path / "train.log"))
    handler.handle(_record("skipped", not_in_run_log=True))
    assert not (tmp_path / "train.log").exists()  # not even opened
    handler.handle(_record("trained"))
    handler.close()
    assert (tmp_path / "train.log").read_text() == "trained\n"


def _record(message: str, **extra):
    import logging

    record = logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(
    "code, says",
    [
        (errno.ENOSPC, "cannot write /out/x: No space left on device"),
        (errno.EROFS, "cannot write /out/x: Read-only file system"),
        (errno.EACCES, "permission denied: /out/x"),  # reading or writing: no more than is known
    ],
)
def test_a_disk_error_is_one_line_that_says_what_it_knows(code, says):
    from lstm_sweep.errors import user_message

    assert user_message(OSError(code, os.strerror(code), "/out/x")) == says
    assert user_message(OSError(errno.EIO, "I/O error", "/out/x")) is None  # a fault: its traceback is wanted
