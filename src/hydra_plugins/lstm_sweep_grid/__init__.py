"""lstm-sweep's grid sweeper, here because Hydra instantiates plugins from `hydra_plugins` only
(its config is `hydra/sweeper=grid`, registered by lstm_sweep.conf; its work is lstm_sweep.sweep.grid)."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from lstm_sweep.sweep.grid import prepare_sweep


class GridSweeper(BasicSweeper):
    """Hydra's grid sweep; run folders named by the swept keys, and the sweep recorded in sweep.json."""

    def sweep(self, arguments: list[str]):
        return super().sweep(prepare_sweep(self.config, self.params, arguments))
