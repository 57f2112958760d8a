"""A sweep folder → tidy pandas tables, from what the runs logged and nothing else.

Every run folder (one holding any of a run's records) becomes one row: the sweep's
factors (the override keys whose values differ between runs, in grid order), its status
(and error), and its final metrics read from its TensorBoard event files with
TensorBoard's own reader. A second table holds the per-epoch validation curve of every run.

Each run is verified as it is read: a run whose saved config is missing or unreadable,
whose status.json or metrics.json is not strict JSON, or whose event files do not hold what
its metrics.json says it finished with (the file cut short, say) is `damaged`, with the
reasons in its error column, and is kept out of every mean like a failed run.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_sweep.errors import ConfigError, one_line
from lstm_sweep.files import read_yaml
from lstm_sweep.naming import NOT_RESULTS, run_name
from lstm_sweep.records import METRICS_FILE, STATUS_FILE, SWEEP_FILE, read_object, read_sweep_record, recorded_status
from lstm_sweep.sweep.board import BOARD_FOLDER
from lstm_sweep.sweep.search import TRIAL_KEY, parse_search
from lstm_sweep.sweep.slurm import ended_without_outcome, submitted_runs

log = logging.getLogger("lstm_sweep.analysis.read")

DAMAGED = "damaged"
RECORD_FILES = {STATUS_FILE, METRICS_FILE}  # with .hydra/ and event files: what makes a run folder
EVENT_FILE_PREFIX = "events.out.tfevents."
VERIFIED_TAGS = ("train/ppl", "val/loss", "val/ppl", "test/loss", "test/ppl")  # in metrics.json and the events
FLOAT32_RTOL = 1e-6  # TensorBoard stores scalars as float32, metrics.json as float64
HPARAMS_RECORDS = ("_hparams_/session_start_info", "_hparams_/session_end_info")
FINAL_TAGS = ("train/ppl", "val/loss", "val/ppl", "test/loss", "test/ppl", "test/oracle_ppl", "wall_time_sec")
# Tags as runs made before they were renamed log them (TensorBoard opens its first two tag
# groups, alphabetically: a one-point `data/` group and Lightning's `epoch` once came first).
RENAMED_TAGS = {
    "data/oracle_ppl": "test/oracle_ppl",
    "perf/train_tokens_per_sec": "train/tokens_per_sec",
    "perf/wall_time_sec": "wall_time_sec",
    "lr": "train/lr",
}
METRIC_COLUMNS = [
    "train/loss",
    "train/ppl",
    "val/loss",
    "val/ppl",
    "test/loss",
    "test/ppl",
    "best_val/ppl",
    "best_val/epoch",
    "epochs",
    "wall_time_sec",
    "tokens_per_sec",
    "test/oracle_ppl",
]


@dataclass
class Sweep:
    """A sweep folder as tables: what lstm-aggregate reports from, and lstm_sweep.api hands out."""

    folder: Path
    runs: pd.DataFrame  # one row a run: run, the factors, seed, status, the final metrics, error, path
    epochs: pd.DataFrame  # one row a run and epoch: val/loss, val/ppl, train/ppl
    factors: list[str]  # swept keys other than the seed (and a search's trial and keys), in grid order
    info: dict = field(default_factory=dict)  # sweep.json: how the sweep was started

    @property
    def search(self) -> dict | None:
        """The random search the sweep crossed its grid with (sweep/search.py's record), if any."""
        return search_record(self.info)

    @property
    def searched(self) -> list[str]:
        """The keys a search drew, each run's value a column of `runs`."""
        return list((self.search or {}).get("space", {}))

    @property
    def finished(self) -> pd.DataFrame:
        """The runs every mean is taken over."""
        return self.runs[self.runs["status"] == "finished"]

    @property
    def damaged(self) -> pd.DataFrame:
        """The runs whose files are missing or disagree; `error` says how."""
        return self.runs[self.runs["status"] == DAMAGED]

    def scalars(self, tag: str) -> pd.DataFrame:
        """Every logged point of a TensorBoard tag (`train/loss`, `val/ppl`, `train/lr` …), one
        row a run and step: run, its factors and seed, step, value, wall_time."""
        keys = [k for k in [*self.factors, "seed"] if k in self.runs]
        rows = []
        for _, run in self.runs.iterrows():
            try:
                points = read_scalars(Path(run["path"])).get(tag, [])
            except Exception:  # a damaged run's events: it is listed as such in `runs`
                points = []
            rows += [
                {
                    "run": run["run"],
                    **{k: run[k] for k in keys},
                    "step": p.step,
                    "value": p.value,
                    "wall_time": p.wall_time,
                }
                for p in points
            ]
        return pd.DataFrame(rows, columns=["run", *keys, "step", "value", "wall_time"])


def search_record(info: dict) -> dict | None:
    """The latest start's search (a search extended later has more trials)."""
    records = [
        s["search"] for s in info.get("starts") or [] if isinstance(s, dict) and isinstance(s.get("search"), dict)
    ]
    return records[-1] if records else None


def run_folders(sweep_dir: Path) -> list[Path]:
    """The folders that hold any of a run's records — .hydra/, status.json, metrics.json or an
    event file — so that a run missing one of them is still found. attempts/ holds a run's
    earlier attempts, and .hparams/ the sweep's TensorBoard columns, not runs of their own."""
    found = []
    for folder, subfolders, files in os.walk(sweep_dir):
        if ".hydra" in subfolders or RECORD_FILES & set(files) or any(f.startswith(EVENT_FILE_PREFIX) for f in files):
            found.append(Path(folder))
            subfolders.clear()  # a run's subfolders (checkpoints/, .hydra/) are its own
        else:
            subfolders[:] = [s for s in subfolders if s not in ("attempts", BOARD_FOLDER)]
    return sorted(found)


def read_info(sweep_dir: Path) -> dict:
    """sweep.json, how the sweep was started; one that cannot be read is warned about and the
    report goes on without it."""
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        return {}
    try:
        return read_sweep_record(sweep_dir)
    except (OSError, ValueError) as err:
        log.warning("%s cannot be read (%s): the report goes on without the sweep's start record", path, one_line(err))
        return {}


def read_overrides(run_dir: Path) -> dict[str, object]:
    """The run's task overrides as {key: value}, with values typed as Hydra parsed them; a
    list or mapping stays the text it was written as, so that it can label and group runs."""
    lines = read_yaml(run_dir / ".hydra" / "overrides.yaml")
    if not isinstance(lines, list):  # Hydra writes a list, [] when there are none
        raise ValueError("it holds no list of overrides")
    return parse_overrides([str(line) for line in lines])


def parse_overrides(lines: list[str]) -> dict[str, object]:
    return dict(parse_override(line) for line in lines)


@functools.lru_cache(maxsize=65536)
def parse_override(line: str) -> tuple[str, object]:
    """(key, value) of one override; once per line: a sweep's runs share most of theirs, and
    Hydra's parser takes milliseconds a line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    (o,) = OverridesParser.create().parse_overrides([line])
    return o.key_or_group, (o.get_value_element_as_str() if isinstance(o.value(), (list, dict)) else o.value())


def read_scalars(run_dir: Path) -> dict[str, list]:
    """{tag: [ScalarEvent, …]} from the run's event files (TensorBoard's reader, every point)."""
    return read_events(run_dir)[0]


def read_events(run_dir: Path) -> tuple[dict[str, list], set[str]]:
    """The run's scalars (read_scalars) and the HPARAMS records its event files hold."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # It narrates every file it opens, and warns of the points a resumed run purged (as intended).
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {RENAMED_TAGS.get(tag, tag): events.Scalars(tag) for tag in events.Tags()["scalars"]}
    try:
        hparams = set(events.PluginTagToContent("hparams"))
    except KeyError:  # no HPARAMS record at all
        hparams = set()
    return scalars, hparams


STANDARD_SUBDIR = "${run_name:${hydra.job.override_dirname}}"  # conf/config.yaml's hydra.sweep.subdir


def name_damage(run_dir: Path) -> list[str]:
    """A sweep run whose records name another folder than its own: a copy, or a folder moved in
    (its own runs are in the folders their records name). Runs outside a sweep have any name."""
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return []
    try:
        hydra = read_yaml(path)["hydra"]
        if hydra.get("mode") != "MULTIRUN":
            return []
        subdir = hydra["sweep"]["subdir"]
        own = run_name(hydra["job"]["override_dirname"]) if subdir == STANDARD_SUBDIR else str(subdir)
    except Exception as err:
        return [unreadable(".hydra/hydra.yaml", err)]
    if "${" in own or own == run_dir.name:  # a naming of the user's own: nothing to check against
        return []
    return [f"stray: its records are those of run {own!r}, not of this folder (a copy, or a folder moved here)"]


def read_status(run_dir: Path) -> tuple[str, str]:
    path = run_dir / STATUS_FILE
    if path.exists():
        return recorded_status(read_object(path))
    return ("finished", "") if (run_dir / METRICS_FILE).exists() else ("unfinished", "")


def check_config(run_dir: Path) -> None:
    """Raise unless the run's saved config is a readable mapping of settings."""
    config = read_yaml(run_dir / ".hydra" / "config.yaml")
    if not isinstance(config, dict) or not config:
        raise ValueError("it holds no settings")


def unreadable(name: str, err: Exception) -> str:
    """Why the run's file `name` cannot be read, in a few words."""
    return f"{name} is missing" if isinstance(err, FileNotFoundError) else f"{name} cannot be read: {one_line(err)}"


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metrics_damage(run_dir: Path, scalars: dict[str, list]) -> list[str]:
    """Why the run's metrics.json, its claim to have finished, is not borne out by the run's
    event files (nothing: it is). Every epoch's val/ppl and the final scalars must be there."""
    try:
        metrics = read_object(run_dir / METRICS_FILE)
    except (OSError, ValueError) as err:
        return [unreadable("metrics.json", err)]
    reasons = []
    if not finite(metrics.get("test/ppl")):
        reasons.append(f"metrics.json's test/ppl is {metrics.get('test/ppl')!r}, not a finite number")
    points = len(scalars.get("val/ppl", []))
    if points != metrics.get("epochs"):
        reasons.append(f"the event files hold {points} val/ppl points, metrics.json {metrics.get('epochs')!r} epochs")
    for tag in VERIFIED_TAGS:
        saved = metrics.get(tag)
        if not scalars.get(tag):
            if saved is not None:
                reasons.append(f"the event files hold no {tag}")
            continue
        logged = scalars[tag][-1].value
        if not (
            isinstance(saved, (int, float)) and finite(saved) and math.isclose(logged, saved, rel_tol=FLOAT32_RTOL)
        ):
            reasons.append(f"the event files' last {tag} is {logged:.7g}, metrics.json's {saved!r}")
    return reasons


def read_run(run_dir: Path) -> tuple[dict, list[dict], dict | None]:
    """One run's row, its per-epoch rows and its overrides (None when they cannot be read)."""
    damage = []
    # YAML's, Hydra's and TensorBoard's readers raise many kinds of error; any is this run's damage.
    try:
        check_config(run_dir)
    except Exception as err:
        damage.append(unreadable(".hydra/config.yaml", err))
    try:
        overrides = read_overrides(run_dir)
    except Exception as err:
        overrides = None
        damage.append(unreadable(".hydra/overrides.yaml", err))
    try:
        status, error = read_status(run_dir)
    except (OSError, ValueError) as err:
        status, error = "unfinished", ""
        damage.append(unreadable("status.json", err))
    try:
        scalars, hparams = read_events(run_dir)
    except Exception as err:
        scalars, hparams = {}, set()
        damage.append(f"event files cannot be read: {one_line(err)}")
    finished = (run_dir / METRICS_FILE).exists()
    if finished:
        damage += metrics_damage(run_dir, scalars)
        # written last of all (run/summary.py): without them the event files were cut short
        missing = [record for record in HPARAMS_RECORDS if record not in hparams]
        if missing:
            damage.append(f"the event files hold no HPARAMS {' or '.join(missing)}: they were cut short")
        if not (run_dir / STATUS_FILE).exists():
            damage.append("status.json is missing")
    elif status == "finished":
        damage.append("status.json says finished, but metrics.json is missing")
    damage += name_damage(run_dir)
    if damage:
        status, error = DAMAGED, "; ".join(damage + ([error] if error else []))
    row: dict[str, Any] = {"run": run_dir.name, "status": status, "error": error, "path": str(run_dir)}
    row.update(dict.fromkeys(METRIC_COLUMNS, math.nan))
    last = {tag: scalars[tag][-1].value for tag in FINAL_TAGS if scalars.get(tag)}
    val = [e.value for e in scalars.get("val/ppl", [])]
    row.update({k: last[k] for k in ("val/loss", "val/ppl", "test/loss", "test/ppl", "test/oracle_ppl") if k in last})
    if "train/ppl" in last:
        row["train/ppl"], row["train/loss"] = last["train/ppl"], math.log(last["train/ppl"])
    if val:
        best = min(range(len(val)), key=val.__getitem__)
        row.update({"best_val/ppl": val[best], "best_val/epoch": best, "epochs": len(val)})
    if "wall_time_sec" in last:
        row["wall_time_sec"] = last["wall_time_sec"]
    speeds = [e.value for e in scalars.get("train/tokens_per_sec", [])]
    if speeds:
        row["tokens_per_sec"] = sum(speeds) / len(speeds)
    epochs = []
    for epoch in range(len(val)):
        entry = {"run": run_dir.name, "epoch": epoch}
        for tag in ("val/loss", "val/ppl", "train/ppl"):
            series = scalars.get(tag, [])
            entry[tag] = series[epoch].value if epoch < len(series) else math.nan
        epochs.append(entry)
    return row, epochs, overrides


def read_sweep(sweep_dir: str | Path) -> Sweep:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"sweep folder {sweep_dir} does not exist")
    folders = run_folders(sweep_dir)
    if not folders:
        raise ConfigError(
            f"no runs in {sweep_dir}: no folder there holds a run's .hydra/, status.json, metrics.json or event file"
        )
    info = read_info(sweep_dir)

    rows, epochs, overrides = [], [], []
    for folder in folders:
        row, run_epochs, run_overrides = read_run(folder)
        rows.append(row)
        epochs.extend(run_epochs)
        overrides.append(run_overrides)
    for row, run_overrides in zip(rows, overrides):
        if reason := settings_damage(run_overrides, info):
            row["status"], row["error"] = DAMAGED, "; ".join(filter(None, [reason, row["error"]]))
    submissions = submitted_runs(sweep_dir)
    ended = ended_without_outcome([row["run"] for row in rows if row["status"] == "running"], submissions)
    for row in rows:
        if row["run"] in ended:
            row["status"], row["error"] = "interrupted", ended[row["run"]]
    # A run submitted to SLURM whose job never started (cancelled while pending) has no folder.
    found = {folder.name for folder in folders}
    for name, submitted in submissions.items():
        if name not in found:
            rows.append(
                {
                    "run": name,
                    "status": "unfinished",
                    "path": str(sweep_dir / name),
                    "error": f"submitted as SLURM job {submitted['job']}, which never started",
                    **dict.fromkeys(METRIC_COLUMNS, math.nan),
                }
            )
            overrides.append(parse_overrides([o for o in submitted["overrides"] if not o.startswith("hydra.")]))

    # Factors: the override keys whose values differ between runs, in the grid's order. A run
    # whose overrides cannot be read has none: it is damaged, and must not make a factor.
    readable = [o for o in overrides if o is not None]
    order = list(info.get("swept", []))
    for o in readable:
        order += [k for k in o if k not in order]
    # Where the data lives, or how progress showed, may differ between runs (a sweep completed
    # on another machine) without making a factor.
    searched = list((search_record(info) or {}).get("space", {}))
    order += [k for k in searched if k not in order]
    keys = [
        k
        for k in order
        if k in info.get("swept", [])
        or k in searched  # a searched key is a column even where every trial drew one value
        or (len({repr(o.get(k)) for o in readable}) > 1 and not k.lstrip("+~").startswith(NOT_RESULTS))
    ]
    for row, run_overrides in zip(rows, overrides):
        for key in keys:
            row[key] = (run_overrides or {}).get(key)
    columns = ["run", *keys, "status", *METRIC_COLUMNS, "error", "path"]
    runs = pd.DataFrame(rows)[columns]
    epoch_table = pd.DataFrame(epochs, columns=["run", "epoch", "val/loss", "val/ppl", "train/ppl"])
    drawn = {TRIAL_KEY, *searched} if searched else set()  # a search's: no factors, their own analysis
    factors = [k for k in keys if k != "seed" and k.lstrip("+~") not in drawn]
    sort_keys = [
        *factors,
        *([TRIAL_KEY] if TRIAL_KEY in drawn and TRIAL_KEY in keys else []),
        *(["seed"] if "seed" in keys else []),
    ]
    if sort_keys:
        runs = runs.sort_values(sort_keys, kind="stable", key=lambda c: c.map(_sortable)).reset_index(drop=True)
    return Sweep(sweep_dir, runs, epoch_table, factors, info)


def settings_damage(run_overrides: dict | None, info: dict) -> str:
    """Why a run is not of its sweep ("" when it is): an override of a key the sweep fixed
    (sweep.json) holds another value, as in a run made by hand into the folder or a run of
    another sweep of the same name copied in. Where the data lives or how progress showed
    may differ (NOT_RESULTS), as may Hydra's own keys."""
    starts = info.get("starts") or [{}]
    fixed = starts[0].get("fixed") if isinstance(starts[0], dict) else None
    if not run_overrides or not isinstance(fixed, dict):
        return ""
    differ = trial_damage(run_overrides, search_record(info))
    for key, text in fixed.items():
        if key.startswith("hydra") or key.lstrip("+~").startswith(NOT_RESULTS) or key not in run_overrides:
            continue
        try:
            expected = parse_override(f"{key}={text}")[1]
        except Exception:  # a value sweep.json cannot give back: nothing to compare
            continue
        if run_overrides[key] != expected and not (_is_nan(run_overrides[key]) and _is_nan(expected)):
            differ.append(f"{key}={run_overrides[key]!r} (the sweep's {expected!r})")
    return f"its settings are not its sweep's: {', '.join(differ)}" if differ else ""


def trial_damage(run_overrides: dict, search: dict | None) -> list[str]:
    """A search's run whose drawn values are not its trial's (a run of another search copied in)."""
    if not search or TRIAL_KEY not in run_overrides:
        return []
    try:
        trials = trial_values(search)
        expected = trials[int(run_overrides[TRIAL_KEY])]
    except (ConfigError, IndexError, TypeError, ValueError):
        return [f"{TRIAL_KEY}={run_overrides[TRIAL_KEY]!r} is not a trial of the sweep's search"]
    return [
        f"{key}={run_overrides.get(key)!r} (trial {run_overrides[TRIAL_KEY]}'s {value!r})"
        for key, value in expected.items()
        if run_overrides.get(key) != value
    ]


@functools.lru_cache(maxsize=8)
def _trial_values(record: str) -> list[dict]:
    return parse_search(json.loads(record)).points()  # type: ignore[union-attr]


def trial_values(search: dict) -> list[dict]:
    """Each trial's values of a search record, computed once per sweep."""
    return _trial_values(json.dumps(search))  # key order kept: the space's order is its dimensions'


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _sortable(value):
    """Numbers before strings, numbers by value: seed 10 after seed 9."""
    if isinstance(value, bool) or value is None:
        return (1, str(value))
    if isinstance(value, (int, float)):
        return (0, float(value))
    return (1, str(value))
