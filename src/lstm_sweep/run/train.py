"""`lstm-train`: one run — fit, test, and leave everything in the run's folder.

The run's folder (Hydra's output dir) ends up holding `.hydra/` (the composed config),
`train.log`, the TensorBoard event file, `checkpoints/`, `vocab.json`, `metrics.json` and
`status.json` (running, finished or failed, with the error).

Under a multirun (`lstm-train -m`, `lstm-sweep`) a run that fails is recorded as failed
and the sweep goes on; a run whose folder already holds a finished run is skipped, and
the leftovers of an interrupted one are moved into `attempts/` before it starts again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from lstm_sweep.data.datamodule import LMDataModule
from lstm_sweep.errors import ConfigError, LstmSweepError
from lstm_sweep.run.module import LitLanguageModel
from lstm_sweep.naming import run_name

log = logging.getLogger(__name__)


def _not_an_advert(record: logging.LogRecord) -> bool:
    # Lightning logs a product tip at every Trainer start; in a 40-run sweep's logs it is noise.
    return "litlogger" not in str(record.msg)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_an_advert)

# For hydra.run.dir / hydra.sweep.dir (unique per process) and hydra.sweep.subdir.
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)
OmegaConf.register_new_resolver("run_name", run_name, replace=True)

TEST_CHECKPOINTS = ("last", "best")
HPARAM_METRICS = ("test/ppl", "test/loss", "val/ppl", "val/loss", "train/ppl", "data/oracle_ppl")


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Run one config in `run_dir`; return the final metrics (also written to metrics.json)."""
    run_dir = Path(run_dir)
    refuse_finished(run_dir)
    t = cfg.trainer
    if t.test_checkpoint not in TEST_CHECKPOINTS:
        raise ConfigError(f"trainer.test_checkpoint={t.test_checkpoint!r} is not one of "
                          f"{', '.join(TEST_CHECKPOINTS)}")
    patience = t.early_stopping_patience
    if patience is not None and (not isinstance(patience, int) or patience < 0):
        raise ConfigError(f"trainer.early_stopping_patience={patience!r} must be null or an integer >= 0")
    threads = torch_threads(t.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    config = OmegaConf.to_container(cfg, resolve=True)

    datamodule = LMDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup()
    module = LitLanguageModel(config, vocab_size=len(datamodule.vocab))
    run_dir.mkdir(parents=True, exist_ok=True)
    datamodule.vocab.save(run_dir / "vocab.json")
    log.info("corpus: %s", ", ".join(f"{s} {st.tokens} tokens / {st.examples} examples"
                                      for s, st in datamodule.stats.items()))
    log.info("model: %s (%s), %d parameters; %d torch threads", cfg.model.cell, cfg.model.impl,
             sum(p.numel() for p in module.parameters()), torch.get_num_threads())

    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False)
    callbacks = []
    if t.early_stopping_patience is not None:  # stop once val/ppl has not improved for that many epochs
        callbacks.append(EarlyStopping(monitor="val/ppl", mode="min", patience=t.early_stopping_patience))
    checkpoints = run_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=checkpoints, filename="best-epoch{epoch}", auto_insert_metric_name=False,
                           monitor="val/ppl", mode="min", save_top_k=1)
    # Not save_last=True: Lightning writes that last.ckpt only when it also writes a monitored
    # checkpoint, so once val/ppl stops improving "last" silently stays the best epoch. A
    # callback without a monitor writes the final weights of every epoch.
    last = ModelCheckpoint(dirpath=checkpoints, filename="last", save_top_k=1, enable_version_counter=False)
    trainer = pl.Trainer(
        max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices, precision=t.precision,
        gradient_clip_val=t.gradient_clip_val, gradient_clip_algorithm=t.gradient_clip_algorithm,
        deterministic=t.deterministic, log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches, enable_progress_bar=t.progress_bar,
        num_sanity_val_steps=0, logger=logger, callbacks=[*callbacks, best, last], default_root_dir=str(run_dir),
        enable_model_summary=False)

    start = time.perf_counter()
    with warnings.catch_warnings():
        # Batches are tensor slices made in the main process; worker processes would only add cost.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Lightning's own use of a deprecated torch API; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        trainer.fit(module, datamodule=datamodule)
        tested = best.best_model_path if t.test_checkpoint == "best" else last.best_model_path
        trainer.test(module, datamodule=datamodule, ckpt_path=tested, verbose=False)
    metrics = final_metrics(module, trainer.global_step, time.perf_counter() - start)
    logger.log_metrics({"perf/wall_time_sec": metrics["wall_time_sec"]}, step=trainer.global_step)
    write_hparams(logger, config, metrics)
    write_json(run_dir / "metrics.json", metrics)
    log.info("test/ppl %.3f  test/loss %.6f  (%s)", metrics["test/ppl"], metrics["test/loss"], run_dir)
    return metrics


def torch_threads(configured: int | None) -> int | None:
    """trainer.threads, or under the joblib launcher cores // jobs, so jobs × threads ≤ cores."""
    if configured is not None:
        if not isinstance(configured, int) or configured < 1:
            raise ConfigError(f"trainer.threads={configured!r} must be null or an integer >= 1")
        return configured
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return None
    cores = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or 1
    jobs = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    return max(1, cores // jobs)


def refuse_finished(run_dir: Path) -> None:
    if (run_dir / "metrics.json").exists():
        raise ConfigError(f"{run_dir} already holds a finished run (metrics.json); "
                          "choose another hydra.run.dir")


def final_metrics(module: LitLanguageModel, steps: int, seconds: float) -> dict:
    """The run's final numbers, as the module logged them."""
    logged, val_history = module.last_logged, module.val_history
    best_epoch = module.best_val_epoch()
    tokens_per_sec = module.tokens_per_sec
    metrics = {
        # train/loss is logged per step; the epoch's token-weighted mean is log(train/ppl).
        "train/loss": math.log(logged["train/ppl"]) if "train/ppl" in logged else None,
        **{k: logged.get(k) for k in ("train/ppl", "val/loss", "val/ppl", "test/loss", "test/ppl")},
        "best_val/ppl": val_history[best_epoch] if best_epoch is not None else None,
        "best_val/epoch": best_epoch,
        "epochs": len(val_history),
        "steps": steps,
        "perf/train_tokens_per_sec": sum(tokens_per_sec) / len(tokens_per_sec) if tokens_per_sec else None,
        "wall_time_sec": seconds,
    }
    if "data/oracle_ppl" in logged:
        metrics["data/oracle_ppl"] = logged["data/oracle_ppl"]
    return metrics


def write_hparams(logger: TensorBoardLogger, config: dict, metrics: dict) -> None:
    """One HPARAMS row per run: the flattened config, linked to the scalars already logged.

    Written once, at the end, so the row's metric columns exist; the metric values are the
    logged scalars themselves (the summary names their tags), not a second copy.
    """
    from torch.utils.tensorboard.summary import hparams

    settings = {k: v for k, v in config.items() if k != "reference"}  # published numbers are no setting
    flat = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(settings).items()}
    metric_tags = {k: 0.0 for k in HPARAM_METRICS if metrics.get(k) is not None}
    writer = logger.experiment._get_file_writer()
    for summary in hparams(flat, metric_tags):
        writer.add_summary(summary)
    logger.experiment.flush()


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def record_run(cfg: DictConfig, run_dir: Path) -> dict:
    """train() with its outcome in status.json: running, then finished or failed (with the error)."""
    refuse_finished(run_dir)  # before status.json, which belongs to that run
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "status.json", {"status": "running"})
    try:
        metrics = train(cfg, run_dir)
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        write_json(run_dir / "status.json", {"status": status, "error": f"{type(err).__name__}: {err}"})
        raise
    write_json(run_dir / "status.json", {"status": "finished"})
    return metrics


def archive_previous_attempt(run_dir: Path) -> None:
    """Move an unfinished attempt's files into attempts/<n>/, so the new one starts clean."""
    leftovers = [p for p in run_dir.iterdir() if p.name not in (".hydra", "train.log", "attempts")]
    if not leftovers:
        return
    attempts = run_dir / "attempts"
    target = attempts / str(len(list(attempts.glob("*"))) if attempts.exists() else 0)
    target.mkdir(parents=True)
    for path in leftovers:
        path.rename(target / path.name)
    log.info("moved the previous attempt's files to %s", target)


def run_in_sweep(cfg: DictConfig, run_dir: Path) -> dict | None:
    """One job of a multirun: skip it if finished; record, never raise, a failure."""
    if (run_dir / "metrics.json").exists():
        log.info("%s already finished: skipped", run_dir.name)
        return json.loads((run_dir / "metrics.json").read_text())
    archive_previous_attempt(run_dir)
    try:
        return record_run(cfg, run_dir)
    except Exception as err:  # a failed run is recorded; it must not stop the sweep
        log.error("run %s failed: %s: %s", run_dir.name, type(err).__name__, err,
                  exc_info=not isinstance(err, LstmSweepError))
        return None


@hydra.main(version_base="1.3", config_path="pkg://lstm_sweep.conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        run_in_sweep(cfg, run_dir)
        return
    try:
        record_run(cfg, run_dir)
    except LstmSweepError as err:
        log.error("%s", err)  # to stderr and the run's train.log
        sys.exit(1)
