"""lstm-sweep's grid sweeper, here because Hydra instantiates plugins from `hydra_plugins` only
(its keys are config.py's; its work is lstm_sweep.sweep.grid's)."""

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader

from lstm_sweep.sweep.grid import job_config, prepare_sweep, preview, record_board, sweep_jobs


class GridSweeper(BasicSweeper):
    """Hydra's grid sweep; run folders named by the swept keys, the sweep recorded in sweep.json
    and its HPARAMS columns in .hparams/.
    With `dry_run`, it lists the runs it would start, resume and skip, and writes nothing."""

    def __init__(self, max_batch_size, params=None, dry_run: bool = False, task: bool = False, only=None):
        super().__init__(max_batch_size, params)
        self.dry_run, self.task = dry_run, task
        self.only = None if only is None else [str(name) for name in only]
        self.launching: list | None = None  # the jobs of `only`'s runs, once composed

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
        launched, plan = prepare_sweep(self.config, self.params, arguments, not self.dry_run, self.only)
        jobs = [*self._parse_config(), *launched]  # the grid as BasicSweeper will launch it
        if self.dry_run:
            return preview(self.config, self.config_loader, jobs, self.only)
        record_board(self.config, self.config_loader, jobs, plan.swept, self.only)
        if self.only is not None:  # BasicSweeper launches its batches of the grid: these runs', then
            self.launching = [job for job, _, _ in sweep_jobs(self.config, self.config_loader, jobs, self.only)]
        return super().sweep(launched)

    def split_arguments(self, overrides, max_batch_size):  # type: ignore[override]
        """BasicSweeper's batches of the grid's jobs, of `only`'s runs where they are named."""
        batches = BasicSweeper.split_arguments(overrides, max_batch_size)
        if self.launching is None:
            return batches
        size = max_batch_size or len(self.launching) or 1
        return [self.launching[i : i + size] for i in range(0, len(self.launching), size)]

    def validate_batch_is_legal(self, batch) -> None:
        """Hydra's check, composing each job, with the compositions record_board made."""
        for overrides in batch:
            job_config(self.config, self.config_loader, overrides)
