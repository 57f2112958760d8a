"""One run's LightningModule: the language model, its loss under the run's protocol,
perplexity per split, and the optimizer.

Perplexity is exp(token-weighted mean NLL over the whole split), accumulated in float64
from summed losses — never a mean of per-batch perplexities. Sums stay on the device
during an epoch, so the hot loop does not synchronise beyond Lightning's own logging.
Watching for divergence, throughput and the per-epoch log line are callbacks (callbacks.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import Tensor

from lstm_sweep.data.protocols import protocol_for
from lstm_sweep.model.lm import LanguageModel
from lstm_sweep.run.optim import configure_optimizers


@dataclass(frozen=True)
class SplitResult:
    loss: float  # token-weighted mean NLL over the split so far
    ppl: float  # exp(loss); inf where that overflows
    tokens: int  # predictions counted


class LitLanguageModel(pl.LightningModule):
    def __init__(self, config: dict, vocab_size: int):
        """`config` is the run's whole resolved config (kept in checkpoints to rebuild the model)."""
        super().__init__()
        self.save_hyperparameters()
        self.model = LanguageModel.from_config(config["model"], vocab_size)
        self.protocol = protocol_for(config["data"])
        self.state: dict[str, list | None] = {}  # the hidden state each split carries (stream)
        self.sums: dict[str, tuple[Tensor, int]] = {}  # summed NLL (float64) and predictions per split

    def start(self, split: str) -> None:
        """A split's epoch starts: nothing summed yet, and a zero hidden state."""
        self.sums[split] = (torch.zeros((), dtype=torch.float64, device=self.device), 0)
        self.state[split] = None

    def step(self, batch, split: str) -> Tensor:
        """The batch's mean NLL, added to the split's sums."""
        nll, count, self.state[split] = self.protocol.nll(self.model, batch, self.state[split])
        total, seen = self.sums[split]
        self.sums[split] = (total + nll.detach().double(), seen + count)
        return nll / count

    def result(self, split: str) -> SplitResult | None:
        """The split's loss and perplexity over this epoch's batches so far."""
        if split not in self.sums or not self.sums[split][1]:
            return None
        total, seen = self.sums[split]
        loss = (total / seen).item()
        return SplitResult(loss, math.exp(loss) if loss < 700 else math.inf, seen)

    def _log_result(self, split: str, loss: bool = True) -> None:
        if (result := self.result(split)) is not None:
            if loss:
                self.log(f"{split}/loss", result.loss)
            self.log(f"{split}/ppl", result.ppl)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        loss = self.step(batch, "train")
        # Lightning writes a step's metrics every log_every_n_steps only (the condition is its
        # own); logging on the other steps too cost ~3% of a report2021 step, to no effect.
        if self.trainer._logger_connector.should_update_logs:
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "test")

    def on_train_epoch_start(self) -> None:
        self.start("train")

    def on_validation_epoch_start(self) -> None:
        self.start("val")

    def on_test_epoch_start(self) -> None:
        self.start("test")

    def on_train_epoch_end(self) -> None:
        self._log_result("train", loss=False)  # train/loss is logged per step

    def on_validation_epoch_end(self) -> None:
        self._log_result("val")

    def on_test_epoch_end(self) -> None:
        self._log_result("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A checkpoint taken mid-epoch carries the epoch's training sums and stream state on.
        checkpoint["train_split"] = {"sums": self.sums.get("train"), "state": self.state.get("train")}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("train_split")
        if saved is not None and saved["sums"] is not None:
            self.sums["train"], self.state["train"] = saved["sums"], saved["state"]

    def configure_optimizers(self):
        config = self.hparams["config"]
        return configure_optimizers(self.parameters(), config["optim"], config["schedule"])
