"""Every statistic of the report: means and spreads, intervals, tests and their verdicts.

Nothing else in the analysis computes an interval or a test. Two configurations are
compared when they differ in exactly one factor. For a metric where lower is better (loss,
perplexity) each comparison reports the mean difference (b − a) with its 95% confidence
interval and Welch's t-test (no equal-variance or pairing assumption), and, over the seeds
both have, the paired-by-seed t-test; the effect size as Hedges' g (the difference over the
pooled standard deviation, corrected for small samples); and how many seeds per
configuration would detect a difference of that size with 80% power at α = 0.05
(statsmodels' two-sample t-test power). The verdict is Welch's at α = 0.05, by default
after Holm's correction over the report's comparisons (statsmodels), which the report
states; `--correction none` gives the uncorrected verdicts.

Beside them, evidence that assumes no normal law (Bouthillier et al. 2021; Agarwal et al.
2021, whose rliable computes the same quantities): the difference's bootstrap interval
(scipy.stats.bootstrap, BCa, 9,999 resamples of each configuration's seeds, seeded);
P(b better than a), the probability that a run of b beats a run of a (the Mann–Whitney
statistic over n_a·n_b, ties half), with its percentile bootstrap interval; the
Mann–Whitney U test, as a check on Welch's (both corrected alike); where the optional
`deepsig` is installed, the almost-stochastic-order ε_min of Dror et al. (2019); and per
configuration the interquartile mean with its bootstrap interval.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from lstm_sweep.naming import level_label

ALPHA = 0.05
POWER = 0.8
CORRECTIONS = ("holm", "none")


@dataclass
class Comparison:
    factor: str
    a: object  # the level compared against
    b: object
    context: dict  # the other factors' values, shared by a and b
    metric: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float  # mean_b - mean_a
    ci_low: float
    ci_high: float
    p_welch: float
    n_pairs: int
    paired_diff: float
    p_paired: float
    verdict: str
    hedges_g: float = math.nan  # (b − a) / pooled std, small-sample corrected
    seeds_for_power: float = math.nan  # runs per configuration to detect |g| with 80% power at α
    p_adjusted: float = math.nan  # p_welch after the report's correction (= p_welch for none)
    correction: str = "none"
    unit: str = ""
    boot_low: float = math.nan  # the difference's BCa bootstrap 95% interval
    boot_high: float = math.nan
    p_better: float = math.nan  # P(a run of b beats a run of a): lower is better
    p_better_low: float = math.nan  # its percentile bootstrap 95% interval
    p_better_high: float = math.nan
    p_rank: float = math.nan  # Mann–Whitney U, two-sided
    p_rank_adjusted: float = math.nan  # after the report's correction
    aso_epsilon: float = math.nan  # the ASO ε_min that b is better (aso_epsilon)
    resamples: int = 0  # the bootstrap's


class Description(NamedTuple):
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN for one value
    n: int


def describe(values) -> Description:
    """Mean, sample standard deviation (ddof=1; NaN for one run) and n."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    return Description(float(values.mean()) if n else math.nan, float(values.std(ddof=1)) if n > 1 else math.nan, n)


def mean_half_width(values) -> float:
    """Half the width of the 95% t confidence interval of the mean (NaN for fewer than two values)."""
    _, std, n = describe(values)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n))


def format_p(p: float) -> str:
    if math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def compare(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, factor: str, level_a, level_b, context: dict, unit: str
) -> Comparison:
    """Compare metric between runs `a` and `b` (finished runs, with a 'seed' column if seeded)."""
    xa, xb = a[metric].dropna().to_numpy(float), b[metric].dropna().to_numpy(float)
    mean_a, _, n_a = describe(xa)
    mean_b, _, n_b = describe(xb)
    diff, low, high, p_welch = mean_b - mean_a, math.nan, math.nan, math.nan
    if n_a >= 2 and n_b >= 2:
        welch = stats.ttest_ind(xb, xa, equal_var=False)
        p_welch = float(welch.pvalue)
        low, high = (float(v) for v in welch.confidence_interval(1 - ALPHA))
    n_pairs, paired_diff, p_paired = 0, math.nan, math.nan
    if "seed" in a and "seed" in b:
        pairs = a[["seed", metric]].merge(b[["seed", metric]], on="seed", suffixes=("_a", "_b")).dropna()
        n_pairs = len(pairs)
        if n_pairs:
            paired_diff = float((pairs[f"{metric}_b"] - pairs[f"{metric}_a"]).mean())
        if n_pairs >= 2:
            p_paired = float(stats.ttest_rel(pairs[f"{metric}_b"], pairs[f"{metric}_a"]).pvalue)
    g = hedges_g(xa, xb)
    robust = distribution_free(xa, xb)
    comparison = Comparison(
        factor,
        level_a,
        level_b,
        context,
        metric,
        n_a,
        n_b,
        mean_a,
        mean_b,
        diff,
        low,
        high,
        p_welch,
        n_pairs,
        paired_diff,
        p_paired,
        "",
        g,
        seeds_for_power(g),
        p_welch,
        "none",
        unit,
        **robust,
    )
    comparison.verdict = verdict(comparison)
    return comparison


BOOTSTRAP_RESAMPLES = 9999
# A bootstrap of fewer runs a side resamples so few distinct values that its interval comes
# out far narrower than the t interval (2 runs: a tenth of it): none is given below this.
BOOTSTRAP_MIN_RUNS = 5
BOOTSTRAP_SEED = 20210101  # fixed: a report regenerates number for number


def _rng() -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED)


def _mean_difference(b, a, axis=-1):
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def _better(b, a, axis=-1):
    """P(a value of b is below a value of a), ties counted half, along `axis`: a's Mann–Whitney
    U over n_a n_b, from the average ranks of both, in n log n rather than over the n_a n_b
    pairs (which took 25 s for a bootstrap at 500 runs a side)."""
    b, a = np.moveaxis(np.asarray(b, float), axis, -1), np.moveaxis(np.asarray(a, float), axis, -1)
    n_b, n_a = b.shape[-1], a.shape[-1]
    lead = np.broadcast_shapes(b.shape[:-1], a.shape[:-1])
    both = np.concatenate([np.broadcast_to(b, (*lead, n_b)), np.broadcast_to(a, (*lead, n_a))], axis=-1)
    ranks = stats.rankdata(both, axis=-1)
    return (ranks[..., n_b:].sum(axis=-1) - n_a * (n_a + 1) / 2) / (n_a * n_b)


def bootstrap(samples: tuple, statistic, method: str):
    """scipy's bootstrap of a statistic of independent samples (None where it cannot: too
    few values, or none of their spread the interval needs)."""
    if min(len(s) for s in samples) < BOOTSTRAP_MIN_RUNS:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a degenerate resample: NaN, said as "—"
        return stats.bootstrap(
            samples,
            statistic,
            n_resamples=BOOTSTRAP_RESAMPLES,
            method=method,
            confidence_level=1 - ALPHA,
            vectorized=True,
            batch=1000,  # bounds the memory of a thousand runs a side: resamples × runs each
            rng=_rng(),
        )


def distribution_free(xa, xb) -> dict:
    """The comparison's evidence without a normal law: see the module's docstring."""
    keys = ("boot_low", "boot_high", "p_better", "p_better_low", "p_better_high", "p_rank", "aso_epsilon")
    out: dict = {**dict.fromkeys(keys, math.nan), "resamples": BOOTSTRAP_RESAMPLES}
    if len(xa) and len(xb):
        out["p_better"] = float(_better(xb, xa))
    if (diff := bootstrap((xb, xa), _mean_difference, "BCa")) is not None:
        out["boot_low"], out["boot_high"] = map(float, diff.confidence_interval)
    if (better := bootstrap((xb, xa), _better, "percentile")) is not None:
        out["p_better_low"], out["p_better_high"] = map(float, better.confidence_interval)
    if len(xa) >= 2 and len(xb) >= 2:
        out["p_rank"] = float(stats.mannwhitneyu(xb, xa, alternative="two-sided").pvalue)
        out["aso_epsilon"] = aso_epsilon(xa, xb)
    return out


def difference_distribution(xa, xb) -> np.ndarray:
    """The bootstrap distribution of mean(b) − mean(a) behind `boot_low`, `boot_high`."""
    result = bootstrap((np.asarray(xb, float), np.asarray(xa, float)), _mean_difference, "BCa")
    return np.asarray(result.bootstrap_distribution) if result is not None else np.array([])


ASO_RESAMPLES = 1000  # deepsig's defaults: its bootstrap iterations, the integral's step, the confidence
ASO_DT = 0.005
ASO_CONFIDENCE = 0.95


def aso_epsilon(xa, xb) -> float:
    """The almost stochastic order ε_min (Dror et al. 2019) that b's runs are better than a's
    (lower is better: scores are negated); < 0.5 leans to b, 0 is stochastic dominance.

    deepsig's `aso(-b, -a, seed=BOOTSTRAP_SEED)`, number for number (tests/test_evidence.py
    holds it to deepsig): the same quantile functions, bootstrap draws and seeds, computed on
    whole arrays. deepsig evaluates its quantile functions one point per Python call, three
    seconds a comparison at any number of runs and seventeen at 500 a side."""
    a, b = -np.asarray(xb, dtype=float), -np.asarray(xa, dtype=float)
    if not len(a) or not len(b):
        return math.nan
    t = np.arange(ASO_DT, 1, ASO_DT)
    sorted_a, sorted_b = np.sort(a), np.sort(b)
    ratio = _violation_ratio(_quantiles(sorted_a, t), _quantiles(sorted_b, t))
    draws_a, draws_b = np.empty((ASO_RESAMPLES, len(a))), np.empty((ASO_RESAMPLES, len(b)))
    for i in range(ASO_RESAMPLES):  # deepsig seeds each iteration seed + 1, seed + 2, …
        legacy = np.random.RandomState(BOOTSTRAP_SEED + i + 1)
        draws_a[i], draws_b[i] = legacy.uniform(0, 1, len(a)), legacy.uniform(0, 1, len(b))
    resampled_a = np.sort(_quantiles(sorted_a, draws_a), axis=-1)
    resampled_b = np.sort(_quantiles(sorted_b, draws_b), axis=-1)
    ratios = _violation_ratio(_quantiles(resampled_a, t), _quantiles(resampled_b, t))
    const = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    sigma = np.std(const * (ratios - ratio))
    return float(np.clip(ratio - (1 / const) * sigma * stats.norm.ppf(1 - ASO_CONFIDENCE), 0, 1))


def _quantiles(ordered: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The empirical quantile function of each row of `ordered` (sorted) at `p`: the
    ⌈n p⌉-th smallest value."""
    n = ordered.shape[-1]
    index = np.clip(np.ceil(n * p).astype(np.int64) - 1, 0, n - 1)
    if ordered.ndim == 1:
        return ordered[index]
    return np.take_along_axis(ordered, np.broadcast_to(index, (*ordered.shape[:-1], index.shape[-1])), axis=-1)


def _violation_ratio(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """ε_W2 (Dror et al., eq. 4–5) along the last axis: the share of the squared Wasserstein
    distance between F⁻¹ and G⁻¹ where F⁻¹ < G⁻¹; 0.5 where the two are one distribution."""
    diff = g - f
    distance = np.sum(diff**2 * ASO_DT, axis=-1)
    violation = np.sum(np.where(f >= g, 0.0, diff)[..., 1:] ** 2 * ASO_DT, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(distance == 0, 0.5, violation / distance)


class Robust(NamedTuple):
    iqm: float  # interquartile mean: the mean of the middle half of the runs
    low: float  # its percentile bootstrap 95% interval
    high: float


def interquartile_mean(values) -> Robust:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return Robust(math.nan, math.nan, math.nan)
    iqm = float(stats.trim_mean(values, 0.25))
    result = bootstrap((values,), lambda x, axis=-1: stats.trim_mean(x, 0.25, axis=axis), "percentile")
    low, high = map(float, result.confidence_interval) if result is not None else (math.nan, math.nan)
    return Robust(iqm, low, high)


def hedges_g(xa, xb) -> float:
    """(mean b − mean a) / pooled sample std, times the small-sample correction
    J = 1 − 3 / (4 (n_a + n_b) − 9); NaN with fewer than two runs a side or no spread."""
    n_a, n_b = len(xa), len(xb)
    if n_a < 2 or n_b < 2:
        return math.nan
    pooled = math.sqrt(((n_a - 1) * np.var(xa, ddof=1) + (n_b - 1) * np.var(xb, ddof=1)) / (n_a + n_b - 2))
    if pooled == 0:
        return math.nan
    return float((np.mean(xb) - np.mean(xa)) / pooled * (1 - 3 / (4 * (n_a + n_b) - 9)))


def seeds_for_power(g: float) -> float:
    """Runs per configuration a two-sided two-sample t-test needs to detect an effect of size
    |g| with 80% power at α = 0.05 (statsmodels' TTestIndPower); NaN if g is 0 or unknown."""
    from statsmodels.stats.power import TTestIndPower

    if math.isnan(g) or g == 0:
        return math.nan
    if abs(g) >= fewest_seeds_effect():
        return 2.0  # the fewest runs a t-test can use; the solver searches above it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a difference too small to reach: NaN, said in the table as "—"
        try:
            n = TTestIndPower().solve_power(effect_size=abs(g), alpha=ALPHA, power=POWER)
        except (ValueError, RuntimeError):
            return math.nan
    return float(math.ceil(n)) if np.isfinite(n) else math.nan


@functools.cache
def fewest_seeds_effect() -> float:
    """The |g| that 2 runs per configuration detect with 80% power (5.65). Above it the
    noncentral t's tail is past what statsmodels and scipy evaluate at 2 runs (NaN), so the
    power is not asked there."""
    # Imported first, outside any catch_warnings: importing it sets ConvergenceWarning to
    # "always", ahead of a caller's "ignore".
    import statsmodels.tools.sm_exceptions  # noqa: F401
    from statsmodels.stats.power import TTestIndPower

    return float(TTestIndPower().solve_power(effect_size=None, nobs1=2, alpha=ALPHA, power=POWER))


def verdict(c: Comparison) -> str:
    label_a, label_b = level_label(c.factor, c.a), level_label(c.factor, c.b)
    half = (c.ci_high - c.ci_low) / 2
    p = format_p(c.p_adjusted) + (" (Holm)" if c.correction == "holm" else "")
    if math.isnan(c.p_welch):
        return f"{label_b} vs {label_a}: too few runs to test (n = {c.n_a} and {c.n_b})"
    if c.p_adjusted < ALPHA:
        direction = "worse" if c.diff > 0 else "better"  # lower loss and perplexity are better
        return (
            f"{label_b} {direction} than {label_a} by {abs(c.diff):.3g} {c.unit} "
            f"(95% CI ± {half:.2g}), g = {c.hedges_g:.2f}, {p}"
        )
    return (
        f"{label_b} vs {label_a}: no detectable difference ({c.diff:+.3g} {c.unit}, 95% CI ± {half:.2g}, "
        f"g = {c.hedges_g:.2f}, {p})"
    )


def correct(comparisons: list[Comparison], correction: str) -> list[Comparison]:
    """Adjust the comparisons' Welch p-values together (Holm's step-down, statsmodels), and
    redo their verdicts; `none` leaves them as they are."""
    from statsmodels.stats.multitest import multipletests

    testable = [c for c in comparisons if not math.isnan(c.p_welch)]
    for c in testable:
        c.p_rank_adjusted = c.p_rank
    if correction == "holm" and testable:
        adjusted = multipletests([c.p_welch for c in testable], alpha=ALPHA, method="holm")[1]
        ranked = multipletests([c.p_rank for c in testable], alpha=ALPHA, method="holm")[1]
        for c, p, r in zip(testable, adjusted, ranked):
            c.p_adjusted, c.p_rank_adjusted, c.correction = float(p), float(r), "holm"
    for c in comparisons:
        c.verdict = verdict(c)
    return comparisons


def one_factor_comparisons(runs: pd.DataFrame, factors: list[str], metric: str, unit: str) -> list[Comparison]:
    """Every pair of configurations that differ in exactly one factor (finished runs only)."""
    comparisons = []
    for factor in factors:
        others = [f for f in factors if f != factor]
        groups = runs.groupby(others, sort=False, dropna=False) if others else [((), runs)]
        for context_values, group in groups:
            context_values = context_values if isinstance(context_values, tuple) else (context_values,)
            context = dict(zip(others, context_values))
            levels = list(dict.fromkeys(group[factor]))
            for i, level_a in enumerate(levels):
                for level_b in levels[i + 1 :]:
                    comparisons.append(
                        compare(
                            group[group[factor] == level_a],
                            group[group[factor] == level_b],
                            metric,
                            factor,
                            level_a,
                            level_b,
                            context,
                            unit,
                        )
                    )
    return comparisons
