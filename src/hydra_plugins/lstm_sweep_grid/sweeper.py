"""lstm-sweep's grid sweeper, here because Hydra instantiates plugins from `hydra_plugins` only
(its keys are config.py's; its work is lstm_sweep.sweep.grid's)."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader

from lstm_sweep.sweep.grid import job_config, prepare_sweep, preview, record_board


class GridSweeper(BasicSweeper):
    """Hydra's grid sweep; run folders named by the swept keys, the sweep recorded in sweep.json
    and its HPARAMS columns in .hparams/.
    With `dry_run`, it lists the runs it would start, resume and skip, and writes nothing."""

    def __init__(self, max_batch_size, params=None, dry_run: bool = False, task: bool = False):
        super().__init__(max_batch_size, params)
        self.dry_run, self.task = dry_run, task

    @property
    def config_loader(self) -> ConfigLoader:
        assert self.hydra_context is not None, "Hydra calls setup() before sweep()"
        return self.hydra_context.config_loader

    def sweep(self, arguments: list[str]):
        if self.task:  # one run of a submitted sweep, into the folder the submission named
            from hydra.core.override_parser.overrides_parser import OverridesParser

            assert self.launcher is not None, "Hydra calls setup() before sweep()"
            parsed = OverridesParser.create(config_loader=self.config_loader).parse_overrides(arguments)
            return [self.launcher.launch(self.split_arguments(parsed, None)[0], initial_job_idx=0)]
        launched, plan = prepare_sweep(self.config, self.params, arguments, record=not self.dry_run)
        jobs = [*self._parse_config(), *launched]  # the grid as BasicSweeper will launch it
        if self.dry_run:
            return preview(self.config, self.config_loader, jobs)
        record_board(self.config, self.config_loader, jobs, plan.swept)
        return super().sweep(launched)

    def validate_batch_is_legal(self, batch) -> None:
        """Hydra's check, composing each job, with the compositions record_board made."""
        for overrides in batch:
            job_config(self.config, self.config_loader, overrides)
