"""Seeds until the question is decided: a group-sequential comparison of two configurations.

Seeds come in rounds of `round_seeds` per configuration, up to `max_seeds`; after each round
(a "look") the difference of the two means is tested, and the comparison stops as soon as
it is decided — without the repeated looks inflating the false-decision rate past α.

The design is a two-sided group-sequential test with the Lan–DeMets α-spending function of
O'Brien–Fleming type, α(t) = 2 − 2Φ(z_{1−α/2} / √t) at information fraction t = n_k / n_max:
little α is spent at the early looks, almost all of it at the last. Look k's boundary c_k
is the z that spends α(t_k) − α(t_{k−1}) given the looks before, under the joint normal law
of the looks' z-statistics (corr(Z_j, Z_k) = √(t_j / t_k)), carried from look to look by
recursive numerical integration. Each look's Welch t-statistic enters through its p-value,
z = Φ⁻¹(F_t(t; ν)), with ν = min(n_a, n_b) − 1, the conservative bound of Welch–
Satterthwaite's degrees of freedom (Hsu 1938): with Welch's own ν the looks' estimated
variances make them less correlated than the z-statistics, and 400,000 simulated A/A
comparisons decided 5.08% of the time; with the bound, 4.4%, at a cost of about one seed
on average (tests/test_sequential.py).

At look k the repeated confidence interval of the difference is diff ± t_ν(Φ(c_k)) · SE;
the intervals of all looks cover the true difference together with probability ≥ 1 − α.
The comparison stops

- **decided**: the interval excludes 0 (the sign says which configuration is better);
- **equivalent**: a margin is given and the interval lies within (−margin, +margin): the
  difference is shown smaller than the margin;
- **undecided**: max_seeds are reached without either.

Why this and not an anytime-valid confidence sequence: the confidence sequences that need
no known variance (and the `confseq` package, which builds against Boost with no wheels)
are far wider at the seed counts a sweep can afford — a group-sequential design spends α
only at the looks that happen, which a sweep in rounds has anyway. The simulation tests
(tests/test_sequential.py) show its false-decision rate at or below α with report2021's
seed noise, and its power and average seed count for report2021's effect sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy import optimize, stats

from lstm_sweep.errors import ConfigError


@dataclass(frozen=True)
class Design:
    """How seeds are added and when a comparison stops."""

    alpha: float = 0.05
    round_seeds: int = 5  # seeds added per configuration at each round
    max_seeds: int = 30  # per configuration
    margin: float | None = None  # an equivalence margin in the metric's units, or none

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha={self.alpha} must be in (0, 1)")
        if self.round_seeds < 2:
            raise ConfigError(f"--round-seeds={self.round_seeds} must be at least 2 (a look needs a spread)")
        if self.max_seeds < self.round_seeds:
            raise ConfigError(f"--max-seeds={self.max_seeds} must be at least --round-seeds={self.round_seeds}")
        if self.margin is not None and not (math.isfinite(self.margin) and self.margin > 0):
            raise ConfigError(f"--margin={self.margin} must be a finite number > 0")

    @property
    def looks(self) -> list[int]:
        """Seeds per configuration at each look: round_seeds, 2·round_seeds, …, max_seeds."""
        sizes = list(range(self.round_seeds, self.max_seeds, self.round_seeds))
        return [*sizes, self.max_seeds]

    def boundaries(self) -> list[float]:
        """c_k, the |z| at which look k decides."""
        return list(_boundaries(self.alpha, tuple(n / self.max_seeds for n in self.looks)))


def spent(alpha: float, t: float) -> float:
    """O'Brien–Fleming-type α-spending (Lan & DeMets 1983): α spent by information fraction t."""
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))


GRID = 2001  # points of the continuation region's grid: boundaries to ~1e-5


@cache
def _boundaries(alpha: float, fractions: tuple[float, ...]) -> tuple[float, ...]:
    """The recursive integration of Armitage, McPherson and Rowe (1969): the sub-density of the
    score S_k = Z_k √t_k on the continuation region is carried from look to look (the score's
    increments are independent normals of variance t_k − t_{k−1}), and each boundary is the
    root of (the α the look may spend) − (the probability of crossing there)."""
    spend = [
        spent(alpha, t) - (spent(alpha, before) if k else 0.0)
        for k, (t, before) in enumerate(zip(fractions, (0.0, *fractions)))
    ]
    found = [float(stats.norm.ppf(1 - spend[0] / 2))]
    grid = np.linspace(-found[0] * math.sqrt(fractions[0]), found[0] * math.sqrt(fractions[0]), GRID)
    density = stats.norm.pdf(grid / math.sqrt(fractions[0])) / math.sqrt(fractions[0])
    for k in range(1, len(fractions)):
        t, step = fractions[k], fractions[k] - fractions[k - 1]
        mass = _trapezoid(grid) * density  # the continuation region's probability, point by point

        def crossing(c: float, mass=mass, grid=grid, t=t, step=step, target=spend[k]) -> float:
            edge, sd = c * math.sqrt(t), math.sqrt(step)
            return (
                float(np.sum(mass * (stats.norm.cdf((-edge - grid) / sd) + stats.norm.sf((edge - grid) / sd)))) - target
            )

        found.append(float(optimize.brentq(crossing, 1e-3, 20.0, xtol=1e-9)))
        edge = found[-1] * math.sqrt(t)
        new_grid = np.linspace(-edge, edge, GRID)
        density = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / math.sqrt(step)) / math.sqrt(step) @ mass
        grid = new_grid
    return tuple(found)


def _trapezoid(grid: np.ndarray) -> np.ndarray:
    weights = np.full(len(grid), grid[1] - grid[0])
    weights[[0, -1]] /= 2
    return weights


@dataclass
class Look:
    """One look at a comparison: n seeds per side so far, and what it says."""

    n: int
    diff: float  # mean of b − mean of a
    low: float  # the repeated confidence interval of the difference
    high: float
    z: float
    boundary: float
    outcome: str  # "continue", "decided", "equivalent" or "undecided"


def look(a, b, boundary: float, margin: float | None, last: bool) -> Look:
    """Test a (first n seeds of one configuration) against b at a look with this boundary."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(b.mean() - a.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # identical values: no spread to test against
        z, half = (math.inf if diff else 0.0), 0.0
    else:
        df = min(len(a), len(b)) - 1  # Welch–Satterthwaite's conservative bound
        t = diff / se
        z = float(stats.norm.isf(stats.t.sf(abs(t), df)) * np.sign(t))
        half = float(stats.t.isf(stats.norm.sf(boundary), df) * se)
    low, high = diff - half, diff + half
    if abs(z) >= boundary:
        outcome = "decided"
    elif margin is not None and -margin < low and high < margin:
        outcome = "equivalent"
    else:
        outcome = "undecided" if last else "continue"
    return Look(len(a), diff, low, high, z, boundary, outcome)


@dataclass
class SequentialResult:
    """A comparison's looks in order; the last says how it stopped."""

    looks: list[Look] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.looks[-1].outcome if self.looks else "continue"

    @property
    def seeds(self) -> int:
        return self.looks[-1].n if self.looks else 0

    @property
    def stopped(self) -> bool:
        return self.outcome != "continue"


def run_looks(a_by_seed: dict[int, float], b_by_seed: dict[int, float], design: Design) -> SequentialResult:
    """Replay the design's looks on the seeds finished so far, in order, up to the first that
    stops (or the last complete round): the same data always give the same looks, so a sweep
    resumed after a kill reaches the same decisions. Seeds are taken in order, 0, 1, 2, …:
    a look at n uses seeds 0 … n−1 of both configurations, and only once both have them all."""
    result = SequentialResult()
    boundaries = design.boundaries()
    for k, n in enumerate(design.looks):
        seeds = range(n)
        if not all(s in a_by_seed and s in b_by_seed for s in seeds):
            break
        a, b = [a_by_seed[s] for s in seeds], [b_by_seed[s] for s in seeds]
        result.looks.append(look(a, b, boundaries[k], design.margin, last=k == len(design.looks) - 1))
        if result.stopped:
            break
    return result


def next_seeds(result: SequentialResult, design: Design) -> int:
    """Seeds per configuration the next round needs (0: the comparison has stopped)."""
    if result.stopped:
        return 0
    return design.looks[len(result.looks)]


def simulate(
    effect: float, sigma: float, design: Design, sweeps: int, seed: int = 0, sigma_b: float | None = None
) -> dict[str, float]:
    """`sweeps` simulated sequential comparisons of two configurations whose test metrics are
    normal with standard deviations `sigma` (and `sigma_b`, if the second's differs) and means
    `effect` apart, each stopped by the same
    rule as `run_looks` (vectorised over the sweeps): the rates of each outcome, of a decision
    in the wrong direction, and the average seeds per configuration spent."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, sigma, size=(sweeps, design.max_seeds))
    b = rng.normal(effect, sigma if sigma_b is None else sigma_b, size=(sweeps, design.max_seeds))
    outcome = np.full(sweeps, "continue", dtype=object)
    diff_at_stop, seeds = np.zeros(sweeps), np.zeros(sweeps)
    for k, (n, boundary) in enumerate(zip(design.looks, design.boundaries())):
        open_ = outcome == "continue"
        diff = b[:, :n].mean(1) - a[:, :n].mean(1)
        va, vb = a[:, :n].var(1, ddof=1) / n, b[:, :n].var(1, ddof=1) / n
        se = np.sqrt(va + vb)
        df = n - 1  # as in `look`
        z = stats.norm.isf(stats.t.sf(np.abs(diff / se), df)) * np.sign(diff)
        half = stats.t.isf(stats.norm.sf(boundary), df) * se
        decided = np.abs(z) >= boundary
        last = k == len(design.looks) - 1
        equivalent = ~decided & (design.margin is not None) & (np.abs(diff) + half < (design.margin or 0.0))
        now = np.where(decided, "decided", np.where(equivalent, "equivalent", "undecided" if last else "continue"))
        stop = open_ & (now != "continue")
        outcome[stop], diff_at_stop[stop], seeds[stop] = now[stop], diff[stop], n
    wrong = (outcome == "decided") & ((effect == 0) | (np.sign(diff_at_stop) != np.sign(effect)))
    rates = {name: float(np.mean(outcome == name)) for name in ("decided", "equivalent", "undecided")}
    return {**rates, "wrong": float(np.mean(wrong)), "mean_seeds": float(seeds.mean())}


# --------------------------------------------------------------------------- a sweep's questions


@dataclass
class Question:
    """One comparison the rounds decide: `factor` at `a` against `b`, the sweep's other
    factors held at `context`; its looks so far."""

    factor: str
    context: dict
    a: object
    b: object
    result: SequentialResult

    def config(self, level) -> dict:
        """The factors' values of the configuration at this level."""
        return {**self.context, self.factor: level}


def resolve_factor(name: str, factors: list[str]) -> str:
    """A factor the user named, by its key (`model.cell`) or its short name (`cell`)."""
    from lstm_sweep.naming import short_key

    for factor in factors:
        if name in (factor, short_key(factor)):
            return factor
    swept = ", ".join(factors) or "no factor but the seed"
    raise ConfigError(f"--until-decided {name}: the sweep does not sweep it (it sweeps {swept})")


def questions(runs, factors: list[str], asked: list[str], metric: str, design: Design) -> list[Question]:
    """Each comparison the asked factors make (one per combination of the other factors' values),
    with the looks the design takes on the finished runs' `metric` so far."""
    known = runs.dropna(subset=factors)  # a damaged run whose settings cannot be read is no level
    finished = known[known["status"] == "finished"]
    found = []
    for name in asked:
        factor = resolve_factor(name, factors)
        levels = [_plain(v) for v in dict.fromkeys(known[factor])]
        if len(levels) != 2:
            shown = ", ".join(map(str, levels))
            raise ConfigError(
                f"--until-decided {name}: {factor} takes {len(levels)} values in the sweep ({shown}); "
                "a comparison needs exactly two"
            )
        others = [f for f in factors if f != factor]
        rows = known[others].itertuples(index=False) if others else [()]
        contexts = list(dict.fromkeys(tuple(_plain(v) for v in row) for row in rows))
        for values in contexts:
            context = dict(zip(others, values))
            sides = []
            for level in levels:
                mask = finished[factor] == level
                for key, value in context.items():
                    mask &= finished[key] == value
                sides.append({int(s): float(v) for s, v in zip(finished[mask]["seed"], finished[mask][metric])})
            found.append(Question(factor, context, levels[0], levels[1], run_looks(sides[0], sides[1], design)))
    return found


def _plain(value):
    """A pandas cell as the Python value it was (numpy's int64 is no JSON)."""
    return value.item() if hasattr(value, "item") else value


def seeds_needed(found: list[Question], design: Design) -> list[tuple[dict, int]]:
    """(configuration, seeds it needs) for each configuration an open comparison holds: the
    most any of its open comparisons needs for its next look."""
    needed: dict[tuple, tuple[dict, int]] = {}
    for question in found:
        n = next_seeds(question.result, design)
        if not n:
            continue
        for level in (question.a, question.b):
            config = question.config(level)
            key = tuple(sorted((k, str(v)) for k, v in config.items()))
            needed[key] = (config, max(n, needed.get(key, (config, 0))[1]))
    return list(needed.values())


def record(design: Design, metric: str, asked: list[str], found: list[Question]) -> dict:
    """sequential.json's content: the question asked, the design, and where each comparison stands."""
    return {
        "until_decided": asked,
        "metric": metric,
        "design": {
            "alpha": design.alpha,
            "round_seeds": design.round_seeds,
            "max_seeds": design.max_seeds,
            "margin": design.margin,
            "looks": design.looks,
            "boundaries": design.boundaries(),
        },
        "comparisons": [
            {
                "factor": q.factor,
                "context": q.context,
                "a": q.a,
                "b": q.b,
                "outcome": q.result.outcome,
                "seeds": q.result.seeds,
                "looks": [vars(look) for look in q.result.looks],
            }
            for q in found
        ],
    }


def design_from(recorded: dict) -> tuple[Design, str, list[str]]:
    """The design, metric and asked factors a sequential.json records (ValueError if it cannot)."""
    try:
        d = recorded["design"]
        design = Design(float(d["alpha"]), int(d["round_seeds"]), int(d["max_seeds"]), d.get("margin"))
        return design, str(recorded["metric"]), [str(f) for f in recorded["until_decided"]]
    except (KeyError, TypeError, ConfigError) as err:
        raise ValueError(f"it does not record a design ({err})") from None


def verdict(question: Question, metric: str) -> str:
    """Where a comparison stands, in a line: `model one vs model two at layers=1: …`."""
    from lstm_sweep.naming import level_label, short_key

    a, b = level_label(question.factor, question.a), level_label(question.factor, question.b)
    where = ",".join(f"{short_key(k)}={v}" for k, v in question.context.items())
    head = f"{a} vs {b}" + (f" at {where}" if where else "")
    result = question.result
    if not result.looks:
        return f"{head}: no look yet"
    last = result.looks[-1]
    numbers = (
        f"{last.n} seeds each, {metric} {b} − {a} = {last.diff:+.3g} [{last.low:+.3g}, {last.high:+.3g}], "
        f"|z| = {abs(last.z):.2f} against {last.boundary:.2f}"
    )
    if last.outcome == "decided":
        better = b if last.diff < 0 else a
        return f"{head}: decided, {better} is better ({numbers})"
    if last.outcome == "equivalent":
        return f"{head}: equivalent, the difference is within the margin ({numbers})"
    if last.outcome == "undecided":
        return f"{head}: undecided at the most seeds ({numbers})"
    return f"{head}: open ({numbers})"
