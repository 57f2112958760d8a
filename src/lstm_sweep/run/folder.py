"""A run's folder as a record of its outcome: status.json (running, then finished, failed
or interrupted, with the error), metrics.json once finished, and attempts/<n>/ for the
files of an interrupted attempt. A folder that holds a finished run is never written over."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lstm_sweep.errors import ConfigError

log = logging.getLogger("lstm_sweep.run.train")


def write_json(path: Path, data: dict) -> None:
    """Written beside and renamed into place: a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").exists()


def refuse_finished(run_dir: Path) -> None:
    if is_finished(run_dir):
        raise ConfigError(f"{run_dir} already holds a finished run (metrics.json); "
                          "choose another hydra.run.dir")


def set_status(run_dir: Path, status: str, error: BaseException | None = None) -> None:
    record = {"status": status}
    if error is not None:
        record["error"] = f"{type(error).__name__}: {error}"
    write_json(run_dir / "status.json", record)


def save_hydra_record(run_dir: Path, cfg: DictConfig) -> None:
    """.hydra/ as Hydra writes it (the composed config, Hydra's own, the overrides), but only
    for a run that really starts — config.yaml turns Hydra's own writing off — so a finished
    run's record, or that of a run whose resume was refused, is never written over."""
    if not HydraConfig.initialized():  # train() called from Python: no Hydra, no record
        return
    hydra_cfg = HydraConfig.get()
    folder = run_dir / ".hydra"
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
                       ("overrides.yaml", hydra_cfg.overrides.task)):
        (folder / name).write_text(OmegaConf.to_yaml(node))


def archive_previous_attempt(run_dir: Path) -> None:
    """Move an unfinished attempt's files into attempts/<n>/, so the new one starts clean."""
    leftovers = [p for p in run_dir.iterdir() if p.name not in ("train.log", "attempts")]
    if not leftovers:
        return
    attempts = run_dir / "attempts"
    target = attempts / str(len(list(attempts.glob("*"))) if attempts.exists() else 0)
    target.mkdir(parents=True)
    for path in leftovers:
        path.rename(target / path.name)
    log.info("moved the previous attempt's files to %s", target)
