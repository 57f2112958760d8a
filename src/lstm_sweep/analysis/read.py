"""A sweep folder → tidy pandas tables, from what the runs logged and nothing else.

Every run folder (one holding `.hydra/config.yaml`) becomes one row: the sweep's factors
(the override keys whose values differ between runs, in grid order), its status (and
error), and its final metrics read from its TensorBoard event files with TensorBoard's own
reader. A second table holds the per-epoch validation curve of every run.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lstm_sweep.errors import ConfigError

SWEEP_FILE = "sweep.json"
FINAL_TAGS = ("train/ppl", "val/loss", "val/ppl", "test/loss", "test/ppl", "data/oracle_ppl",
              "perf/wall_time_sec")
METRIC_COLUMNS = ["train/loss", "train/ppl", "val/loss", "val/ppl", "test/loss", "test/ppl",
                  "best_val/ppl", "best_val/epoch", "epochs", "wall_time_sec", "tokens_per_sec",
                  "data/oracle_ppl"]


@dataclass
class Sweep:
    folder: Path
    runs: pd.DataFrame              # one row per run
    epochs: pd.DataFrame            # one row per run and epoch: val/loss, val/ppl, train/ppl
    factors: list[str]              # swept keys other than the seed, in grid order
    info: dict = field(default_factory=dict)  # sweep.json: how the sweep was started

    @property
    def finished(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "finished"]


def run_folders(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")
                  if "attempts" not in p.relative_to(sweep_dir).parts)


def read_overrides(run_dir: Path) -> dict[str, object]:
    """The run's task overrides as {key: value}, with values typed as Hydra parsed them; a
    list or mapping stays the text it was written as, so that it can label and group runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")) or []
    parsed = OverridesParser.create().parse_overrides(lines)
    return {o.key_or_group: (o.get_value_element_as_str() if isinstance(o.value(), (list, dict)) else o.value())
            for o in parsed}


def read_scalars(run_dir: Path) -> dict[str, list]:
    """{tag: [ScalarEvent, …]} from the run's event files (TensorBoard's reader, every point)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # it narrates every file it opens
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def read_status(run_dir: Path) -> tuple[str, str]:
    path = run_dir / "status.json"
    if path.exists():
        status = json.loads(path.read_text())
        state = status.get("status", "unfinished")
        return ("unfinished" if state == "running" else state), status.get("error", "")
    return ("finished", "") if (run_dir / "metrics.json").exists() else ("unfinished", "")


def read_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """One run's row and its per-epoch rows."""
    status, error = read_status(run_dir)
    row = {"run": run_dir.name, "status": status, "error": error, "path": str(run_dir)}
    row.update({c: math.nan for c in METRIC_COLUMNS})
    try:
        scalars = read_scalars(run_dir)
    except Exception as err:  # a damaged event file is this run's problem, not the sweep's
        row.update(status="unreadable", error=f"{run_dir}: event files unreadable: {err}")
        return row, []
    last = {tag: scalars[tag][-1].value for tag in FINAL_TAGS if scalars.get(tag)}
    val = [e.value for e in scalars.get("val/ppl", [])]
    row.update({k: last[k] for k in ("val/loss", "val/ppl", "test/loss", "test/ppl", "data/oracle_ppl") if k in last})
    if "train/ppl" in last:
        row["train/ppl"], row["train/loss"] = last["train/ppl"], math.log(last["train/ppl"])
    if val:
        best = min(range(len(val)), key=val.__getitem__)
        row.update({"best_val/ppl": val[best], "best_val/epoch": best, "epochs": len(val)})
    if "perf/wall_time_sec" in last:
        row["wall_time_sec"] = last["perf/wall_time_sec"]
    speeds = [e.value for e in scalars.get("perf/train_tokens_per_sec", [])]
    if speeds:
        row["tokens_per_sec"] = sum(speeds) / len(speeds)
    epochs = []
    for epoch in range(len(val)):
        entry = {"run": run_dir.name, "epoch": epoch}
        for tag in ("val/loss", "val/ppl", "train/ppl"):
            series = scalars.get(tag, [])
            entry[tag] = series[epoch].value if epoch < len(series) else math.nan
        epochs.append(entry)
    return row, epochs


def read_sweep(sweep_dir: str | Path) -> Sweep:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep folder {sweep_dir} does not exist")
    folders = run_folders(sweep_dir)
    if not folders:
        raise ConfigError(f"no runs in {sweep_dir}: no folder there holds a .hydra/config.yaml")
    info = json.loads((sweep_dir / SWEEP_FILE).read_text()) if (sweep_dir / SWEEP_FILE).exists() else {}

    rows, epochs, overrides = [], [], []
    for folder in folders:
        row, run_epochs = read_run(folder)
        try:
            overrides.append(read_overrides(folder))
        except Exception as err:
            overrides.append({})
            row.update(status="unreadable", error=f"{folder / '.hydra' / 'overrides.yaml'}: {err}")
        rows.append(row)
        epochs.extend(run_epochs)

    # Factors: the override keys whose values differ between runs, in the grid's order.
    order = list(info.get("swept", []))
    for o in overrides:
        order += [k for k in o if k not in order]
    keys = [k for k in order if len({repr(o.get(k)) for o in overrides}) > 1 or k in info.get("swept", [])]
    for row, o in zip(rows, overrides):
        for key in keys:
            row[key] = o.get(key)
    columns = ["run", *keys, "status", *METRIC_COLUMNS, "error", "path"]
    runs = pd.DataFrame(rows)[columns]
    epoch_table = pd.DataFrame(epochs, columns=["run", "epoch", "val/loss", "val/ppl", "train/ppl"])
    factors = [k for k in keys if k != "seed"]
    sort_keys = [*factors, *(["seed"] if "seed" in keys else [])]
    if sort_keys:
        runs = runs.sort_values(sort_keys, kind="stable", key=lambda c: c.map(_sortable)).reset_index(drop=True)
    return Sweep(sweep_dir, runs, epoch_table, factors, info)


def _sortable(value):
    """Numbers before strings, numbers by value: seed 10 after seed 9."""
    if isinstance(value, bool) or value is None:
        return (1, str(value))
    if isinstance(value, (int, float)):
        return (0, float(value))
    return (1, str(value))
