"""`hydra/sweeper=grid`'s keys, in Hydra's ConfigStore as Hydra scans its plugins. (No postponed
annotations here: Hydra's scan runs this module outside sys.modules, where a dataclass
cannot resolve them.)"""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from lstm_sweep.fields import setting

# The grid of `lstm-sweep` (and `lstm-train -m`): the course report's comparison.
COURSE_GRID = {"model.cell": "one,two", "model.num_layers": "1,2", "seed": "range(10)"}


@dataclass
class GridSweeperConfig:
    """lstm-train -m's sweeper: Hydra's grid, with run folders named by the swept keys."""

    _target_: str = "hydra_plugins.lstm_sweep_grid.sweeper.GridSweeper"
    max_batch_size: Optional[int] = setting(None, "Hydra's: jobs launched per batch (null: all at once)")
    params: Optional[dict[str, str]] = setting(
        doc="the grid: a command-line comma list or range() replaces a key's list, one value fixes it, a new key "
        "adds a factor",
        factory=lambda: dict(COURSE_GRID),
    )
    dry_run: bool = setting(False, "list the runs it would start, resume and skip; start none (lstm-sweep --dry-run)")
    only: Optional[list[str]] = setting(
        None,
        "launch only these runs of the grid, by folder name (lstm-sweep --until-decided's rounds); null: every run",
    )
    search: dict[str, Any] = setting(
        doc="a random search crossed with the grid: trials, seed, method (random, sobol, lhs) and space, "
        "as optim.lr: loguniform(1e-4, 1e-1) (docs: guides/search.md); empty: the grid alone",
        factory=dict,
    )
    rounds: bool = setting(
        False, "set by lstm-sweep --until-decided, whose rounds add seeds to fixed settings: a search is refused"
    )
    task: bool = setting(False, "one task of a submitted sweep (cli/slurm_task.py): launch its one run")


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConfig, provider="lstm-sweep")
