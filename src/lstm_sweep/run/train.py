"""One run — fit, test, and leave everything in the run's folder (lstm-train's work).

The run's folder (Hydra's output dir) ends up holding `.hydra/` (the composed config),
`train.log`, the TensorBoard event file, `checkpoints/`, `vocab.json`, `metrics.json` and
`status.json` (folder.py). Under a multirun (`lstm-train -m`, `lstm-sweep`) a run that
fails is recorded as failed and the sweep goes on; a run whose folder already holds a
finished run is skipped, and the leftovers of an interrupted one are moved into
`attempts/` before it starts again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lstm_sweep.data.datamodule import LMDataModule
from lstm_sweep.errors import (
    ConfigError,
    OtherRunFinished,
    ResumeUnreadable,
    RunBusy,
    RunFinished,
    one_line,
    user_message,
)
from lstm_sweep.fields import plain
from lstm_sweep.files import write_json
from lstm_sweep.naming import trial_label
from lstm_sweep.records import METRICS_FILE, is_finished, planned_runs
from lstm_sweep.run.callbacks import DivergenceWatch, EpochLog, Throughput
from lstm_sweep.run.config import check_config, lightning_arguments
from lstm_sweep.run.folder import (
    archive_previous_attempt,
    has_attempt,
    refuse_finished,
    run_lock,
    save_hydra_record,
    set_status,
)
from lstm_sweep.run.logfile import NOT_IN_RUN_LOG
from lstm_sweep.run.loggers import extra_loggers
from lstm_sweep.run.module import LitLanguageModel
from lstm_sweep.run.resume import (
    RESUME_FILE,
    AtomicCheckpointIO,
    RelocatableCheckpoint,
    ResumeCheckpoint,
    refuse_other_finished,
    resume_point,
    wait_past_event_files,
)
from lstm_sweep.run.slurm import (
    TimeLimitWarning,
    in_slurm_job,
    requeue_after_time_limit,
    slurm_cpus,
)
from lstm_sweep.run.summary import RunLogger, RunSummary, write_hparams

log = logging.getLogger("lstm_sweep.run.train")


def _not_an_advert(record: logging.LogRecord) -> bool:
    # Lightning logs a product tip at every Trainer start; in a 40-run sweep's logs it is noise.
    return "litlogger" not in str(record.msg)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_an_advert)


def train(cfg: DictConfig, run_dir: str | Path, resume_from: tuple[Path, int] | None = None) -> dict:
    """Run one config in `run_dir` (from `resume_from`, a checkpoint and its step, if given);
    return the final metrics (also written to metrics.json)."""
    run_dir = Path(run_dir)
    refuse_finished(run_dir)
    check_config(cfg)
    t = cfg.trainer
    threads = torch_threads(t.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    config = plain(cfg)

    datamodule = LMDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup()
    assert datamodule.vocab is not None  # setup() built it
    module = build_module(config, len(datamodule.vocab))
    run_dir.mkdir(parents=True, exist_ok=True)
    datamodule.vocab.save(run_dir / "vocab.json")
    log.info(
        "corpus: %s",
        ", ".join(f"{s} {st.tokens} tokens / {st.examples} examples" for s, st in datamodule.stats.items()),
    )
    log.info(
        "model: %s (%s), %d parameters; %d torch threads",
        cfg.model.cell,
        cfg.model.impl,
        sum(p.numel() for p in module.parameters()),
        torch.get_num_threads(),
    )

    checkpoints = run_dir / "checkpoints"
    checkpoint, resumed_step = resume_from or (None, None)
    if checkpoint is not None:
        log.info("resuming from %s (step %d)", checkpoint, resumed_step)
        wait_past_event_files(run_dir)
    # On resume, TensorBoard drops what the interrupted attempt logged after its checkpoint.
    logger = RunLogger(
        save_dir=str(run_dir),
        name="",
        version="",
        default_hp_metric=False,
        purge_step=resumed_step + 1 if resumed_step is not None else None,
    )
    logger.write_layout(resumed_step + 1 if resumed_step is not None else 0)
    loggers = [logger, *extra_loggers(cfg, run_dir, resumed_step)]  # TensorBoard first: trainer.logger
    throughput = Throughput()
    epoch_log = EpochLog(throughput)
    callbacks = [
        DivergenceWatch(),
        throughput,
        epoch_log,
        ResumeCheckpoint(checkpoints, t.checkpoint_every_n_steps, t.checkpoint_every_minutes, datamodule),
    ]
    if t.early_stopping_patience is not None:  # stop once val/ppl has not improved for that many epochs
        callbacks.append(EarlyStopping(monitor="val/ppl", mode="min", patience=t.early_stopping_patience))
    # Weights only (a third of a full checkpoint with Adam's moments): they are tested and
    # sampled from; resuming is resume.ckpt's job.
    best = RelocatableCheckpoint(
        dirpath=checkpoints,
        filename="best-epoch{epoch}",
        auto_insert_metric_name=False,
        monitor="val/ppl",
        mode="min",
        save_top_k=1,
        save_weights_only=True,
    )
    # Not save_last=True: Lightning writes that last.ckpt only when it also writes a monitored
    # checkpoint, so once val/ppl stops improving "last" silently stays the best epoch. A
    # callback without a monitor writes the final weights of every epoch.
    last = RelocatableCheckpoint(
        dirpath=checkpoints, filename="last", save_top_k=1, enable_version_counter=False, save_weights_only=True
    )
    with lightning_advice_silenced():
        trainer = make_trainer(t, loggers, [*callbacks, best, last], run_dir)

    try:
        start = time.perf_counter()
        with lightning_advice_silenced():
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
            # Testing loads the tested checkpoint's state into the module and the callbacks
            # (the best epoch's, if that is the one tested): read what fitting left first.
            per_epoch = throughput.per_epoch
            fitted = RunSummary(
                train=module.result("train"),
                val=module.result("val"),
                test=None,
                val_ppl_per_epoch=list(epoch_log.val_ppl),
                best_val_epoch=epoch_log.best_epoch(),
                steps=trainer.global_step,
                tokens_per_sec=sum(per_epoch) / len(per_epoch) if per_epoch else None,
                wall_time_sec=math.nan,
                oracle_ppl=datamodule.oracle_ppl,
            )
            tested = best.best_model_path if t.test_checkpoint == "best" else last.best_model_path
            trainer.test(module, datamodule=datamodule, ckpt_path=tested, verbose=False)
        seconds = time.perf_counter() - start
        summary = dataclasses.replace(fitted, test=module.result("test"), wall_time_sec=seconds)
        metrics = summary.metrics()
        final = {"wall_time_sec": seconds, "val/best_ppl": metrics["best_val/ppl"]}
        if datamodule.oracle_ppl is not None:
            final["test/oracle_ppl"] = datamodule.oracle_ppl
        for each in loggers:
            each.log_metrics({k: v for k, v in final.items() if v is not None}, step=trainer.global_step)
            each.save()
        write_hparams(logger, config, trial_label(run_dir))
        write_json(run_dir / METRICS_FILE, metrics)
        (checkpoints / RESUME_FILE).unlink(missing_ok=True)  # finished: nothing to resume, space back
        log.info("test/ppl %.3f  test/loss %.6f  (%s)", metrics["test/ppl"], metrics["test/loss"], run_dir)
    finally:
        logger.close()
    return metrics


@contextmanager
def lightning_advice_silenced():
    """Lightning's warnings that do not apply to these runs."""
    with warnings.catch_warnings():
        # Batches are tensor slices made in the main process; worker processes would only add cost.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Lightning's own use of a deprecated torch API; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        # A resumed run's samplers skip the batches already run (run/resume.py), and its
        # checkpoint folder holds the interrupted attempt's checkpoints by design.
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        # Its advice to use srun, whenever SLURM's tools are installed: a run outside a job is a
        # local run, and a submitted run's job needs no srun (slurm.py).
        warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")
        yield


def make_trainer(t, loggers: list, callbacks: list, run_dir: Path) -> pl.Trainer:
    """Lightning's Trainer: the trainer keys it takes as they are (run/config.py marks them),
    and what this run decides itself."""
    return pl.Trainer(
        **lightning_arguments(t),
        enable_progress_bar=show_progress_bar(t.progress_bar),
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        enable_model_summary=False,
        # In a SLURM job the run checkpoints and requeues itself (slurm.py), not Lightning.
        plugins=[AtomicCheckpointIO(), *([LightningEnvironment()] if in_slurm_job() else [])],
    )


def show_progress_bar(configured: bool | None) -> bool:
    """trainer.progress_bar, or (null) whether stdout is a terminal: Lightning's bar redraws
    itself many times a second, which in a log file or a pipe is megabytes of noise."""
    return configured if configured is not None else sys.stdout.isatty()


def torch_threads(configured: int | None) -> int | None:
    """trainer.threads; in a SLURM job, the CPUs it was given; under a launcher that runs
    jobs side by side on this machine, cores // jobs, so jobs × threads ≤ cores."""
    if configured is not None:
        return configured
    if (cpus := slurm_cpus()) is not None:
        return cpus
    if not HydraConfig.initialized():
        return None
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    cores = os.cpu_count() or 1
    if "joblib" in target:
        n_jobs = launcher.get("n_jobs") or 1
        jobs = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    elif "submitit_launcher.LocalLauncher" in target:  # every job of the sweep at once, as processes
        if launcher.get("cpus_per_task"):
            return int(launcher.cpus_per_task)
        jobs = min(launcher.get("array_parallelism") or 256, sweep_size())
    else:
        return None
    return max(1, cores // jobs)


def sweep_size() -> int:
    """How many runs the sweep this job belongs to launches (sweep.json's last start), or 1."""
    return planned_runs(Path(HydraConfig.get().sweep.dir)) or 1


def record_run(cfg: DictConfig, run_dir: Path) -> dict:
    """train() with its outcome in status.json: running, then finished or failed (with the error),
    while holding the run folder's lock (RunBusy if another process holds it).

    An unfinished run in `run_dir` resumes from its checkpoint (trainer.resume); without one,
    or with resuming off, its files are moved to attempts/<n>/ and the run starts over.
    """
    with run_lock(run_dir):
        if is_finished(run_dir):  # never taken for this run unless it was made with its settings
            refuse_other_finished(run_dir, plain(cfg))
        refuse_finished(run_dir)  # before status.json, which belongs to that run
        try:
            check_config(cfg)
        except ConfigError as err:
            if not has_attempt(run_dir):  # a new run: recorded as failed, so its sweep lists it
                save_hydra_record(run_dir, cfg)
                set_status(run_dir, "failed", err)
            raise
        try:
            resume_from = resume_point(run_dir, plain(cfg)) if cfg.trainer.resume else None
        except ResumeUnreadable as err:  # else status.json would go on naming the killed process
            set_status(run_dir, "failed", err)
            raise
        if resume_from is None:
            archive_previous_attempt(run_dir)
        save_hydra_record(run_dir, cfg)
        set_status(run_dir, "running")
        if in_slurm_job():
            TimeLimitWarning.install()  # already, in a submitted sweep's task
        try:
            metrics = train(cfg, run_dir, resume_from)
        except SIGTERMException:  # Lightning's, with no exit status: stopped, not done
            if TimeLimitWarning.warned():  # installed in SLURM jobs only
                requeue_after_time_limit(lambda why: set_status(run_dir, "interrupted", why))
            else:
                set_status(run_dir, "interrupted", "stopped by SIGTERM")
            raise SystemExit(128 + signal.SIGTERM) from None
        except (KeyboardInterrupt, SystemExit) as err:  # Lightning turns Ctrl-C into exit(1)
            ctrl_c = isinstance(err, KeyboardInterrupt) or isinstance(err.__context__, KeyboardInterrupt)
            set_status(run_dir, "interrupted", "stopped by Ctrl-C (SIGINT)" if ctrl_c else err)
            raise
        except BaseException as err:
            set_status(run_dir, "failed", err)
            raise
        set_status(run_dir, "finished")
        return metrics


def build_module(config: dict, vocab_size: int) -> LitLanguageModel:
    """The model, or one line saying it does not fit in memory (torch says so in a traceback)."""
    try:
        return LitLanguageModel(config, vocab_size=vocab_size)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        m = config["model"]
        raise ConfigError(
            f"the model (model.embedding_size={m['embedding_size']}, model.hidden_size={m['hidden_size']}, "
            f"model.num_layers={m['num_layers']}, {vocab_size} words) does not fit in memory: {one_line(err)}"
        ) from None


def run_in_sweep(cfg: DictConfig, run_dir: Path) -> dict | None:
    """One job of a multirun: skip it if finished; record, never raise, a failure. Returns the
    run's metrics (None if it did not finish)."""
    try:
        return record_run(cfg, run_dir)
    except (KeyboardInterrupt, SystemExit) as stop:  # recorded as interrupted: the sweep stops
        if multiprocessing.parent_process() is not None:
            # A launcher's worker (joblib's) would go on to its next queued run: it ends here.
            logging.shutdown()
            os._exit(stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 128 + signal.SIGINT)
        raise
    except RunFinished:
        log.info("%s already finished: skipped", run_dir.name, extra=NOT_IN_RUN_LOG)
        try:
            return json.loads((run_dir / METRICS_FILE).read_text())
        except ValueError:  # damaged: never rewritten; lstm-aggregate lists it as such
            log.warning("%s cannot be read", run_dir / METRICS_FILE)
            return None
    except OtherRunFinished as err:  # its folder's files, its log included, are that run's
        log.error("run %s failed: %s", run_dir.name, err, extra=NOT_IN_RUN_LOG)
        return None
    except RunBusy as err:  # another sweep process on this folder trains it
        log.info("%s: skipped", err, extra=NOT_IN_RUN_LOG)  # that run's log is the other process's
        return None
    except Exception as err:  # a failed run is recorded; it must not stop the sweep
        message = user_message(err)
        log.error("run %s failed: %s", run_dir.name, message or one_line(err), exc_info=message is None)
        return None
