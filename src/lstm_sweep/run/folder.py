"""A run's folder as a record of its outcome: status.json (running, then finished, failed
or interrupted, with the error), metrics.json once finished, and attempts/<n>/ for the
files of an interrupted attempt. A folder that holds a finished run is never written over,
and only the process that holds its lock (`.lock`) writes in it."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lstm_sweep.errors import RunBusy, RunFinished, is_disk_error, one_line
from lstm_sweep.files import write_json, write_text
from lstm_sweep.records import STATUS_FILE, is_finished, status_record

log = logging.getLogger("lstm_sweep.run.train")


@contextmanager
def run_lock(run_dir: Path):
    """Hold the run folder's lock, or raise RunBusy: several processes — sweeps on one folder,
    on one machine or several sharing a filesystem — each train a run only while they hold it.
    The operating system releases a dead process's lock, so a killed run's is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / ".lock"), timeout=0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise RunBusy(f"{run_dir} is being trained by another process") from None
    except (OSError, NotImplementedError) as err:  # a lock file that outlived its process would block the run
        raise RunBusy(f"{run_dir} cannot be locked on its filesystem ({type(err).__name__}: {err})") from None
    try:
        yield
    finally:
        lock.release()


def refuse_finished(run_dir: Path) -> None:
    if is_finished(run_dir):
        raise RunFinished(f"{run_dir} already holds a finished run (metrics.json); choose another hydra.run.dir")


def set_status(run_dir: Path, status: str, error: BaseException | str | None = None) -> None:
    """Write status.json (records.py). Recording a failure must not fail for want of disk
    space: when the atomic write cannot be made, the file is overwritten in place — a
    half-written one reads as damaged, never as "running"."""
    record = status_record(status, error)
    path = run_dir / STATUS_FILE
    try:
        write_json(path, record)
    except OSError as err:
        if status == "running" or not is_disk_error(err):
            raise
        with suppress(OSError), path.open("w") as f:  # truncating frees the old content's space first
            f.write(json.dumps(record, allow_nan=False))
        log.error("%s could not be written whole: %s", path, one_line(err))


def save_hydra_record(run_dir: Path, cfg: DictConfig) -> None:
    """.hydra/ as Hydra writes it (the composed config, Hydra's own, the overrides), but only
    for a run that really starts — config.yaml turns Hydra's own writing off — so a finished
    run's record, or that of a run whose resume was refused, is never written over."""
    if not HydraConfig.initialized():  # train() called from Python: no Hydra, no record
        return
    hydra_cfg = HydraConfig.get()
    folder = run_dir / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (
        ("config.yaml", cfg),
        ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
        ("overrides.yaml", hydra_cfg.overrides.task),
    ):
        write_text(folder / name, OmegaConf.to_yaml(node))


KEPT_IN_PLACE = ("train.log", "attempts", ".lock")  # across attempts


def has_attempt(run_dir: Path) -> bool:
    """Whether the folder holds files of an earlier attempt (besides its log)."""
    return any(p.name not in KEPT_IN_PLACE for p in run_dir.iterdir())


def archive_previous_attempt(run_dir: Path) -> None:
    """Move an unfinished attempt's files into attempts/<n>/, so the new one starts clean."""
    leftovers = [p for p in run_dir.iterdir() if p.name not in KEPT_IN_PLACE]
    if not leftovers:
        return
    attempts = run_dir / "attempts"
    numbers = [int(p.name) for p in attempts.glob("*") if p.name.isdigit()]
    target = attempts / str(max(numbers, default=-1) + 1)
    target.mkdir(parents=True)
    for path in leftovers:
        path.rename(target / path.name)
    log.info("moved the previous attempt's files to %s", target)
