"""What a run watches and reports besides its loss, as Lightning callbacks.

- DivergenceWatch stops the run at a loss that is not finite, naming the step;
- Throughput measures training tokens per second of each epoch;
- EpochLog logs the lr each epoch trains with, keeps the validation perplexity of every
  epoch and writes one line per epoch to the run's log.

Lightning calls these callbacks' `on_train_epoch_end` before the module's, so they read a
split's numbers with `LitLanguageModel.result`, which is complete once the batches are.
"""

from __future__ import annotations

import logging
import math
import time
from typing import cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from lstm_sweep.errors import DivergenceError
from lstm_sweep.run.module import LitLanguageModel, SplitResult

log = logging.getLogger("lstm_sweep.run.train")


def split_result(pl_module: pl.LightningModule, split: str) -> SplitResult | None:
    """The run module's numbers of a split so far (these callbacks serve LitLanguageModel)."""
    return cast(LitLanguageModel, pl_module).result(split)


class DivergenceWatch(Callback):
    """Stop the run at the first NaN/inf training loss, naming its step, or at a split whose
    mean loss is not finite or whose perplexity overflows, naming the epoch.

    On CPU, testing the loss every step costs nothing. On an accelerator an `if` on a device
    tensor waits for the step to finish, so the first non-finite loss (and its step and
    batch) is recorded on the device and read every log_every_n_steps and at epoch end; the
    step it names is exact either way.
    """

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        every = trainer.log_every_n_steps  # type: ignore[attr-defined]  # set by Trainer.__init__, undeclared
        self.check_every = 1 if pl_module.device.type == "cpu" else max(int(every), 1)
        self.bad = torch.full((3,), -1.0, dtype=torch.float64, device=pl_module.device)  # step, batch, loss

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        step, batch = trainer.global_step, trainer.fit_loop.epoch_loop.batch_idx
        if self.check_every == 1:  # CPU: read it now, no bookkeeping
            if not torch.isfinite(loss.detach()):
                self._diverged(trainer, step, batch, loss.item())
            return
        fresh = ~torch.isfinite(loss.detach()) & (self.bad[0] < 0)
        now = torch.stack(
            [
                torch.tensor(float(step), device=self.bad.device),
                torch.tensor(float(batch), device=self.bad.device),
                loss.detach().double(),
            ]
        )
        self.bad = torch.where(fresh, now, self.bad)
        if (batch + 1) % self.check_every == 0:
            self._read(trainer)

    def _read(self, trainer: pl.Trainer) -> None:
        step, batch, loss = self.bad.tolist()
        if step >= 0:
            self._diverged(trainer, int(step), int(batch), loss)

    def _diverged(self, trainer: pl.Trainer, step: int, batch: int, loss: float) -> None:
        raise DivergenceError(
            f"training loss became {loss} at step {step} (epoch {trainer.current_epoch}, batch {batch}); the run stops"
        )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read(trainer)  # Lightning validates before the training epoch ends: name that first

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read(trainer)
        self._check(trainer, pl_module, "train", "training")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, "val", "validation")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, "test", "test")

    @staticmethod
    def _check(trainer: pl.Trainer, pl_module: pl.LightningModule, split: str, name: str) -> None:
        """A split's mean loss must be finite and its perplexity representable (a huge but
        finite loss overflows exp)."""
        result = split_result(pl_module, split)
        if result is None:
            return
        if not math.isfinite(result.loss):
            raise DivergenceError(
                f"{name} loss became {result.loss} after epoch {trainer.current_epoch} "
                f"(step {trainer.global_step}); the run stops"
            )
        if not math.isfinite(result.ppl):
            raise DivergenceError(
                f"{name} perplexity overflows: mean loss {result.loss:.4g} after epoch "
                f"{trainer.current_epoch} (step {trainer.global_step}); the run stops"
            )


class Throughput(Callback):
    """Training tokens per second of each epoch, the validation pass excluded
    (`train/tokens_per_sec`)."""

    def __init__(self):
        self.per_epoch: list[float] = []
        self.tokens = 0
        self.start = None  # when the epoch's training began, in this process's clock
        self.carried = 0.0  # seconds the epoch had trained before a resume

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.tokens, self.carried = 0, 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.start is None or batch_idx == 0:  # an epoch, or a resumed attempt, starts
            self.start = self.last_batch_end = time.perf_counter() - self.carried

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        self.tokens += batch[0].numel()
        self.last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.start is None:  # an epoch without a batch
            return
        seconds = self.last_batch_end - self.start
        if seconds > 0:
            self.per_epoch.append(self.tokens / seconds)
            pl_module.log("train/tokens_per_sec", self.per_epoch[-1])

    def state_dict(self) -> dict:
        seconds = self.last_batch_end - self.start if self.start is not None else 0.0
        return {"per_epoch": self.per_epoch, "tokens": self.tokens, "seconds": seconds}

    def load_state_dict(self, state: dict) -> None:
        self.per_epoch, self.tokens = list(state["per_epoch"]), state["tokens"]
        self.carried = state.get("seconds", 0.0)


class EpochLog(Callback):
    """The lr each epoch trains with (`train/lr`), every epoch's validation perplexity, and one line
    per epoch in the run's log: a run without a progress bar still shows its progress."""

    def __init__(self, throughput: Throughput):
        self.throughput = throughput
        self.val_ppl: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]  # the scheduler steps before epoch end
        pl_module.log("train/lr", self.lr)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.fit_loop.restarted_mid_epoch:  # a resumed epoch does not start again
            self.start = time.perf_counter()
            pl_module.log("train/lr", self.lr)

    def state_dict(self) -> dict:
        return {"val_ppl": self.val_ppl, "lr": getattr(self, "lr", None)}

    def load_state_dict(self, state: dict) -> None:
        self.val_ppl, self.lr = list(state["val_ppl"]), state["lr"]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        val = split_result(pl_module, "val")
        if val is not None and not trainer.sanity_checking:
            self.val_ppl.append(val.ppl)

    def best_epoch(self) -> int | None:
        """The epoch with the lowest val/ppl (validation runs after every epoch)."""
        return min(range(len(self.val_ppl)), key=self.val_ppl.__getitem__) if self.val_ppl else None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch, epochs = trainer.current_epoch, trainer.max_epochs
        parts = [f"epoch {epoch} ({epoch + 1}/{epochs}) in {time.perf_counter() - self.start:.0f} s:"]
        if (train := split_result(pl_module, "train")) is not None:
            parts.append(f"train ppl {train.ppl:.2f},")
        if (best := self.best_epoch()) is not None:
            parts.append(f"val ppl {self.val_ppl[-1]:.2f} (best {self.val_ppl[best]:.2f} after epoch {best}),")
        parts.append(f"lr {self.lr:.4g}")
        if self.throughput.per_epoch:
            parts[-1] += f", {self.throughput.per_epoch[-1]:,.0f} tokens/s"
        log.info("%s", " ".join(parts))
