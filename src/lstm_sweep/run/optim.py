"""The optimizer and learning-rate schedule a run's config names.

The optimizer is any torch.optim class, built by Hydra from `optim._target_` with the
group's other keys as its arguments; schedules are a small registry by `schedule.name`,
because each needs its own Lightning wiring (a monitored metric, an interval).
"""

from __future__ import annotations

import inspect

import torch
from hydra.utils import get_class, instantiate


class DecayAfter:
    """Epochs 1 … start_epoch at the initial lr, then × factor each epoch (Zaremba et al.)."""

    def __init__(self, start_epoch: int, factor: float):
        self.start_epoch, self.factor = start_epoch, factor

    def __call__(self, epoch: int) -> float:  # epoch: 0-based, as LambdaLR counts
        return self.factor ** max(0, epoch + 1 - self.start_epoch)


def _plateau(optimizer, s: dict) -> dict:
    # lr × factor whenever val/ppl fails to beat its best
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=s["factor"], patience=0, threshold=0.0
    )
    return {"scheduler": scheduler, "monitor": "val/ppl", "interval": "epoch"}


def _exponential(optimizer, s: dict) -> dict:
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, DecayAfter(s["start_epoch"], s["factor"]))
    return {"scheduler": scheduler, "interval": "epoch"}


SCHEDULES = {"none": None, "plateau": _plateau, "exponential": _exponential}


def without_unknown_fused(optim: dict) -> dict:
    """`optim.fused` means "fused where torch has it": dropped for a class without the argument."""
    if "fused" not in optim:
        return optim
    accepts = inspect.signature(get_class(optim["_target_"])).parameters
    return optim if "fused" in accepts else {k: v for k, v in optim.items() if k != "fused"}


def configure_optimizers(params, optim: dict, schedule: dict):
    """What LightningModule.configure_optimizers returns for these `optim` and `schedule` configs."""
    optimizer = instantiate(without_unknown_fused(optim), params=params, _convert_="all")
    build = SCHEDULES[schedule["name"]]
    return optimizer if build is None else {"optimizer": optimizer, "lr_scheduler": build(optimizer, schedule)}
