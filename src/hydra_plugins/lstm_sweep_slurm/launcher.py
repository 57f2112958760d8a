"""`hydra/launcher=slurm`: a sweep submitted to SLURM as one job array plus a report job, and
left alone — the command returns once they are queued (lstm_sweep.sweep.slurm). Here because
Hydra instantiates launchers from `hydra_plugins` only; its keys are config.py's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext
from omegaconf import DictConfig

log = logging.getLogger("lstm_sweep.sweep")


class SlurmLauncher(Launcher):
    def __init__(self, **settings) -> None:
        from omegaconf import OmegaConf

        from lstm_sweep.sweep.slurm import SlurmSettings

        plain: dict[str, Any] = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in settings.items()
            if k != "_target_"
        }
        self.settings = SlurmSettings(**plain)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from omegaconf import OmegaConf

        from lstm_sweep.sweep.grid import composer
        from lstm_sweep.sweep.slurm import submit

        assert self.config is not None and self.hydra_context is not None, "Hydra calls setup() before launch()"
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        tasks = []
        compose = composer(self.config, self.hydra_context.config_loader)
        for overrides in job_overrides:
            composed = compose.compose(overrides)
            tasks.append(
                {
                    "run": str(OmegaConf.select(composed, "hydra.sweep.subdir")),
                    # the run's folder goes as `run` (a name made unique is among the overrides too)
                    "overrides": [o for o in overrides if not o.startswith("hydra.sweep.subdir=")],
                    "sweep_dir": str(sweep_dir),
                }
            )
        submission = submit(sweep_dir, tasks, self.settings)
        log.info(
            "submitted %d runs as SLURM job array %s%s; `lstm-sweep --status %s` shows their state",
            len(tasks),
            submission["array"],
            f", and the report as job {submission['report']} after them" if submission["report"] else "",
            sweep_dir,
        )
        return [JobReturn(overrides=list(o), status=JobStatus.COMPLETED, _return_value=None) for o in job_overrides]
