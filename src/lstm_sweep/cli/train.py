"""`lstm-train`: one run (or, with `-m`, a sweep of runs) as Hydra composes it.

Hydra reads the command line and composes the config (conf/config.yaml on the run's schema,
hydra_plugins/lstm_sweep_configs); the run itself is lstm_sweep.run.train's. Overrides and
the output folder are checked before Hydra starts, so their faults take one line, not
Hydra's traceback. `python -m lstm_sweep.cli.train` is the same command: lstm-sweep starts
its sweep that way, as a child process that ends with it (lstm_sweep.sweep.child).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lstm_sweep.cli.overrides import check_overrides
from lstm_sweep.errors import ConfigError, OtherRunFinished, RunFinished, log_user_error
from lstm_sweep.files import cannot_write
from lstm_sweep.run.logfile import NOT_IN_RUN_LOG
from lstm_sweep.sweep.child import stop_with_parent

log = logging.getLogger("lstm_sweep.run.train")


@hydra.main(version_base="1.3", config_path=None, config_name="config")
def hydra_main(cfg: DictConfig) -> float:
    """The run; returns its `objective` metric (NaN if it did not finish) for Hydra's sweepers."""
    from lstm_sweep.run.train import record_run, run_in_sweep  # Lightning: only a run needs it, not a dry run

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return objective(cfg, run_in_sweep(cfg, run_dir))
    try:
        return objective(cfg, record_run(cfg, run_dir))
    except Exception as err:
        # to stderr and the run's train.log, unless the run is someone else's: a finished one
        theirs = isinstance(err, (RunFinished, OtherRunFinished))  # the folder's log is the finished run's
        sys.exit(log_user_error(err, log, extra=NOT_IN_RUN_LOG if theirs else None))


def objective(cfg: DictConfig, metrics: dict | None) -> float:
    value = (metrics or {}).get(cfg.objective)
    return float(value) if value is not None else math.nan


def unwritable_output(overrides: list[str], multirun: bool) -> str | None:
    """Why the run's (or sweep's) folder cannot be written, if it cannot: Hydra creates it
    before any code of ours runs, and its refusal is a traceback."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    default = "multirun" if multirun else "outputs"
    folder = next((a.split("=", 1)[1] for a in reversed(overrides) if a.startswith(key + "=")), default)
    problem = cannot_write(folder.split("${")[0].strip("'\"") or ".")  # the literal part
    return f"{key}={folder}: {problem}" if problem else None


def main() -> None:
    """lstm-train. `+experiment=NAME`, the older spelling, still means experiment=NAME."""
    stop_with_parent()  # only in lstm-sweep's child: it ends with lstm-sweep
    sys.argv = [arg[1:] if arg.startswith("+experiment=") else arg for arg in sys.argv]
    args = get_args_parser().parse_args(sys.argv[1:])  # Hydra's own command line
    try:
        check_overrides(args.overrides)
        writes = not (args.help or args.hydra_help or args.cfg or args.info or args.shell_completion)
        problem = unwritable_output(args.overrides, args.multirun) if writes else None
    except ConfigError as err:
        problem = str(err)
    if problem:
        print(f"lstm-train: error: {problem}", file=sys.stderr)
        sys.exit(1)
    try:
        hydra_main()
    except KeyboardInterrupt:  # Ctrl-C while a launcher waits for its jobs: each recorded itself
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main()
