"""Resuming a run from its newest checkpoint so that it ends exactly as if never interrupted.

Lightning's checkpoints restore the weights, optimizer, schedulers, loop counters and the
callbacks' own state; what they lack is added here:

- `ResumeCheckpoint` writes checkpoints/resume.ckpt as every epoch's first batch begins (but
  the run's very first) and
  every `trainer.checkpoint_every_n_steps` steps (or `checkpoint_every_minutes`) after —
  at a batch's start, when the previous batch has been logged, so no logged point can
  fall between the checkpoint and the kill. Into every checkpoint it puts the torch,
  numpy and Python random states, which it restores where an uninterrupted run would
  have had them, and how many of the epoch's batches already ran, which it tells the
  DataModule; and it flushes every logger first (TensorBoard's queue, the CSV rows), so the files hold
  everything the checkpoint has seen;
- `AtomicCheckpointIO` writes every checkpoint beside its target and renames it into place:
  a kill while saving leaves the previous checkpoint whole;
- `resume_point` picks the checkpoint and refuses one made with settings that change
  results.
"""

from __future__ import annotations

import io
import logging
import random
import time
from pathlib import Path
from typing import cast

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lstm_sweep.errors import ConfigError, OtherRunFinished, ResumeUnreadable
from lstm_sweep.fields import plain
from lstm_sweep.files import replacing
from lstm_sweep.naming import NOT_RESULTS
from lstm_sweep.run.slurm import TimeLimitWarning
from lstm_sweep.run.summary import flatten

log = logging.getLogger("lstm_sweep.run.train")

RESUME_FILE = "resume.ckpt"
# Keys added since a checkpoint may have been written, with the value its run had in effect:
# a run started before optim.fused existed took torch's foreach step (resume it with
# optim.fused=false).
LEGACY_DEFAULTS = {"optim.fused": False}


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        # Serialised in memory first (as Lightning does): torch's writer turns a failed write
        # into a RuntimeError; written from Python, a full disk stays an OSError naming the file.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, binary=True, fsync=True) as f:
            f.write(buffer.getbuffer())


def random_states() -> dict:
    numpy_state = cast(tuple, np.random.get_state(legacy=True))
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],  # GPU dropout
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]),
    }


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda"):
        torch.cuda.set_rng_state_all(states["cuda"])
    random.setstate(states["python"])
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))


class ResumeCheckpoint(Callback):
    """checkpoints/resume.ckpt at every epoch's first batch and every N steps or M minutes after,
    with the random states and the epoch's position that Lightning's checkpoints lack."""

    def __init__(self, folder: Path, every_n_steps: int | None, every_minutes: float, datamodule):
        self.path = folder / RESUME_FILE
        self.every_n_steps, self.every_seconds = every_n_steps, every_minutes * 60
        self.datamodule = datamodule
        self.saving = False  # writing resume.ckpt (not best or last)
        self.pending_states = None
        self.saved_at = time.monotonic()
        self.stopping = False  # SIGTERM came: checkpoint at the next batch's start, then stop

    def _save(self, trainer: pl.Trainer) -> None:
        start, self.saving = time.monotonic(), True
        try:
            trainer.save_checkpoint(self.path, weights_only=False)
        finally:
            self.saving = False
        self.saved_at = time.monotonic()
        log.info("%s saved at step %d in %.2f s", self.path.name, trainer.global_step, self.saved_at - start)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module, batch, batch_idx: int) -> None:
        if self.pending_states is not None:  # the first batch after resuming
            set_random_states(self.pending_states)
            self.pending_states = None
        due = (
            trainer.global_step % self.every_n_steps == 0
            if self.every_n_steps
            else time.monotonic() - self.saved_at >= self.every_seconds
        )
        # An epoch's start, as its first batch begins — but the run's first: a run killed before
        # any checkpoint starts over, which ends the same, so that one would be written for nothing.
        if (batch_idx == 0 or due or self.stopping) and trainer.global_step > 0:
            self._save(trainer)
        if self.stopping:
            raise SIGTERMException

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # Lightning stops on SIGTERM at this batch's end, where no checkpoint resumes exactly:
        # the run stops at the next batch's start instead, once resume.ckpt holds all it did
        # (a SLURM job asked to requeue or cancelled, or warned of its time limit, loses nothing).
        if trainer.received_sigterm or TimeLimitWarning.warned():
            if not self.stopping:
                log.info(
                    "%s: the run stops at the next batch, once %s holds all it did",
                    "SLURM's time-limit warning" if TimeLimitWarning.warned() else "SIGTERM",
                    self.path.name,
                )
            self.stopping = True
            trainer._signal_connector.received_sigterm = False

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        # What the checkpoint has seen is on disk: TensorBoard's queue, the CSV logger's rows.
        for logger in trainer.loggers:
            logger.save()
        if trainer.logger is not None:  # TensorBoard's, the run's first logger
            cast(TensorBoardLogger, trainer.logger).experiment.flush()
        checkpoint["resume"] = {
            "random": random_states(),
            "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.completed,
        }
        if self.saving:
            # Lightning adds one to the logging step when it restores, as its own checkpoints are
            # taken at a batch's end; ours are taken at a batch's start.
            checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint["resume"]
        # Lightning makes the train loader's iterator (once or twice) before training goes on,
        # and each draws a seed: the random states are restored as the first batch starts.
        self.datamodule.resume_after(state["batches_done"])
        self.pending_states = state["random"]


class RelocatableCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with its files named relative to the run's checkpoints
    folder in what resume.ckpt keeps of it. Lightning keeps absolute paths and, in a folder
    moved or copied since, drops them: the resumed run would forget its best epoch, test an
    epoch after it (trainer.test_checkpoint=best) and leave the old best file behind. Paths
    of runs made before are rebased by file name, the files' folder being the run's own."""

    @property
    def state_key(self) -> str:  # ModelCheckpoint's: resume.ckpt files of either class load in both
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def state_dict(self) -> dict:
        return rebased(super().state_dict(), lambda path: Path(path).name, ".")

    def load_state_dict(self, state_dict: dict) -> None:
        here = Path(str(self.dirpath))
        super().load_state_dict(rebased(state_dict, lambda path: str(here / Path(path).name), self.dirpath))


def rebased(state: dict, move, dirpath) -> dict:
    """A ModelCheckpoint state with each file path `move`d (empty paths stay empty)."""

    def moved(path):
        return move(path) if path else path

    paths = {
        key: moved(state[key]) for key in ("best_model_path", "kth_best_model_path", "last_model_path") if key in state
    }
    best_k = {moved(path): score for path, score in state.get("best_k_models", {}).items()}
    return {**state, **paths, "best_k_models": best_k, "dirpath": dirpath}


def wait_past_event_files(run_dir: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a name starts with the
    second the file was made: the resumed attempt's file must not share the interrupted
    one's second (its process id, next in the name, would then decide the order)."""
    newest = max((int(p.name.split(".")[3]) for p in run_dir.glob("events.out.tfevents.*")), default=0)
    while time.time() < newest + 1:
        time.sleep(0.05)


def changed_settings(before: dict, now: dict, keys) -> list[str]:
    """The flat `keys` whose values differ between two flat configs, where they change results."""
    return [k for k in keys if before.get(k) != now.get(k) and not k.startswith(NOT_RESULTS)]


def changes(before: dict, now: dict, keys) -> str:
    """changed_settings, as a refusal names them: `key (old → new), …`."""
    return ", ".join(f"{k} ({before.get(k)!r} → {now.get(k)!r})" for k in changed_settings(before, now, keys))


def refuse_other_finished(run_dir: Path, config: dict) -> None:
    """A finished run is skipped as this one only if it was made with this one's settings: a
    folder copied or moved in, or a grid whose names now mean other values, is refused in one
    line and left as it is. Keys only one side has (added or removed since) are not compared."""
    saved_file = run_dir / ".hydra" / "config.yaml"
    if not saved_file.is_file():
        return
    try:
        before = flatten(plain(OmegaConf.load(saved_file)))
    except Exception:  # unreadable, or interpolations only its job resolved: lstm-aggregate judges it
        return
    now = flatten(config)
    before.update({k: v for k, v in LEGACY_DEFAULTS.items() if k not in before})
    differ = changes(before, now, sorted(set(before) & set(now)))
    if differ:
        raise OtherRunFinished(
            f"{run_dir} holds a finished run with other settings: {differ}; it is left as it is "
            "(move it away to train this run there)"
        )


def resume_point(run_dir: Path, config: dict) -> tuple[Path, int] | None:
    """The checkpoint an unfinished run resumes from and its step, or None; refuses one whose
    settings differ from `config` in a key that changes results."""
    path = run_dir / "checkpoints" / RESUME_FILE
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        saved, step = checkpoint["hyper_parameters"]["config"], checkpoint["global_step"]
    except Exception as err:  # written whole and renamed: something else damaged it
        raise ResumeUnreadable(
            f"{path} cannot be read ({type(err).__name__}); set trainer.resume=false to start the run over"
        ) from None
    before, now = flatten(saved), flatten(config)
    before.update({k: v for k, v in LEGACY_DEFAULTS.items() if k not in before})
    differ = changes(before, now, sorted(set(before) | set(now)))
    if differ:
        raise ConfigError(
            f"{run_dir} holds an unfinished run with other settings: {differ}; resume it "
            "with the same settings, or start it over with trainer.resume=false"
        )
    return path, step
