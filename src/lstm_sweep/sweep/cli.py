"""`lstm-sweep`: the main job — a Hydra multirun of an experiment's grid, then its report.

    lstm-sweep                                     # the report grid on the built-in corpus
    lstm-sweep +experiment=report2021 data.root=…/penn_small
    lstm-sweep model.hidden_size=64,128 seed='range(3)'
    lstm-sweep --dir multirun/report2021/2026-…    # complete an interrupted sweep

The grid is `hydra.sweeper.params` of the composed config (conf/config.yaml, or an
experiment's): a command-line value replaces a key's list, a new comma list adds a
factor. Every run gets a folder named by the values it was given (`cell=one,layers=2,
seed=3`), so `tensorboard --logdir <sweep folder>` reads well. A run that fails is recorded
and the others go on; the report is written either way; the exit status is 1 if any run
failed. Running again on an existing sweep folder skips the finished runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shlex
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser

from lstm_sweep.errors import ConfigError, LstmSweepError

log = logging.getLogger("lstm_sweep.sweep")

SWEEP_FILE = "sweep.json"  # what started the sweep: command, overrides, versions, machine


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lstm-sweep", description=__doc__.split("\n\n")[0],
        epilog="Any other argument is a Hydra override, as for lstm-train.")
    parser.add_argument("--dir", type=Path, help="the sweep folder (default: multirun/<name>/<date>_<time>_<pid>); "
                                                 "an existing one is completed, its finished runs skipped")
    parser.add_argument("--out", type=Path, help="the report folder (default: reports/<name>)")
    parser.add_argument("--no-report", action="store_true", help="run the sweep only")
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("--")]
    if unknown:
        parser.error(f"unrecognized option {unknown[0]} (Hydra overrides look like key=value)")
    args.overrides = overrides
    return args


def sweep_plan(overrides: list[str]) -> tuple[str, list[str], list[str]]:
    """(name, swept keys in grid order, keys given one value) for these overrides."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [o for o in parsed if not o.is_sweep_override()]
    with initialize_config_module("lstm_sweep.conf", version_base="1.3"):
        cfg = compose("config", overrides=[o.input_line for o in fixed], return_hydra_config=True)
    grid = {str(k): str(v) for k, v in (cfg.hydra.sweeper.params or {}).items()}
    parser = OverridesParser.create()
    swept = {key: parser.parse_override(f"{key}={values}").is_sweep_override() for key, values in grid.items()}
    for o in parsed:  # the command line wins over the config's grid, and adds to it
        swept[o.key_or_group] = o.is_sweep_override()
    experiment = next((o.value() for o in fixed if o.key_or_group == "experiment"), None)
    return (str(experiment) if experiment else "default",
            [k for k, v in swept.items() if v], [k for k, v in swept.items() if not v])


def default_sweep_dir(name: str) -> Path:
    # The pid makes two sweeps started in the same second land in different folders.
    return Path("multirun") / name / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}_{os.getpid()}"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def record_start(sweep_dir: Path, argv: list[str], name: str, swept: list[str]) -> None:
    import pytorch_lightning
    import torch

    starts = []
    previous = sweep_dir / SWEEP_FILE
    if previous.exists():
        starts = json.loads(previous.read_text()).get("starts", [])
    starts.append({
        "command": shlex.join(["lstm-sweep", *argv]),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()})",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "pytorch_lightning": pytorch_lightning.__version__},
    })
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SWEEP_FILE).write_text(json.dumps({"name": name, "swept": swept, "starts": starts}, indent=2) + "\n")


def run_sweep(sweep_dir: Path, overrides: list[str], fixed_keys: list[str]) -> None:
    """Hydra's multirun of lstm-train's task in this process, on `sweep_dir`."""
    from lstm_sweep.run.train import main as train_main

    exclude = sorted({*fixed_keys, "data.root", "data.cache_dir", "experiment"} - {k for k in fixed_keys if k.startswith("hydra")})
    argv = ["lstm-train", "--multirun", *overrides, f"hydra.sweep.dir={quote(str(sweep_dir))}",
            f"hydra.job.config.override_dirname.exclude_keys=[{','.join(exclude)}]"]
    saved = sys.argv
    sys.argv = argv
    try:
        train_main()
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        name, swept, fixed = sweep_plan(args.overrides)
    except LstmSweepError as err:
        log.error("%s", err)
        return 2
    except Exception as err:  # Hydra's own: a bad override or an unknown key
        log.error("%s", str(err).strip().splitlines()[0])
        return 2
    sweep_dir = args.dir or default_sweep_dir(name)
    record_start(sweep_dir, argv, name, swept)
    log.info("sweep %s over %s -> %s", name, ", ".join(swept) or "one run", sweep_dir)
    run_sweep(sweep_dir, args.overrides, fixed)

    try:
        if args.no_report:
            from lstm_sweep.analysis.read import read_sweep
            runs = read_sweep(sweep_dir).runs
        else:
            from lstm_sweep.analysis.report import write_report
            sweep, out = write_report(sweep_dir, args.out)
            runs = sweep.runs
            log.info("report: %s", out / "REPORT.md")
    except ConfigError as err:
        log.error("%s", err)
        return 1
    failed = runs[runs["status"] != "finished"]
    for _, run in failed.iterrows():
        log.error("run %s %s: %s", run["run"], run["status"], run["error"])
    log.info("%d runs finished, %d did not (%s)", len(runs) - len(failed), len(failed), sweep_dir)
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
