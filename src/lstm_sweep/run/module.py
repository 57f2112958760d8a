"""One run's LightningModule: the language model, its loss per protocol, metrics and optimizer.

Perplexity is exp(token-weighted mean NLL over the whole split), accumulated in float64
from summed losses — never a mean of per-batch perplexities. Sums stay on the device
during an epoch, so the hot loop does not synchronise beyond Lightning's own logging.
"""

from __future__ import annotations

import logging
import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from lstm_sweep.errors import ConfigError, DivergenceError
from lstm_sweep.model.lm import LanguageModel

OPTIMIZERS = ("adam", "sgd")

log = logging.getLogger("lstm_sweep.run.train")


class LitLanguageModel(pl.LightningModule):
    def __init__(self, config: dict, vocab_size: int):
        """`config` is the run's whole resolved config (kept in checkpoints to rebuild the model)."""
        super().__init__()
        self.save_hyperparameters()
        check_optim_config(config["optim"])
        check_schedule_config(config["schedule"])
        self.model = LanguageModel.from_config(config["model"], vocab_size)
        self.optim_config, self.schedule_config = config["optim"], config["schedule"]
        self.protocol = config["data"]["protocol"]
        self._state: dict[str, list] = {}  # stream protocol: the hidden state carried per split
        self._nll_sum: dict[str, Tensor] = {}
        self._count: dict[str, int] = {}
        self.val_history: list[float] = []  # val/ppl per epoch, for best-epoch bookkeeping
        self.tokens_per_sec: list[float] = []
        self.last_logged: dict[str, float] = {}  # latest epoch-level value of each metric

    # ------------------------------------------------------------------ loss

    def _nll(self, batch, split: str) -> tuple[Tensor, int]:
        """Summed NLL of a batch's predictions, and how many there were.

        window: the last position of each window, from a zero state. stream: every
        position, from the state the previous batch of this split left, detached so that
        backpropagation stops at the batch boundary (truncated BPTT).
        """
        inputs, targets = batch
        if self.protocol == "window":
            logits, _ = self.model(inputs, last_only=True)
            return F.cross_entropy(logits, targets, reduction="sum"), targets.numel()
        logits, state = self.model(inputs, self._state.get(split))
        self._state[split] = [tuple(t.detach() for t in layer) for layer in state]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"), targets.numel()

    def _accumulate(self, split: str, nll_sum: Tensor, count: int) -> None:
        self._nll_sum[split] = self._nll_sum[split] + nll_sum.detach().double()
        self._count[split] += count

    def _reset(self, split: str) -> None:
        """A split's epoch starts: no loss summed yet, and a zero hidden state."""
        self._nll_sum[split] = torch.zeros((), dtype=torch.float64, device=self.device)
        self._count[split] = 0
        self._state.pop(split, None)

    def _log_split(self, split: str, loss: bool = True) -> float | None:
        """Log the split's mean NLL (unless `loss` is off) and perplexity; return the perplexity."""
        if self._count[split] == 0:
            return None
        mean_nll = (self._nll_sum[split] / self._count[split]).item()
        ppl = math.exp(mean_nll) if mean_nll < 700 else math.inf
        if loss:
            self._log_epoch_value(f"{split}/loss", mean_nll)
        self._log_epoch_value(f"{split}/ppl", ppl)
        return ppl

    def _log_epoch_value(self, name: str, value: float) -> None:
        if not self.trainer.sanity_checking:
            self.last_logged[name] = value
        self.log(name, value)

    # ------------------------------------------------------------------ training

    def on_fit_start(self) -> None:
        # On CPU, testing the loss every step costs nothing. On an accelerator an `if` on a
        # device tensor waits for the step to finish, so the first non-finite loss is recorded
        # on the device and read at the logging cadence and at epoch end; the step it names
        # is exact either way.
        self.divergence_check_every = (1 if self.device.type == "cpu"
                                       else max(int(self.trainer.log_every_n_steps), 1))
        self._clear_divergence()

    def on_train_epoch_start(self) -> None:
        self._reset("train")
        self._tokens = 0
        self._epoch_start = self._last_batch_end = time.perf_counter()
        self._clear_divergence()
        self._epoch_lr = self.optimizers().param_groups[0]["lr"]  # the scheduler steps before epoch end
        self.log("lr", self._epoch_lr)

    def _clear_divergence(self) -> None:
        self._epoch_first_step = self.global_step
        self._bad_step = torch.full((), -1.0, dtype=torch.float64, device=self.device)  # none yet
        self._bad_loss = torch.zeros((), dtype=torch.float64, device=self.device)

    def _watch_divergence(self, loss: Tensor | None, batch_idx: int, force: bool = False) -> None:
        """Stop the run at a NaN/inf training loss, naming the first step that had one."""
        if loss is not None and self.divergence_check_every == 1:  # CPU: read it now, no bookkeeping
            if not torch.isfinite(loss.detach()):
                self._diverged(loss.item(), self.global_step)
            return
        if loss is not None:
            fresh = ~torch.isfinite(loss.detach()) & (self._bad_step < 0)
            self._bad_step = torch.where(fresh, float(self.global_step), self._bad_step)
            self._bad_loss = torch.where(fresh, loss.detach().double(), self._bad_loss)
        if not (force or (batch_idx + 1) % self.divergence_check_every == 0):
            return
        if self._bad_step >= 0:
            self._diverged(self._bad_loss.item(), int(self._bad_step.item()))

    def _diverged(self, loss: float, step: int) -> None:
        raise DivergenceError(f"training loss became {loss} at step {step} "
                              f"(epoch {self.current_epoch}, batch {step - self._epoch_first_step}); "
                              f"the run stops")

    def training_step(self, batch, batch_idx: int) -> Tensor:
        nll_sum, count = self._nll(batch, "train")
        loss = nll_sum / count
        self._watch_divergence(loss, batch_idx)
        self._accumulate("train", nll_sum, count)
        self._tokens += batch[0].numel()
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self._watch_divergence(None, -1, force=True)
        self._log_split("train", loss=False)  # train/loss is logged per step
        seconds = self._last_batch_end - self._epoch_start  # excludes the validation pass
        if seconds > 0:
            self.tokens_per_sec.append(self._tokens / seconds)
            self._log_epoch_value("perf/train_tokens_per_sec", self.tokens_per_sec[-1])
        log.info("%s", self._epoch_summary())

    def best_val_epoch(self) -> int | None:
        """The epoch with the lowest val/ppl (validation runs after every epoch)."""
        return min(range(len(self.val_history)), key=self.val_history.__getitem__) if self.val_history else None

    def _epoch_summary(self) -> str:
        """One line per epoch for the run's log: a long run without a progress bar still shows progress."""
        epoch, epochs = self.current_epoch, self.trainer.max_epochs
        of = f" ({epoch + 1}/{epochs})" if epochs and epochs > 0 else ""  # -1: until early stopping
        parts = [f"epoch {epoch}{of} in {time.perf_counter() - self._epoch_start:.0f} s:"]
        if "train/ppl" in self.last_logged:
            parts.append(f"train ppl {self.last_logged['train/ppl']:.2f},")
        if self.val_history:
            best = self.best_val_epoch()
            parts.append(f"val ppl {self.val_history[-1]:.2f} (best {self.val_history[best]:.2f} "
                         f"after epoch {best}),")
        parts.append(f"lr {self._epoch_lr:.4g}")
        if self.tokens_per_sec:
            parts[-1] += f", {self.tokens_per_sec[-1]:,.0f} tokens/s"
        return " ".join(parts)

    # ------------------------------------------------------------------ evaluation

    def on_validation_epoch_start(self) -> None:
        # Lightning validates before on_train_epoch_end: a diverged training loss is named first.
        self._watch_divergence(None, -1, force=True)
        self._reset("val")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._accumulate("val", *self._nll(batch, "val"))

    def on_validation_epoch_end(self) -> None:
        if self._count["val"] and not torch.isfinite(self._nll_sum["val"]):
            raise DivergenceError(f"validation loss became {self._nll_sum['val'].item()} after epoch "
                                  f"{self.current_epoch} (step {self.global_step}); the run stops")
        ppl = self._log_split("val")
        if ppl is not None and not self.trainer.sanity_checking:
            self.val_history.append(ppl)

    def on_test_epoch_start(self) -> None:
        self._reset("test")

    def test_step(self, batch, batch_idx: int) -> None:
        self._accumulate("test", *self._nll(batch, "test"))

    def on_test_epoch_end(self) -> None:
        self._log_split("test")
        oracle = getattr(self.trainer.datamodule, "oracle_ppl", None)
        if oracle is not None:
            self._log_epoch_value("data/oracle_ppl", oracle)

    # ------------------------------------------------------------------ optimizer

    def configure_optimizers(self):
        o = self.optim_config
        if o["name"] == "adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=o["lr"], betas=tuple(o["betas"]),
                                         eps=o["eps"], weight_decay=o["weight_decay"])
        else:
            optimizer = torch.optim.SGD(self.parameters(), lr=o["lr"], momentum=o["momentum"],
                                        weight_decay=o["weight_decay"])
        s = self.schedule_config
        if s["name"] == "plateau":  # lr × factor whenever val/ppl fails to beat its best
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=s["factor"], patience=0, threshold=0.0)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "monitor": "val/ppl", "interval": "epoch"}}
        if s["name"] == "exponential":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, DecayAfter(s["start_epoch"], s["factor"]))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        return optimizer


class DecayAfter:
    """Epochs 1 … start_epoch at the initial lr, then × factor each epoch (Zaremba et al.)."""

    def __init__(self, start_epoch: int, factor: float):
        self.start_epoch, self.factor = start_epoch, factor

    def __call__(self, epoch: int) -> float:  # epoch: 0-based, as LambdaLR counts
        return self.factor ** max(0, epoch + 1 - self.start_epoch)


SCHEDULES = ("none", "plateau", "exponential")


def check_schedule_config(s: dict) -> None:
    if s["name"] not in SCHEDULES:
        raise ConfigError(f"schedule.name={s['name']!r} is not one of {', '.join(SCHEDULES)}")
    if not isinstance(s["factor"], (int, float)) or not 0 < s["factor"] <= 1:
        raise ConfigError(f"schedule.factor={s['factor']!r} must be in (0, 1]")
    if not isinstance(s["start_epoch"], int) or s["start_epoch"] < 0:
        raise ConfigError(f"schedule.start_epoch={s['start_epoch']!r} must be an integer >= 0")


def check_optim_config(o: dict) -> None:
    if o["name"] not in OPTIMIZERS:
        raise ConfigError(f"optim.name={o['name']!r} is not one of {', '.join(OPTIMIZERS)}")
    for key, lowest in (("lr", None), ("weight_decay", 0.0), ("momentum", 0.0)):
        value = o.get(key, 0.0)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        if not ok or (value <= 0 if lowest is None else value < lowest):
            bound = "> 0" if lowest is None else f">= {lowest:g}"
            raise ConfigError(f"optim.{key}={value!r} must be a finite number {bound}")
