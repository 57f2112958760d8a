"""What a random search found (sweep/search.py draws it), as Greff et al. analysed theirs in
"LSTM: A Search Space Odyssey" (2017):

- per variant (the grid's other factors: `model.cell`), the test perplexity of every trial
  and of its best 10%;
- Welch's t-test of each variant's best trials against the reference variant (the first in
  grid order: `vanilla` in experiments/odyssey.yaml), with the report's correction;
- hyperparameter importance by functional ANOVA (Hutter et al. 2014): the share of the test
  loss's variance each searched key explains alone, and each pair of keys together beyond
  their main effects, per variant and pooled (the variant then a key too), with the spread
  over the random forest's trees. Keys drawn on a log scale are analysed on that scale.

A trial run with several seeds counts once, at its seeds' mean. fANOVA (analysis/fanova.py)
fits scikit-learn's random forest: it needs the `importance` extra, whose absence is one
line and the rest of the report.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.stats import ALPHA, Comparison, compare, correct, describe, format_p
from lstm_sweep.sweep.search import TRIAL_KEY, Dimension, parse_search

METRIC, OBJECTIVE = "test/ppl", "test/loss"  # compared; explained (ppl's log: its variance is not one outlier's)
CHANCE = "chance_loss"  # log V of the run's vocabulary: a model predicting every word alike
DIVERGED = "diverged"  # seeds of a trial whose training stopped on a loss no longer finite
BEST_FRACTION = 0.10  # Greff et al.'s "best 10% of trials"
MIN_BEST = 2  # trials a variant's best must hold for Welch's test
MIN_TRIALS_FOR_IMPORTANCE = 8
POOLED = "pooled"


@dataclass
class Importance:
    scope: str  # a variant, or "pooled"
    keys: tuple[str, ...]  # one key (a main effect) or two (their interaction)
    fraction: float  # of the test loss's variance, the mean over trees
    std: float  # over trees
    trees: int
    trials: int


def trials_table(sweep: Sweep) -> pd.DataFrame:
    """One row a (variant, trial): its searched values, the mean test ppl and loss over its
    finished seeds, how many seeds finished and how many diverged (training stopped on a loss
    that was no longer finite: no test numbers, but a result of the search all the same)."""
    keys = [*sweep.factors, TRIAL_KEY]
    runs = sweep.runs.copy()
    runs[DIVERGED] = (runs["status"] == "failed") & runs["error"].fillna("").str.startswith("DivergenceError")
    runs = runs[((runs["status"] == "finished") & runs[METRIC].notna()) | runs[DIVERGED]]
    if runs.empty:
        return pd.DataFrame(columns=["variant", *keys, *sweep.searched, METRIC, OBJECTIVE, "seeds", DIVERGED, CHANCE])
    grouped = runs.groupby(keys, sort=False, dropna=False)
    table = grouped[[*sweep.searched, METRIC, OBJECTIVE, "path", DIVERGED]].agg(
        {**dict.fromkeys(sweep.searched, "first"), METRIC: "mean", OBJECTIVE: "mean", "path": "first", DIVERGED: "sum"}
    )
    table["seeds"] = grouped.size() - table[DIVERGED]
    table = table.reset_index()
    table[CHANCE] = [chance_loss(Path(path)) for path in table.pop("path")]
    table.insert(0, "variant", [variant_label(sweep, row) for _, row in table.iterrows()])
    order = grid_order(sweep)
    ranks = [tuple(order[f](row[f]) for f in sweep.factors) for _, row in table.iterrows()]
    at = sorted(range(len(table)), key=lambda i: (ranks[i], table[TRIAL_KEY].iloc[i]))
    return table.iloc[at].reset_index(drop=True)


def grid_order(sweep: Sweep) -> dict:
    """Per factor, a sort key that puts its values in the order the grid gave them (the last
    start's record), values it did not give after them: the reference variant comes first."""
    from lstm_sweep.analysis.read import parse_override

    starts = [s for s in sweep.info.get("starts") or [] if isinstance(s, dict)]
    levels = (starts[-1].get("levels") or {}) if starts else {}
    order = {}
    for factor in sweep.factors:
        given = []
        for text in levels.get(factor, []):
            try:
                given.append(parse_override(f"{factor}={text}")[1])
            except Exception:  # a value the record cannot give back: it sorts after
                continue
        order[factor] = lambda value, given=given: (given.index(value) if value in given else len(given), str(value))
    return order


def chance_loss(run_dir: Path) -> float:
    """log V: the test loss of predicting every word of the run's vocabulary equally likely
    (NaN where its vocab.json cannot be read)."""
    import json

    try:
        return math.log(len(json.loads((run_dir / "vocab.json").read_text())["itos"]))
    except (OSError, ValueError, KeyError, TypeError):
        return math.nan


def explained(table: pd.DataFrame) -> np.ndarray:
    """What fANOVA explains: the test loss, a trial worse than chance — or one that diverged
    before its test — counted at chance (log V), so that no one trial owns the variance of a
    whole search and none is left out of it for failing. NaN where neither is known."""
    loss = table[OBJECTIVE].to_numpy(float)
    chance = table[CHANCE].to_numpy(float)
    capped = np.where(np.isnan(chance), loss, np.fmin(loss, chance))
    return np.where(np.isnan(loss) & (table[DIVERGED].to_numpy(float) > 0), chance, capped)


def variant_label(sweep: Sweep, row) -> str:
    from lstm_sweep.analysis.tables import config_label

    return config_label(sweep.factors, [row[f] for f in sweep.factors])


def best_trials(table: pd.DataFrame, fraction: float = BEST_FRACTION) -> pd.DataFrame:
    """Each variant's best `fraction` of its trials by test perplexity (at least MIN_BEST)."""
    best = []
    for _, group in table.groupby("variant", sort=False):
        keep = max(MIN_BEST, math.ceil(fraction * len(group)))
        best.append(group.nsmallest(keep, METRIC))
    return pd.concat(best) if best else table.iloc[0:0]


def against_reference(table: pd.DataFrame, correction: str, fraction: float = BEST_FRACTION) -> list[Comparison]:
    """Welch's t-test of each variant's best trials against the first variant's."""
    variants = list(dict.fromkeys(table["variant"]))
    if len(variants) < 2:
        return []
    best = best_trials(table, fraction)
    reference = best[best["variant"] == variants[0]]
    found = [
        compare(reference, best[best["variant"] == v], METRIC, "variant", variants[0], v, {}, "ppl")
        for v in variants[1:]
    ]
    return correct(found, correction)


def spaces(sweep: Sweep) -> list[Dimension]:
    search = parse_search(sweep.search)
    return list(search.space) if search else []


def category(d: Dimension, value) -> float:
    """A choice's index (pandas may have read 1 as 1.0); NaN for a value it does not offer."""
    return next((float(i) for i, c in enumerate(d.choices) if c == value or str(c) == str(value)), math.nan)


def fanova_of(table: pd.DataFrame, dimensions: list[Dimension], scope: str, with_variant: bool) -> list[Importance]:
    """Main effects and pairwise interactions of the searched keys (and the variant, where
    `with_variant`) on the test loss, as fractions of its variance (analysis/fanova.py)."""
    from lstm_sweep.analysis.fanova import fanova

    columns: list[list[float]] = []
    bounds: list[tuple[float, float]] = []
    names: list[str] = []
    for d in dimensions:
        if d.categorical:  # category indices over [−½, k − ½]: the average is over the categories
            columns.append([category(d, v) for v in table[d.key]])
            bounds.append((-0.5, len(d.choices) - 0.5))
        else:
            columns.append([d.scale(v) for v in table[d.key]])
            bounds.append(d.bounds())
        names.append(d.key)
    if with_variant:
        levels = list(dict.fromkeys(table["variant"]))
        columns.append([float(levels.index(v)) for v in table["variant"]])
        bounds.append((-0.5, len(levels) - 0.5))
        names.append("variant")
    x, y = np.array(columns, float).T, explained(table)
    known = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
    effects = fanova(x[known], y[known], np.array(bounds, float))
    return [
        Importance(scope, tuple(names[c] for c in e.columns), e.fraction, e.std, e.trees, len(table)) for e in effects
    ]


def importances(sweep: Sweep, table: pd.DataFrame) -> tuple[list[Importance], str]:
    """fANOVA per variant and pooled; and a line saying what could not be computed ("" if all was)."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return [], 'hyperparameter importance needs the importance extra: pip install "lstm-sweep[importance]"'
    dimensions = [d for d in spaces(sweep) if d.key in table]
    found, skipped = [], []
    variants = list(dict.fromkeys(table["variant"]))
    scopes = [(v, table[table["variant"] == v], False) for v in variants]
    if len(variants) > 1:
        scopes.append((POOLED, table, True))
    for scope, rows, with_variant in scopes:
        rows = rows[~np.isnan(explained(rows))]
        if len(rows) < MIN_TRIALS_FOR_IMPORTANCE or len(set(explained(rows))) < 2:
            skipped.append(f"{scope} ({len(rows)} trials)")
            continue
        found += fanova_of(rows, dimensions, scope, with_variant)
    note = (
        f"importance needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials that differ; not computed for "
        + ", ".join(skipped)
        if skipped
        else ""
    )
    return found, note


def importance_rows(found: list[Importance]) -> list[dict]:
    return [
        {
            "scope": i.scope,
            "effect": " × ".join(i.keys),
            "kind": "main" if len(i.keys) == 1 else "interaction",
            "fraction": i.fraction,
            "std_over_trees": i.std,
            "trees": i.trees,
            "trials": i.trials,
        }
        for i in found
    ]


def summary_rows(table: pd.DataFrame, fraction: float = BEST_FRACTION) -> list[dict]:
    """Per variant: its trials, how many diverged, the best, the median, and its best trials' mean ± std."""
    best = best_trials(table, fraction)
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        top = describe(best[best["variant"] == variant][METRIC].to_numpy(float))
        rows.append(
            {
                "variant": variant,
                "trials": len(group),
                "diverged": int((group[METRIC].isna() & (group[DIVERGED] > 0)).sum()),
                "best": float(group[METRIC].min()),
                # a trial that diverged is worse than any that did not
                "median": float(np.median(group[METRIC].fillna(math.inf))),
                "best_n": top.n,
                "best_mean": top.mean,
                "best_std": top.std,
            }
        )
    return rows


def detectable_effect(n: int) -> float:
    """The smallest effect (in standard deviations) a two-sample t-test of n a side finds with
    80% power at α (statsmodels' TTestIndPower); NaN below 2 a side."""
    import warnings

    from statsmodels.stats.power import TTestIndPower

    if n < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(TTestIndPower().solve_power(nobs1=n, alpha=ALPHA, power=0.8))
        except (ValueError, RuntimeError):
            return math.nan


def limit_lines(table: pd.DataFrame, comparisons: list[Comparison]) -> list[str]:
    """What the search's size leaves open, in numbers: the difference its t-tests could find,
    seed noise inside each trial, and what importance is relative to."""
    lines = []
    if comparisons:
        n = min(min(c.n_a, c.n_b) for c in comparisons)
        d = detectable_effect(n)
        best = best_trials(table)
        spread = float(best.groupby("variant")[METRIC].std().mean())
        if not math.isnan(d):
            lines.append(
                f"with {n} best trials a variant, Welch's test finds a difference with 80% power only from "
                f"{d:.1f} standard deviations of the best trials (about {d * spread:.0f} ppl here); a smaller "
                "one reads as no significant difference"
            )
    seeds = table["seeds"] + table[DIVERGED]
    if len(table) and int(seeds.max()) == 1:
        lines.append(
            "one seed a trial: a trial's result mixes its hyperparameters' effect with the seed's, and the best "
            "trials are partly the luckiest"
        )
    lines.append(
        "importance is of this space, this corpus and this training budget: a key held fixed, or a range not "
        "searched, explains nothing here"
    )
    return lines


def published_findings(sweep: Sweep) -> tuple[list[dict], str] | None:
    """The experiment's `reference.findings` and `reference.source`, if it states any."""
    from lstm_sweep.analysis.compare import newest_config, read_reference

    reference = read_reference(newest_config(sweep))
    findings = reference.get("findings") or []
    return (list(findings), str(reference.get("source") or "")) if findings else None


def welch_table(comparisons: list[Comparison], out: Path) -> str:
    from lstm_sweep.analysis.tables import comparison_numbers, interval, number, write_table

    rows = [
        {
            "variant": c.b,
            "against": c.a,
            "n best": f"{c.n_b} / {c.n_a}",
            "mean best ppl": f"{c.mean_b:.2f} / {c.mean_a:.2f}",
            "difference": f"{c.diff:+.2f}",
            "95% CI": interval(c.ci_low, c.ci_high, "+.2f"),
            "Welch p": number(c.p_welch, ".2g"),
            "Holm p" if c.correction == "holm" else "corrected p": number(c.p_adjusted, ".2g"),
            "Hedges' g": number(c.hedges_g, "+.2f"),
            "Mann-Whitney p": number(c.p_rank, ".2g"),
        }
        for c in comparisons
    ]
    caption = "Each variant's best trials against the reference variant's: Welch's t-test of test perplexity"
    return write_table(
        pd.DataFrame(rows), out, "search_welch", caption, numbers=[comparison_numbers(c) for c in comparisons]
    )


def finding_lines(comparisons: list[Comparison], found: list[Importance]) -> list[str]:
    """The search's findings in words: which variants differ from the reference, and which keys matter."""
    lines = []
    for c in comparisons:
        if math.isnan(c.p_adjusted):
            lines.append(f"{c.b} against {c.a}: too few best trials to test")
            continue
        worse = "worse than" if c.diff > 0 else "better than" if c.diff < 0 else "as good as"
        decided = c.p_adjusted < ALPHA
        lines.append(
            f"{c.b}'s best trials are {abs(c.diff):.1f} ppl {worse} {c.a}'s (g = {c.hedges_g:+.2f}, "
            f"{format_p(c.p_adjusted)}{' after correction' if c.correction != 'none' else ''}): "
            + ("a significant difference" if decided else "no significant difference")
        )
    pooled = [i for i in found if i.scope == POOLED] or found
    mains = sorted((i for i in pooled if len(i.keys) == 1), key=lambda i: -i.fraction)
    if mains:
        scope = mains[0].scope
        ranked = ", ".join(f"{i.keys[0]} {i.fraction:.0%} (± {i.std:.0%})" for i in mains)
        pairs = [i for i in pooled if len(i.keys) == 2 and i.scope == scope]
        top_pair = max(pairs, key=lambda i: i.fraction, default=None)
        lines.append(f"variance of the test loss explained ({scope}): {ranked}")
        if top_pair:
            lines.append(
                f"largest interaction: {' × '.join(top_pair.keys)} {top_pair.fraction:.0%} (± {top_pair.std:.0%})"
            )
    return lines


def write_search(sweep: Sweep, out: Path, correction: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The search section of REPORT.md (its lines) and its figures (caption, PNG file)."""
    from lstm_sweep.analysis.figures import search_figures
    from lstm_sweep.analysis.tables import write_csv, write_table

    table = trials_table(sweep)
    write_csv(table, out / "search_trials.csv")
    search = sweep.search or {}
    parts = [
        f"A {search.get('method', 'random')} search of {search.get('trials')} trials (search seed "
        f"{search.get('seed')}) over "
        + ", ".join(f"`{k}` ~ {v}" for k, v in search.get("space", {}).items())
        + f", crossed with {', '.join(sweep.factors) or 'nothing else'}. {len(table)} trials have a result "
        f"({int((table[METRIC].isna()).sum())} of them diverged). "
        f"A trial's value is its mean over its seeds; the best trials are each variant's best "
        f"{BEST_FRACTION:.0%} by test perplexity (at least {MIN_BEST}).",
        "",
    ]
    if table.empty:
        return [*parts, "No trial finished: nothing to analyse.", ""], []
    summary = pd.DataFrame(summary_rows(table))
    shown = summary.assign(
        best=summary["best"].map("{:.2f}".format),
        median=summary["median"].map("{:.2f}".format),
        best_mean=[
            f"{m:.2f} ± {s:.2f} (n={n})"
            for m, s, n in zip(summary["best_mean"], summary["best_std"], summary["best_n"])
        ],
    ).drop(columns=["best_std", "best_n"])
    shown.columns = ["variant", "trials", "diverged", "best test ppl", "median", "best trials: mean ± std"]
    parts += [
        "Test perplexity over each variant's trials.",
        "",
        write_table(
            shown,
            out,
            "search_variants",
            "Test perplexity over each variant's trials",
            numbers=summary.to_dict("records"),
        ),
        "",
    ]
    comparisons = against_reference(table, correction)
    found, note = importances(sweep, table)
    lines = finding_lines(comparisons, found)
    if lines:
        parts += ["What the search supports:", "", *[f"- {line}" for line in lines], ""]
    if comparisons:
        parts += [
            f"Welch's t-test of each variant's best trials against {comparisons[0].a}'s"
            + (" after Holm's correction" if correction == "holm" else "")
            + f" (α = {ALPHA}); lower perplexity is better.",
            "",
            welch_table(comparisons, out),
            "",
        ]
    capped = table[table[OBJECTIVE] > table[CHANCE]]
    if found and len(capped):
        parts += [
            f"{len(capped)} trial{'s' if len(capped) > 1 else ''} did worse than chance (a test perplexity above "
            "the vocabulary's size: "
            + ", ".join(f"{r['variant']} trial {r[TRIAL_KEY]} ({r[METRIC]:.3g})" for _, r in capped.iterrows())
            + "); fANOVA counts their loss as log V, the loss of predicting every word alike, so that no "
            "single diverging trial owns the variance.",
            "",
        ]
    if found:
        rows = importance_rows(found)
        frame = pd.DataFrame(rows)
        shown = frame.assign(
            fraction=[f"{f:.1%}" for f in frame["fraction"]],
            std_over_trees=[f"± {s:.1%}" for s in frame["std_over_trees"]],
        )
        parts += [
            "Functional ANOVA of the test loss (at most chance): the share of its variance over the search space each "
            "key explains alone (main) and each pair beyond its main effects (interaction), the mean "
            f"over the {found[0].trees} trees of a random forest that vary and its spread (std over trees).",
            "",
            write_table(shown, out, "search_importance", "Hyperparameter importance (fANOVA)", numbers=rows),
            "",
        ]
    if note:
        parts += [f"Not shown: {note}.", ""]
    limits = limit_lines(table, comparisons)
    if limits:
        parts += ["What this search cannot show:", "", *[f"- {line}" for line in limits], ""]
    findings = published_findings(sweep)
    if findings:
        reference = findings[1] or "the published study"
        parts += [
            f"### Against {reference}",
            "",
            f"Each finding of {reference}, tested on this search (Welch's test of the best trials after "
            "the report's correction, α = 0.05; fANOVA on the test loss, pooled over variants):",
            "",
            *[f"- {line}" for line in findings_lines(findings[0], comparisons, found)],
            "",
        ]
    plotted = table.assign(explained_loss=explained(table))
    made = search_figures(sweep, plotted, best_trials(table), found, spaces(sweep), out)
    return parts, made


# What an experiment's `reference.findings` can state of a search (experiments/odyssey.yaml holds
# Greff et al.'s), each tested on the search's numbers: kind → what it needs to hold.
FINDING_KINDS = ("none_better", "worst", "no_worse", "importance_order", "small_interactions")


def findings_lines(findings: list[dict], comparisons: list[Comparison], found: list[Importance]) -> list[str]:
    """Each published finding, tested: **holds**, **not contradicted** (no significant difference
    where the finding claims none), **does not hold** or **cannot be tested**, with its evidence."""
    lines = []
    for finding in findings:
        kind, text = finding.get("kind"), finding.get("text", finding.get("kind"))
        try:
            verdict, evidence = test_finding(finding, comparisons, found)
        except KeyError as err:
            verdict, evidence = "cannot be tested", f"the search has no {err.args[0]}"
        if kind not in FINDING_KINDS:
            verdict, evidence = "cannot be tested", f"unknown kind {kind!r} (one of {', '.join(FINDING_KINDS)})"
        lines.append(f"*{text}* — **{verdict}**: {evidence}")
    return lines


def _variant(comparisons: list[Comparison], name: str) -> Comparison:
    for c in comparisons:
        if c.b == name or str(c.b).split("=", 1)[-1] == name:
            return c
    raise KeyError(f"variant {name}")


NOT_CONTRADICTED = "not contradicted"  # a test that does not reject: no proof of equivalence


def _no_proof(comparisons: list[Comparison]) -> str:
    sizes = sorted({f"{c.n_b} vs {c.n_a}" for c in comparisons})
    return f" (best trials compared: {', '.join(sizes)}; a test that does not reject is no test of equivalence)"


def _evidence(c: Comparison) -> str:
    return f"{c.b} {c.diff:+.1f} ppl (g = {c.hedges_g:+.2f}, {format_p(c.p_adjusted)})"


def test_finding(finding: dict, comparisons: list[Comparison], found: list[Importance]) -> tuple[str, str]:
    kind = finding.get("kind")
    pooled = [i for i in found if i.scope == POOLED] or found
    if kind in ("none_better", "worst", "no_worse") and not comparisons:
        raise KeyError("variants to compare")
    if kind == "none_better":
        better = [c for c in comparisons if c.diff < 0 and c.p_adjusted < ALPHA]
        best = min(comparisons, key=lambda c: c.diff)
        if better:
            return "does not hold", "significantly better: " + "; ".join(_evidence(c) for c in better)
        return NOT_CONTRADICTED, f"none is significantly better; the closest, {_evidence(best)}{_no_proof(comparisons)}"
    if kind == "worst":
        named = [_variant(comparisons, v) for v in finding["variants"]]
        ranked = sorted(comparisons, key=lambda c: -c.diff)[: len(named)]
        all_worse = all(c.diff > 0 and c.p_adjusted < ALPHA for c in named)
        holds = all_worse and {c.b for c in ranked} == {c.b for c in named}
        evidence = f"the worst: {'; '.join(_evidence(c) for c in ranked)}"
        if not all_worse:
            evidence += f"; of those named: {'; '.join(_evidence(c) for c in named)}"
        return ("holds" if holds else "does not hold"), evidence
    if kind == "no_worse":
        named = [_variant(comparisons, v) for v in finding["variants"]]
        worse = [c for c in named if c.diff > 0 and c.p_adjusted < ALPHA]
        evidence = "; ".join(_evidence(c) for c in named)
        return ("does not hold", evidence) if worse else (NOT_CONTRADICTED, evidence + _no_proof(named))
    if not pooled:
        raise KeyError("hyperparameter importance")
    mains = sorted((i for i in pooled if len(i.keys) == 1 and i.keys[0] != "variant"), key=lambda i: -i.fraction)
    if kind == "importance_order":
        keys = list(finding["keys"])
        top = [i.keys[0] for i in mains[: len(keys)]]
        evidence = f"main effects ({mains[0].scope}): " + ", ".join(
            f"{i.keys[0]} {i.fraction:.0%} ± {i.std:.0%}" for i in mains
        )
        leading = mains[: len(keys) + 1]
        if any(a.fraction - a.std < b.fraction + b.std for a, b in itertools.pairwise(leading)):
            evidence += " (the ranks' spreads over trees overlap: the order is not firm)"
        return ("holds" if top == keys else "does not hold"), evidence
    if kind == "small_interactions":
        below = float(finding.get("below", 0.1))
        pairs = [i for i in pooled if len(i.keys) == 2 and "variant" not in i.keys]
        if not pairs:
            raise KeyError("pairs of searched keys")
        largest = max(pairs, key=lambda i: i.fraction)
        total = sum(i.fraction for i in pairs)
        evidence = (
            f"all pairs of searched keys together {total:.0%}; the largest, {' × '.join(largest.keys)}, "
            f"{largest.fraction:.0%} ± {largest.std:.0%} (the bar: each below {below:.0%})"
        )
        return ("holds" if largest.fraction < below else "does not hold"), evidence
    return "cannot be tested", ""
