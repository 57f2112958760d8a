"""Random search inside the grid: `hydra.sweeper.search` names a space of distributions, a trial
count, a seed and a method, and the trials are a pure function of the four.

    hydra:
      sweeper:
        search:
          trials: 20
          seed: 0
          method: random          # or sobol, lhs (scipy.stats.qmc)
          space:
            optim.lr: loguniform(1e-4, 1e-1)
            model.hidden_size: logint(20, 200)
            model.dropout: uniform(0, 0.5)
            optim.momentum: oneminuslog(0.01, 1)   # 1 − loguniform(0.01, 1): 0 … 0.99
            optim._target_: choice(torch.optim.Adam, torch.optim.NAdam)

The sweeper adds `trial=range(trials)` to the grid (so trials cross every other swept key:
variants × trials × seeds) and gives each run its trial's values as plain overrides. Run
folders are named by the trial id (`cell=np,seed=0,trial=7`), never by the long values, which
HPARAMS and the saved config hold. Because the list of trials depends on nothing else, a dry
run, a resumed sweep, `--status`, two processes on one folder and a SLURM array see the same
runs, exactly as for a grid.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_sweep.errors import ConfigError
from lstm_sweep.sweep.compose import quote

TRIAL_KEY = "trial"  # the run config's key that names a run's trial
METHODS = ("random", "sobol", "lhs")
PREFIX_STABLE = ("random", "sobol")  # more trials keep the first ones: a search can be extended
SIGNIFICANT = 6  # digits a searched float keeps: readable in HPARAMS, exact through YAML

# name: (numeric bounds, on a log scale, integer values)
KINDS = {
    "uniform": (True, False, False),
    "loguniform": (True, True, False),
    "int": (True, False, True),
    "logint": (True, True, True),
    "oneminuslog": (True, True, False),  # 1 − x, x log-uniform: Greff et al.'s momentum, dense near 1
    "choice": (False, False, False),
}
_SPEC = re.compile(r"^\s*([A-Za-z_]+)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Dimension:
    """One searched key and its distribution."""

    key: str
    kind: str
    low: float = math.nan
    high: float = math.nan
    choices: tuple = ()

    @property
    def log(self) -> bool:
        return KINDS[self.kind][1]

    @property
    def integer(self) -> bool:
        return KINDS[self.kind][2]

    @property
    def categorical(self) -> bool:
        return self.kind == "choice"

    def value(self, u: float) -> Any:
        """The value at quantile u ∈ [0, 1) of this distribution."""
        if self.categorical:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.integer:  # every integer of [low, high] gets its share of the (log) range
            top = self.high + 1
            x = (
                math.exp(math.log(self.low) + u * math.log(top / self.low))
                if self.log
                else self.low + u * (top - self.low)
            )
            return int(min(max(math.floor(x), self.low), self.high))
        x = (
            math.exp(math.log(self.low) + u * math.log(self.high / self.low))
            if self.log
            else self.low + u * (self.high - self.low)
        )
        x = min(max(float(f"{x:.{SIGNIFICANT}g}"), self.low), self.high)
        return float(f"{1 - x:.{SIGNIFICANT}g}") if self.kind == "oneminuslog" else x

    def spec(self) -> str:
        """The distribution as the experiment file writes it."""
        if self.categorical:
            return f"choice({', '.join(map(str, self.choices))})"
        bounds = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return f"{self.kind}({bounds[0]}, {bounds[1]})"

    def bounds(self) -> tuple[float, float]:
        """The range the analysis spreads this key over, on the log scale where it was drawn
        so; an integer k stands for [k, k + 1) of that range (its share of the draws)."""
        if self.integer:
            return (math.log10(self.low), math.log10(self.high + 1)) if self.log else (self.low - 0.5, self.high + 0.5)
        return (math.log10(self.low), math.log10(self.high)) if self.log else (self.low, self.high)

    def scale(self, value: float) -> float:
        """A value on the analysis's scale (bounds()): an integer at the middle of its share."""
        if self.kind == "oneminuslog":
            return math.log10(min(max(1 - value, self.low), self.high))
        if self.kind == "logint":
            return (math.log10(value) + math.log10(value + 1)) / 2
        return math.log10(value) if self.log else float(value)


@dataclass(frozen=True)
class Search:
    space: tuple[Dimension, ...]
    trials: int
    seed: int
    method: str

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.space]

    def points(self) -> list[dict[str, Any]]:
        """Each trial's values, trial 0 first: a pure function of the space, count, seed and method."""
        unit = unit_points(self.method, self.trials, len(self.space), self.seed)
        return [{d.key: d.value(float(u)) for d, u in zip(self.space, row)} for row in unit]

    def overrides(self) -> list[list[str]]:
        """Each trial's values as Hydra overrides, trial 0 first."""
        return [[f"{key}={override_value(value)}" for key, value in trial.items()] for trial in self.points()]

    def lines(self) -> list[str]:
        """Each trial's values, one line a trial, as the dry run shows them."""
        return [f"{TRIAL_KEY} {i}: {', '.join(trial)}" for i, trial in enumerate(self.overrides())]

    def record(self) -> dict:
        """What sweep.json keeps, and parse_search reads back."""
        return {
            "trials": self.trials,
            "seed": self.seed,
            "method": self.method,
            "space": {d.key: d.spec() for d in self.space},
        }

    def same_trials(self, earlier: dict) -> str:
        """Why this search would give a run of `earlier` (a record()) other values; "" if it would not."""
        now = self.record()
        # the space's order is which coordinate of the unit cube each key is drawn from
        if list((earlier.get("space") or {}).items()) != list(now["space"].items()):
            return f"its space ({earlier.get('space')} → {now['space']})"
        for name in ("seed", "method"):
            if earlier.get(name) != now[name]:
                return f"its {name} ({earlier.get(name)} → {now[name]})"
        if earlier.get("trials") != self.trials and self.method not in PREFIX_STABLE:
            return f"its trial count under method {self.method} ({earlier.get('trials')} → {self.trials})"
        if isinstance(earlier.get("trials"), int) and self.trials < earlier["trials"]:
            return f"fewer trials ({earlier['trials']} → {self.trials}), which would leave runs of the others"
        return ""


def unit_points(method: str, count: int, dimensions: int, seed: int) -> np.ndarray:
    """`count` points of [0, 1)^dimensions, as plain random numbers or a scrambled Sobol or
    Latin-hypercube design; the first points of a longer random or Sobol list are the same."""
    if dimensions == 0:
        return np.zeros((count, 0))
    if method == "random":
        return np.random.default_rng(seed).random((count, dimensions))
    from scipy.stats import qmc

    if method == "sobol":
        with warnings.catch_warnings():  # its balance warning for counts that are no power of 2
            warnings.simplefilter("ignore", UserWarning)
            return qmc.Sobol(dimensions, scramble=True, rng=np.random.default_rng(seed)).random(count)
    return qmc.LatinHypercube(dimensions, rng=np.random.default_rng(seed)).random(count)


def parse_search(node: Mapping | None) -> Search | None:
    """`hydra.sweeper.search` as a Search; None when it is empty. A bad entry is a
    ConfigError naming its key."""
    if not node:
        return None
    where = "hydra.sweeper.search"
    unknown = sorted(set(node) - {"trials", "seed", "method", "space"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (trials, seed, method and space are)")
    trials, seed = node.get("trials"), node.get("seed", 0)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{where}.trials: {trials!r} is not a trial count of 1 or more")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"{where}.seed: {seed!r} is not a non-negative integer")
    method = node.get("method", "random")
    if method not in METHODS:
        raise ConfigError(f"{where}.method: {method!r} is not one of {', '.join(METHODS)}")
    space = node.get("space")
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where}.space: give each searched key a distribution, as optim.lr: loguniform(1e-4, 1e-1)")
    return Search(tuple(parse_dimension(str(k), v) for k, v in space.items()), trials, seed, str(method))


def parse_dimension(key: str, spec: Any) -> Dimension:
    where = f"hydra.sweeper.search.space.{key}"
    if key == TRIAL_KEY or key == "seed" or key.startswith("hydra"):
        raise ConfigError(f"{where}: {key} cannot be searched")
    match = _SPEC.match(str(spec))
    if not match:
        raise ConfigError(f"{where}: {spec!r} is not a distribution such as loguniform(1e-4, 1e-1)")
    kind, arguments = match.group(1), [a.strip() for a in match.group(2).split(",") if a.strip()]
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown distribution {kind!r} (one of {', '.join(KINDS)})")
    if kind == "choice":
        choices = _choices(match.group(2))
        if choices is None:
            raise ConfigError(f"{where}: choice({match.group(2).strip()}) is not a list of values")
        if not choices:
            raise ConfigError(f"{where}: choice() needs at least one value")
        return Dimension(key, kind, choices=tuple(choices))
    if len(arguments) != 2:
        raise ConfigError(f"{where}: {kind} takes a low and a high bound, got {len(arguments)} values")
    try:
        low, high = (float(a) for a in arguments)
    except ValueError:
        raise ConfigError(f"{where}: {kind}({match.group(2).strip()}) needs numbers as bounds") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where}: {kind}'s bounds must be finite")
    if low >= high:
        raise ConfigError(f"{where}: {kind}'s low bound {arguments[0]} is not below its high bound {arguments[1]}")
    if KINDS[kind][1] and low <= 0:
        raise ConfigError(f"{where}: {kind} takes logarithms, so its low bound must be above 0 (got {arguments[0]})")
    if KINDS[kind][2] and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}: {kind}'s bounds must be integers")
    return Dimension(key, kind, low, high)


def _choices(text: str) -> list | None:
    """choice()'s values as YAML reads a list: 3 an int, 0.5 a float, true a bool, '1' and
    'a,b' (quoted) strings, anything else a string; None when it is no list of plain values."""
    import yaml

    try:
        values = yaml.safe_load(f"[{text}]")
    except yaml.YAMLError:
        return None
    return values if all(isinstance(v, (str, int, float, bool)) or v is None for v in values) else None


def override_value(value: Any) -> str:
    """A value as a Hydra override gives it back (strings quoted: `a,b` or `x=y` stay one value)."""
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    return quote(str(value))
