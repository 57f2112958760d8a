"""lstm-sweep's grid sweeper, here because Hydra instantiates plugins from `hydra_plugins` only
(its keys are config.py's; its work is lstm_sweep.sweep.grid's)."""

import sys
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader

from lstm_sweep.errors import ConfigError, LstmSweepError
from lstm_sweep.sweep.grid import composer, prepare_sweep, preview, record_board, search_arguments, sweep_jobs
from lstm_sweep.sweep.search import parse_search


class GridSweeper(BasicSweeper):
    """Hydra's grid sweep; run folders named by the swept keys, the sweep recorded in sweep.json
    and its HPARAMS columns in .hparams/.
    With `dry_run`, it lists the runs it would start, resume and skip, and writes nothing."""

    def __init__(
        self,
        max_batch_size,
        params=None,
        dry_run: bool = False,
        task: bool = False,
        only=None,
        search=None,
        rounds: bool = False,
    ):
        super().__init__(max_batch_size, params)
        self.dry_run, self.task, self.search_node, self.rounds = dry_run, task, search, rounds
        self.only = None if only is None else [str(name) for name in only]
        self.launching: list | None = None  # the jobs to launch, once named

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
        assert self.config is not None, "Hydra calls setup() before sweep()"
        try:
            search = parse_search(self.search_node)
            if search and self.rounds:
                raise ConfigError(
                    "lstm-sweep --until-decided adds seeds to fixed settings, and a search's trials differ in "
                    "theirs: sweep the search without --until-decided"
                )
            launched, plan = prepare_sweep(self.config, self.params, arguments, not self.dry_run, self.only, search)
            # the grid as BasicSweeper would launch it, a search's trials its outermost factor
            grid = [*search_arguments(search), *self._parse_config(), *launched]
            jobs = sweep_jobs(self.config, self.config_loader, grid, plan.swept, self.only, search)
            sweep_dir = Path(self.config.hydra.sweep.dir)
            compose = composer(self.config, self.config_loader)
            if self.dry_run:
                for line in search.lines() if search else []:
                    print(line, flush=True)
                if preview(jobs, sweep_dir, compose):
                    raise SystemExit(1)  # a run would fail on its values: said, one line each
                return []
            record_board(sweep_dir, jobs, plan.swept, compose)
        except LstmSweepError as err:  # a refusal before anything runs: one line, not Hydra's traceback
            print(f"lstm-train: error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        self.launching = [job for job, _ in jobs]  # each with the folder that is its own
        return super().sweep(launched)

    def split_arguments(self, overrides, max_batch_size):  # type: ignore[override]
        """The jobs sweep_jobs named (the grid's, or `only`'s), in BasicSweeper's batches."""
        if self.launching is None:  # one task of a submitted sweep: its own overrides
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        size = max_batch_size or len(self.launching) or 1
        return [self.launching[i : i + size] for i in range(0, len(self.launching), size)]

    def validate_batch_is_legal(self, batch) -> None:
        """Hydra's check, composing each job (sweep.compose, as the HPARAMS columns did)."""
        compose = composer(self.config, self.config_loader)
        for overrides in batch:
            compose.compose(overrides)
