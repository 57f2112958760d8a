"""What a run leaves for people and the aggregator: its TensorBoard scalars, layout and
HPARAMS row, and metrics.json's record.

Scalar tags fall in three groups, `test/`, `train/` and `val/` (and `wall_time_sec`):
TensorBoard opens the first two groups of its SCALARS and TIME SERIES pages in alphabetical
order, so no one-point group (the oracle floor, throughput) or Lightning's `epoch` counter
comes before the curves. The CUSTOM SCALARS page opens on the comparison itself."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from pytorch_lightning.loggers import TensorBoardLogger

from lstm_sweep.run.module import SplitResult


class RunLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger, with one event file per attempt. Lightning closes the
    writer after fitting, and the test's scalars would open a second file; TensorBoard reads
    a folder's files in name order, which need not be the order they were made in, and a
    resumed attempt's purge of the points after its checkpoint must come before all of its
    own points. `close` ends the file once the run has logged everything."""

    @property
    def log_dir(self) -> str:
        """The folder as given: Lightning's expands `$VARIABLE` and `~` in it, and a run folder
        named after a value such as `$HOME` would then log into another folder."""
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        # Lightning adds its epoch counter to every logged dict; the step is the x axis, and
        # an epoch's end is where its val/ppl point is.
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    def write_layout(self, step: int) -> None:
        """The CUSTOM SCALARS page: what runs are compared by, each chart every run's line.
        Every attempt writes it (at its first step, never behind its own points); TensorBoard
        merges the copies."""
        from torch.utils.tensorboard.summary import custom_scalars

        layout = {"compare runs": {title: ["Multiline", [f"^{tag}$"]] for tag, title in COMPARED.items()}}
        self.experiment._get_file_writer().add_summary(custom_scalars(layout), step)

    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self.experiment.flush()
        if status == "success":
            self.save()

    def close(self) -> None:
        if self._experiment is not None:
            self.experiment.close()


COMPARED = {
    "val/ppl": "validation perplexity",
    "train/ppl": "training perplexity",
    "train/loss": "training loss (per step)",
    "val/loss": "validation loss",
}


@dataclass(frozen=True)
class RunSummary:
    """A run's final numbers, as its module and callbacks measured them."""

    train: SplitResult | None  # the last epoch's
    val: SplitResult | None  # the last epoch's
    test: SplitResult | None  # of the tested checkpoint (trainer.test_checkpoint)
    val_ppl_per_epoch: list[float]
    best_val_epoch: int | None
    steps: int
    tokens_per_sec: float | None  # mean over epochs
    wall_time_sec: float
    oracle_ppl: float | None  # the built-in corpus's exact test perplexity

    def metrics(self) -> dict:
        """metrics.json: the same names as the logged scalars."""
        best = self.best_val_epoch
        train, val, test = self.train, self.val, self.test
        metrics = {
            # train/loss is logged per step; the epoch's token-weighted mean is log(train/ppl).
            "train/loss": math.log(train.ppl) if train else None,
            "train/ppl": train and train.ppl,
            "val/loss": val and val.loss,
            "val/ppl": val and val.ppl,
            "test/loss": test and test.loss,
            "test/ppl": test and test.ppl,
            "best_val/ppl": self.val_ppl_per_epoch[best] if best is not None else None,
            "best_val/epoch": best,
            "epochs": len(self.val_ppl_per_epoch),
            "steps": self.steps,
            "train/tokens_per_sec": self.tokens_per_sec,
            "wall_time_sec": self.wall_time_sec,
        }
        if self.oracle_ppl is not None:
            metrics["test/oracle_ppl"] = self.oracle_ppl
        return metrics


def write_hparams(logger: RunLogger, config: dict, trial: str = "") -> None:
    """One HPARAMS row per run: the flattened config, whose metric columns are the scalars
    already logged (read by their tags, not a second copy). Written at the end, so a row
    means a finished run.

    torch's hparams() also makes an experiment summary, of this run alone: TensorBoard takes
    the first one it finds for the whole folder, so every key would read as a constant and
    the first five alphabetically would be ticked. The run writes its session only; a sweep
    writes the experiment (sweep/board.py), and without one TensorBoard derives it from the
    sessions, the keys that differ first. `trial` names the row (naming.trial_label); empty,
    the run's folder does.
    """
    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard.summary import hparams

    _, session_start, session_end = hparams(hparam_values(config), {})
    start = session_start.value[0].metadata.plugin_data  # torch's hparams() takes no group name
    data = plugin_data_pb2.HParamsPluginData.FromString(start.content)
    data.session_start_info.group_name = trial
    start.content = data.SerializeToString()
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start)
    writer.add_summary(session_end)
    logger.experiment.flush()


def hparam_values(config: dict) -> dict:
    """The config as HPARAMS columns: flat keys, and values TensorBoard can hold."""
    settings = {k: v for k, v in config.items() if k != "reference"}  # published numbers are no setting
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(settings).items()}


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
