"""One run's LightningModule: the language model, its loss per protocol, metrics and optimizer.

Perplexity is exp(token-weighted mean NLL over the whole split), accumulated in float64
from summed losses — never a mean of per-batch perplexities. Sums stay on the device
during an epoch, so the hot loop does not synchronise beyond Lightning's own logging.
"""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from lstm_sweep.errors import ConfigError, DivergenceError
from lstm_sweep.model import LanguageModel

OPTIMIZERS = ("adam", "sgd")


class LitLanguageModel(pl.LightningModule):
    def __init__(self, config: dict, vocab_size: int):
        """`config` is the run's whole resolved config (kept in checkpoints to rebuild the model)."""
        super().__init__()
        self.save_hyperparameters()
        check_optim_config(config["optim"])
        m = config["model"]
        self.model = LanguageModel(
            vocab_size, m["embedding_size"], m["hidden_size"], m["num_layers"], cell=m["cell"],
            dropout=m["dropout"], init=m["init"], tie_weights=m["tie_weights"],
            decoder_bias=m["decoder_bias"], decoder_bias_init=m["decoder_bias_init"], impl=m["impl"])
        self.optim_config = config["optim"]
        self._nll_sum: dict[str, Tensor] = {}
        self._count: dict[str, int] = {}
        self.val_history: list[float] = []  # val/ppl per epoch, for best-epoch bookkeeping
        self.tokens_per_sec: list[float] = []
        self.last_logged: dict[str, float] = {}  # latest epoch-level value of each metric

    # ------------------------------------------------------------------ loss

    def _window_nll(self, batch) -> tuple[Tensor, int]:
        """Summed NLL of the last position of each window, and how many were predicted."""
        inputs, targets = batch
        logits, _ = self.model(inputs, last_only=True)
        return F.cross_entropy(logits, targets, reduction="sum"), targets.numel()

    def _accumulate(self, split: str, nll_sum: Tensor, count: int) -> None:
        self._nll_sum[split] = self._nll_sum[split] + nll_sum.detach().double()
        self._count[split] += count

    def _reset(self, split: str) -> None:
        self._nll_sum[split] = torch.zeros((), dtype=torch.float64, device=self.device)
        self._count[split] = 0

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

    def on_train_epoch_start(self) -> None:
        self._reset("train")
        self._tokens = 0
        self._epoch_start = self._last_batch_end = time.perf_counter()
        self.log("lr", self.optimizers().param_groups[0]["lr"])

    def training_step(self, batch, batch_idx: int) -> Tensor:
        nll_sum, count = self._window_nll(batch)
        loss = nll_sum / count
        if not torch.isfinite(loss):
            raise DivergenceError(f"training loss became {loss.item()} at step {self.global_step} "
                                  f"(epoch {self.current_epoch}, batch {batch_idx}); the run stops")
        self._accumulate("train", nll_sum, count)
        self._tokens += batch[0].numel()
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self._log_split("train", loss=False)  # train/loss is logged per step
        seconds = self._last_batch_end - self._epoch_start  # excludes the validation pass
        if seconds > 0:
            self.tokens_per_sec.append(self._tokens / seconds)
            self._log_epoch_value("perf/train_tokens_per_sec", self.tokens_per_sec[-1])

    # ------------------------------------------------------------------ evaluation

    def on_validation_epoch_start(self) -> None:
        self._reset("val")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._accumulate("val", *self._window_nll(batch))

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
        self._accumulate("test", *self._window_nll(batch))

    def on_test_epoch_end(self) -> None:
        self._log_split("test")
        oracle = getattr(self.trainer.datamodule, "oracle_ppl", None)
        if oracle is not None:
            self._log_epoch_value("data/oracle_ppl", oracle)

    # ------------------------------------------------------------------ optimizer

    def configure_optimizers(self):
        o = self.optim_config
        if o["name"] == "adam":
            return torch.optim.Adam(self.parameters(), lr=o["lr"], betas=tuple(o["betas"]),
                                    eps=o["eps"], weight_decay=o["weight_decay"])
        return torch.optim.SGD(self.parameters(), lr=o["lr"], momentum=o["momentum"],
                               weight_decay=o["weight_decay"])


def check_optim_config(o: dict) -> None:
    if o["name"] not in OPTIMIZERS:
        raise ConfigError(f"optim.name={o['name']!r} is not one of {', '.join(OPTIMIZERS)}")
    for key, lowest in (("lr", None), ("weight_decay", 0.0), ("momentum", 0.0)):
        value = o.get(key, 0.0)
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        if not ok or (value <= 0 if lowest is None else value < lowest):
            bound = "> 0" if lowest is None else f">= {lowest:g}"
            raise ConfigError(f"optim.{key}={value!r} must be a finite number {bound}")
