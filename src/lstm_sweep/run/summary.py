"""What a finished run leaves for people and the aggregator: metrics.json's record and
TensorBoard's HPARAMS row."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pytorch_lightning.loggers import TensorBoardLogger

from lstm_sweep.run.module import SplitResult


class RunLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger, with one event file per attempt. Lightning closes the
    writer after fitting, and the test's scalars would open a second file; TensorBoard reads
    a folder's files in name order, which need not be the order they were made in, and a
    resumed attempt's purge of the points after its checkpoint must come before all of its
    own points. `close` ends the file once the run has logged everything."""

    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self.experiment.flush()
        if status == "success":
            self.save()

    def close(self) -> None:
        if self._experiment is not None:
            self.experiment.close()


HPARAM_METRICS = ("test/ppl", "test/loss", "val/ppl", "val/loss", "train/ppl", "data/oracle_ppl")


@dataclass(frozen=True)
class RunSummary:
    """A run's final numbers, as its module and callbacks measured them."""
    train: SplitResult | None        # the last epoch's
    val: SplitResult | None          # the last epoch's
    test: SplitResult | None         # of the tested checkpoint (trainer.test_checkpoint)
    val_ppl_per_epoch: list[float]
    best_val_epoch: int | None
    steps: int
    tokens_per_sec: float | None     # mean over epochs
    wall_time_sec: float
    oracle_ppl: float | None         # the built-in corpus's exact test perplexity

    def metrics(self) -> dict:
        """metrics.json: the same names as the logged scalars."""
        best = self.best_val_epoch
        train, val, test = self.train, self.val, self.test
        metrics = {
            # train/loss is logged per step; the epoch's token-weighted mean is log(train/ppl).
            "train/loss": math.log(train.ppl) if train else None, "train/ppl": train and train.ppl,
            "val/loss": val and val.loss, "val/ppl": val and val.ppl,
            "test/loss": test and test.loss, "test/ppl": test and test.ppl,
            "best_val/ppl": self.val_ppl_per_epoch[best] if best is not None else None,
            "best_val/epoch": best,
            "epochs": len(self.val_ppl_per_epoch),
            "steps": self.steps,
            "perf/train_tokens_per_sec": self.tokens_per_sec,
            "wall_time_sec": self.wall_time_sec,
        }
        if self.oracle_ppl is not None:
            metrics["data/oracle_ppl"] = self.oracle_ppl
        return metrics


def write_hparams(logger: RunLogger, config: dict, metrics: dict) -> None:
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
