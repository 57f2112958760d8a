"""What the sweeper behind `lstm-train -m` and `lstm-sweep` adds to Hydra's grid.

The sweeper (hydra_plugins/lstm_sweep_grid, where Hydra looks for plugins) is Hydra's
BasicSweeper — the grid is `hydra.sweeper.params`, where a command-line comma list or
range() replaces a key's list, a single value fixes it and a new key adds a factor — and
before launching it
- names every run folder by the swept values alone (`cell=one,layers=2,seed=3`): the keys
  given one value are left out of each job's `override_dirname`;
- records the sweep in `sweep.json`: its name, the swept keys in grid order (the report's
  factor order) and, per start, the command, date, machine and library versions;
- with `hydra.sweeper.search` (sweep/search.py), crosses the grid with a random search's
  trials: `trial=range(trials)` is the outermost factor, and each run gets its trial's values.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import platform
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from lstm_sweep.errors import ConfigError
from lstm_sweep.fields import plain
from lstm_sweep.files import write_json
from lstm_sweep.naming import NOT_RESULTS, too_long, unique_name
from lstm_sweep.records import (
    SWEEP_FILE,
    is_finished,
    read_status,
    read_sweep_record,
    recorded_status,
    sweep_starts,
)
from lstm_sweep.sweep.compose import GridComposer, quote, task_config
from lstm_sweep.sweep.search import TRIAL_KEY, Search

log = logging.getLogger("lstm_sweep.sweep")

NEVER_IN_NAMES = ("data.root", "data.cache_dir", "experiment")  # where, not what, a run is
ONLY_KEY = "hydra.sweeper.only"  # the grid's runs a start launches (lstm-sweep --until-decided's rounds)
ROUNDS_KEY = "hydra.sweeper.rounds"  # set by lstm-sweep --until-decided: a sweep of its rounds
COMMAND_VARIABLE = "LSTM_SWEEP_COMMAND"  # set by lstm-sweep: the command to record instead of ours


@dataclass(frozen=True)
class GridPlan:
    swept: list[str]  # keys given several values, in grid order
    fixed: dict[str, str]  # keys given one value, and that value
    runs: int  # how many runs the grid holds
    search: Search | None = None  # the random search crossed with the grid, if any
    levels: dict[str, list[str]] | None = None  # each swept key's values, in grid order


def search_arguments(search: Search | None) -> list[str]:
    """The grid's factor for a search's trials; first, so every variant gets trial 0 before
    any gets trial 1, and a search cut short holds the same trials for each."""
    return [f"{TRIAL_KEY}=range({search.trials})"] if search else []


def plan_grid(params: dict | None, arguments: list[str], search: Search | None = None) -> GridPlan:
    """Which keys `hydra.sweeper.params` and the command line's overrides sweep, and which they
    fix; a search's trials are a swept key, and its searched keys neither."""
    parser = OverridesParser.create()
    overrides = {o.key_or_group: o for o in parser.parse_overrides(search_arguments(search))}
    given = {str(k): parser.parse_override(f"{k}={v}") for k, v in (params or {}).items()}
    for override in [*given.values(), *parser.parse_overrides(arguments)]:  # the command line wins, and adds keys
        if search and override.key_or_group.lstrip("+~") in (TRIAL_KEY, *search.keys):
            raise ConfigError(
                f"{override.key_or_group} is set on the grid and by hydra.sweeper.search: "
                + ("the search numbers its trials" if override.key_or_group.lstrip("+~") == TRIAL_KEY else "pick one")
            )
        overrides[override.key_or_group] = override
    swept = [o for o in overrides.values() if o.is_sweep_override()]
    return GridPlan(
        [o.key_or_group for o in swept],
        {k: o.get_value_element_as_str() for k, o in overrides.items() if not o.is_sweep_override()},
        math.prod(len(list(o.sweep_string_iterator())) for o in swept),
        search,
        {o.key_or_group: list(o.sweep_string_iterator()) for o in swept},
    )


def previous_starts(sweep_dir: Path) -> list[dict]:
    """The starts sweep.json records; a damaged record is kept aside as sweep.json.damaged
    and the sweep goes on without it."""
    record = sweep_dir / SWEEP_FILE
    if not record.exists():
        return []
    try:
        return list(read_sweep_record(sweep_dir)["starts"])
    except (ValueError, KeyError, TypeError) as err:
        record.replace(record.with_name(SWEEP_FILE + ".damaged"))
        log.warning(
            "%s cannot be read (%s): kept as %s.damaged; its starts are not compared",
            record,
            type(err).__name__,
            SWEEP_FILE,
        )
        return []


def refuse_other_settings(sweep_dir: Path, plan: GridPlan, starts: list[dict]) -> None:
    """A sweep's runs share its fixed settings, and a search's trial its values: completing a
    sweep folder with others would skip its finished runs and report their numbers under
    settings they never had."""
    for start in starts:
        earlier = start.get("search")
        if (earlier is None) != (plan.search is None):
            raise ConfigError(
                f"{sweep_dir} was swept {'with' if earlier else 'without'} hydra.sweeper.search; complete it "
                "the same way, or sweep into another folder"
            )
        change = plan.search.same_trials(earlier) if plan.search and earlier else ""
        if change:
            raise ConfigError(
                f"{sweep_dir} was searched with another hydra.sweeper.search, {change}: its trials would "
                "get other values; complete it with the same search, or sweep into another folder"
            )
    first = starts[0].get("fixed") if starts else None
    if first is None:  # a new sweep, or one recorded before fixed settings were
        return
    keys = sorted(set(first) | set(plan.fixed))
    # Hydra's own keys (the launcher, its folders) say how runs are made, never what they compute.
    changed = [k for k in keys if first.get(k) != plan.fixed.get(k) and not k.startswith((*NOT_RESULTS, "hydra"))]
    if changed:
        details = ", ".join(f"{k} ({first.get(k, 'not set')} → {plan.fixed.get(k, 'not set')})" for k in changed)
        raise ConfigError(
            f"{sweep_dir} was swept with other fixed settings: {details}; complete it with "
            "the same ones, or sweep into another folder"
        )


def prepare_sweep(
    config,
    params: dict | None,
    arguments: list[str],
    record: bool = True,
    only: list[str] | None = None,
    search: Search | None = None,
) -> tuple[list[str], GridPlan]:
    """Record the sweep's start (unless `record` is false: a dry run, which writes nothing but
    is refused as the sweep would be); return the overrides to launch, which name run
    folders by the swept keys alone, and the grid (of `only`'s runs, where they are named)."""
    plan = plan_grid(params, arguments, search)
    if only is not None:
        plan = GridPlan(plan.swept, plan.fixed, len(only), search, plan.levels)
    sweep_dir = Path(config.hydra.sweep.dir)
    name = config.hydra.runtime.choices.get("experiment") or "default"
    if record:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(sweep_dir / ".sweep.lock")):  # two sweeps starting on one folder
            starts = previous_starts(sweep_dir)
            refuse_other_settings(sweep_dir, plan, starts)
            record_start(sweep_dir, name, plan, starts)
    else:
        refuse_other_settings(sweep_dir, plan, sweep_starts(sweep_dir))
    log.info("sweep %s over %s -> %s", name, ", ".join(plan.swept) or "one run", sweep_dir)
    exclude = sorted({*plan.fixed, *NEVER_IN_NAMES, *(search.keys if search else [])})
    return [*arguments, f"hydra.job.config.override_dirname.exclude_keys=[{','.join(exclude)}]"], plan


def record_start(sweep_dir: Path, name: str, plan: GridPlan, starts: list[dict]) -> None:
    """Add this start to sweep.json's earlier `starts` (a sweep completed later has several)."""
    import pytorch_lightning
    import torch

    starts = [
        *starts,
        {
            "command": os.environ.get(COMMAND_VARIABLE) or shlex.join(["lstm-train", *sys.argv[1:]]),
            "fixed": plan.fixed,
            "runs": plan.runs,
            "levels": plan.levels or {},
            **({"search": plan.search.record()} if plan.search else {}),
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()})",
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "pytorch_lightning": pytorch_lightning.__version__,
            },
        },
    ]
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_json(sweep_dir / SWEEP_FILE, {"name": name, "swept": plan.swept, "starts": starts})


PREVIEW_ACTIONS = (
    "start",
    "resume",
    "start over",
    "refused (settings differ)",
    "fail (bad value)",
    "skip (finished)",
    "skip (being trained)",
)


def resume_action(job_config, run_dir: Path) -> str:
    """What the run would do with its folder's run: skip it (finished with these settings),
    resume it, start over (trainer.resume false), or be refused (made with settings that change
    results)."""
    from lstm_sweep.run.resume import refuse_other_finished, resume_point

    task = plain(task_config(job_config))
    try:
        if is_finished(run_dir):
            refuse_other_finished(run_dir, task)
            return "skip (finished)"
        if not task["trainer"]["resume"]:
            return "start over"
        resume_point(run_dir, task)
    except ConfigError:
        return "refused (settings differ)"
    return "resume"


# The composer of this process's sweep: the HPARAMS columns, Hydra's legality check, the dry
# run and the SLURM launcher each need every run's config.
_composers: dict[int, tuple] = {}


def composer(config, config_loader) -> GridComposer:
    if id(config) not in _composers:  # the config is kept with its composer: its id stays its own
        _composers[id(config)] = (config, GridComposer(config, config_loader))
    return _composers[id(config)][1]


def sweep_jobs(
    config,
    config_loader,
    overrides: list[str],
    swept: list[str],
    only: list[str] | None = None,
    search: Search | None = None,
) -> list[tuple[list[str], Path]]:
    """Each run the grid launches — those named in `only`, if given — as (its overrides, its
    folder); with a search, each run's overrides end in its trial's values. A run's folder is
    its readable name unless that would not be its own (naming.unique_name): then its
    overrides name the folder. Names depend on the grid alone, so every start of a sweep gives
    a run the same folder."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(overrides)
    sweep_dir = Path(config.hydra.sweep.dir)
    grid = [(job, job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    if search:
        values = search.overrides()
        grid = [(full, full) for full in (job + values[trial_of(job)] for job, _ in grid)]
    jobs = [
        (job, str(OmegaConf.select(composed, "hydra.sweep.subdir")))
        for job, composed in composer(config, config_loader).each(grid)
    ]
    shared = Counter(name.casefold() for _, name in jobs)  # one folder on a case-blind filesystem too
    named = []
    for job, readable in jobs:
        if shared[readable.casefold()] > 1 or too_long(readable):
            name = unique_name(readable, identity(job, swept))
            job = [*job, f"hydra.sweep.subdir={quote(name)}"]
        else:
            name = readable
        named.append((job, sweep_dir / name, readable))
    if only is not None:
        known = {n for _, run_dir, readable in named for n in (run_dir.name, readable)}
        outside = sorted(set(only) - known)
        if outside:
            raise ConfigError(f"hydra.sweeper.only names {outside[0]}, which the grid does not hold")
        named = [job for job in named if job[1].name in only or job[2] in only]
    return [(job, run_dir) for job, run_dir, _ in named]


def trial_of(job: list[str]) -> int:
    """The trial a job of a search is (its `trial=` override)."""
    return next(int(o.split("=", 1)[1]) for o in job if o.split("=", 1)[0] == TRIAL_KEY)


def identity(job: list[str], swept: list[str]) -> str:
    """What tells a grid's runs apart: its swept keys' values, as its overrides give them."""
    keys = {key.lstrip("+~") for key in swept}
    return "\n".join(sorted(o for o in job if o.split("=", 1)[0].lstrip("+~") in keys))


def preview(jobs: list[tuple[list[str], Path]], sweep_dir: Path, compose: GridComposer) -> int:
    """A dry run: each run the sweep would launch (sweep_jobs), with what would happen to it, on
    stdout; why each run that would fail on its values would, one line each on stderr. Returns
    how many would fail so."""
    from lstm_sweep.run.config import check_config

    counts: dict[str, int] = {}
    for run_dir, job_config in compose.each(jobs):
        if is_finished(run_dir):
            action = resume_action(job_config, run_dir)
        elif recorded_status(read_status(run_dir))[0] == "running":
            action = "skip (being trained)"
        else:
            try:  # what the run checks before it trains
                check_config(job_config)  # its schema's keys: Hydra's node is not among them
            except ConfigError as err:
                action = "fail (bad value)"
                print(f"{run_dir.name}: {err}", file=sys.stderr, flush=True)
            else:
                if (run_dir / "checkpoints" / "resume.ckpt").is_file():
                    action = resume_action(job_config, run_dir)
                elif run_dir.exists():
                    action = "start over"
                else:
                    action = "start"
        counts[action] = counts.get(action, 0) + 1
        print(f"{action:<25} {run_dir.name}", flush=True)
    summary = ", ".join(f"{counts[action]} {action}" for action in PREVIEW_ACTIONS if action in counts)
    print(f"{len(jobs)} runs in {sweep_dir}: {summary}; dry run, nothing started", flush=True)
    return counts.get("fail (bad value)", 0)


def record_board(sweep_dir: Path, jobs: list[tuple[list[str], Path]], swept: list[str], compose: GridComposer) -> None:
    """TensorBoard's HPARAMS columns for the sweep (sweep/board.py): this start's runs, as
    composed, and the runs earlier starts left in the folder, as saved."""
    from lstm_sweep.run.summary import hparam_values
    from lstm_sweep.sweep.board import write_experiment

    def settings(job_config) -> dict:
        task = task_config(job_config)
        try:
            return hparam_values(plain(task))
        except Exception:  # an interpolation only a running job resolves: the settings as written
            return hparam_values(plain(task, resolve=False))

    runs = {run_dir.name: settings(job_config) for run_dir, job_config in compose.each(jobs)}
    for saved in sweep_dir.glob("*/.hydra/config.yaml"):
        if saved.parent.parent.name not in runs:
            try:
                runs[saved.parent.parent.name] = settings(OmegaConf.load(saved))
            except Exception as err:  # lstm-aggregate reports a damaged run; HPARAMS goes without it
                log.debug("%s left out of HPARAMS: %s", saved, err)
    write_experiment(sweep_dir, swept, list(runs.values()))
