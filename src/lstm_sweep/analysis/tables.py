"""Numbers → tables: each written as Markdown, CSV and LaTeX, its Markdown returned for REPORT.md.

Means are over finished runs only, and every mean shows its n. The Markdown and LaTeX are
formatted for reading ("285.190 ± 1.950 (n=10)"); the CSV beside them holds the numbers
themselves, one column each (mean, std, n, ci_low, ci_high, p, …), for other programs.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from lstm_sweep.analysis.compare import ReferenceRow, VariationRow, configurations
from lstm_sweep.analysis.read import DAMAGED, Sweep
from lstm_sweep.analysis.sequential import Design, Question
from lstm_sweep.analysis.stats import (
    ALPHA,
    BOOTSTRAP_MIN_RUNS,
    BOOTSTRAP_RESAMPLES,
    Comparison,
    Description,
    describe,
    interquartile_mean,
    mean_half_width,
)
from lstm_sweep.files import replacing, write_text
from lstm_sweep.naming import file_stem, level_label, short_key


def config_label(factors: list[str], values) -> str:
    return ",".join(f"{short_key(f)}={v}" for f, v in zip(factors, values)) or "all"


def context_label(context: dict) -> str:
    """The other factors' values a comparison holds at: `layers=2`, or `all`."""
    return config_label(list(context), context.values())


def write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> None:
    with replacing(path) as f:
        table.to_csv(f, index=index)


def write_table(
    table: pd.DataFrame, out: Path, stem: str, caption: str, index: bool = False, numbers: list[dict] | None = None
) -> str:
    """Write stem.md and stem.tex (formatted) and stem.csv (`numbers`, else the table as shown);
    return the Markdown. A stem named after swept values is made a safe file name (naming.file_stem)."""
    stem = file_stem(stem)
    markdown = table.to_markdown(index=index, disable_numparse=True)
    write_text(out / f"{stem}.md", f"{caption}\n\n{markdown}\n")
    write_csv(
        pd.DataFrame(numbers) if numbers is not None else table, out / f"{stem}.csv", index=index and numbers is None
    )
    write_text(out / f"{stem}.tex", table.to_latex(index=index, caption=caption, label=f"tab:{stem}", escape=True))
    return markdown


def mean_std(description: Description, digits: int) -> str:
    mean, std, n = description
    if n == 0:
        return "—"
    spread = f" ± {std:.{digits}f}" if not math.isnan(std) else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def number(value: float, spec: str) -> str:
    """`value` formatted by `spec`; a dash where it is NaN (too few runs)."""
    return "—" if math.isnan(value) else format(value, spec)


def welch_cells(c: Comparison) -> dict:
    """Welch's interval and p-value, as the statistics and variation tables both show them."""
    return {
        "95% CI": f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if not math.isnan(c.ci_low) else "—",
        "Welch p": number(c.p_welch, ".2g"),
    }


def run_counts(sweep: Sweep) -> str:
    """Finished, failed, unfinished and damaged runs per configuration (Markdown only)."""
    rows = []
    for values, group in configurations(sweep, sweep.runs):
        counts = {status: int((group["status"] == status).sum()) for status in ("finished", "failed", DAMAGED)}
        rows.append(
            {
                "configuration": config_label(sweep.factors, values),
                "finished": counts["finished"],
                "failed": counts["failed"],
                "unfinished": len(group) - sum(counts.values()),
                "damaged": counts[DAMAGED],
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def per_configuration_tables(sweep: Sweep, out: Path) -> list[tuple[str, str]]:
    """The course report's table per configuration: one row per seed, then Average and Std."""
    sections = []
    for values, group in configurations(sweep, sweep.finished):
        label = config_label(sweep.factors, values)
        rows = [
            {
                "Times": int(r["seed"]) if "seed" in group else i + 1,
                "The value of loss": f"{r['test/loss']:.6f}",
                "The value of ppl": f"{r['test/ppl']:.3f}",
            }
            for i, (_, r) in enumerate(group.iterrows())
        ]
        loss_mean, loss_std, _ = describe(group["test/loss"])
        ppl_mean, ppl_std, _ = describe(group["test/ppl"])
        rows.append(
            {"Times": "Average", "The value of loss": f"{loss_mean:.6f}", "The value of ppl": f"{ppl_mean:.3f}"}
        )
        rows.append({"Times": "Std", "The value of loss": f"{loss_std:.6f}", "The value of ppl": f"{ppl_std:.3f}"})
        caption = (
            f"Test loss and perplexity of {label}, one row per seed (Times = seed); "
            f"Std is the sample standard deviation over n = {len(group)} runs."
        )
        numbers = [
            {
                "seed": int(r["seed"]) if "seed" in group else i + 1,
                "test/loss": r["test/loss"],
                "test/ppl": r["test/ppl"],
            }
            for i, (_, r) in enumerate(group.iterrows())
        ]
        markdown = write_table(pd.DataFrame(rows), out, f"runs_{label}", caption, numbers=numbers)
        sections.append((label, markdown))
    return sections


def summary_tables(sweep: Sweep, out: Path) -> list[tuple[str, str]]:
    """Mean ± std (n) of test loss and ppl: rows = the last factor, columns = the one before it;
    any further factors make separate tables."""
    sections = []
    finished = sweep.finished
    factors = sweep.factors
    row_f = factors[-1] if factors else None
    col_f = factors[-2] if len(factors) >= 2 else None
    outer = factors[:-2]
    outer_groups = finished.groupby(outer, sort=False) if outer else [((), finished)]
    for metric, digits, name in (("test/ppl", 3, "perplexity"), ("test/loss", 6, "loss")):
        for outer_values, part in outer_groups:
            outer_values = outer_values if isinstance(outer_values, tuple) else (outer_values,)
            rows = list(dict.fromkeys(part[row_f])) if row_f else [None]
            cols = list(dict.fromkeys(part[col_f])) if col_f else [None]
            table, numbers = [], []
            for r in rows:
                entry = {short_key(row_f) if row_f else "": level_label(row_f, r) if row_f else "all runs"}
                for c in cols:
                    cell = part
                    if row_f:
                        cell = cell[cell[row_f] == r]
                    if col_f:
                        cell = cell[cell[col_f] == c]
                    entry[level_label(col_f, c) if col_f else f"test {name}"] = mean_std(describe(cell[metric]), digits)
                    setting = dict(zip([*outer, col_f, row_f], [*outer_values, c, r]))
                    numbers.append({**{k: v for k, v in setting.items() if k}, **mean_and_interval(cell[metric])})
                table.append(entry)
            suffix = config_label(outer, outer_values) if outer else ""
            stem = f"summary_test_{name}" + (f"_{suffix}" if suffix else "")
            caption = f"Mean test {name} ± sample std (n finished runs)" + (f", {suffix}" if suffix else "") + "."
            sections.append((caption, write_table(pd.DataFrame(table), out, stem, caption, numbers=numbers)))
    return sections


def mean_and_interval(values) -> dict:
    """mean, std (sample), n and the mean's 95% t interval, as numbers (NaN where undefined)."""
    mean, std, n = describe(values)
    half = mean_half_width(values)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def statistics_table(comparisons: list[Comparison], out: Path) -> str:
    """Every one-factor comparison of test perplexity; "" where there is none."""
    rows = [
        {
            "compared": f"{level_label(c.factor, c.b)} − {level_label(c.factor, c.a)}",
            "where": context_label(c.context),
            "n": f"{c.n_b} / {c.n_a}",
            "mean difference": f"{c.diff:+.3f}",
            **welch_cells(c),
            "Holm p" if c.correction == "holm" else "corrected p": number(c.p_adjusted, ".2g"),
            "Hedges' g": number(c.hedges_g, "+.2f"),
            "seeds for 80% power": number(c.seeds_for_power, ".0f"),
            "paired n": c.n_pairs,
            "paired mean difference": number(c.paired_diff, "+.3f"),
            "paired p": number(c.p_paired, ".2g"),
        }
        for c in comparisons
    ]
    if not rows:
        return ""
    caption = (
        "Test perplexity, every pair of configurations that differ in one factor: mean difference "
        "with Welch's 95% confidence interval and p-value (and after the report's correction), the effect "
        "size as Hedges' g, the seeds per configuration that would detect it with 80% power at α = 0.05, "
        "and the paired-by-seed t-test."
    )
    numbers = [comparison_numbers(c) for c in comparisons]
    return write_table(pd.DataFrame(rows), out, "statistics_test_ppl", caption, numbers=numbers)


def interval(low: float, high: float, spec: str) -> str:
    return "—" if math.isnan(low) or math.isnan(high) else f"[{format(low, spec)}, {format(high, spec)}]"


def evidence_table(comparisons: list[Comparison], out: Path) -> str:
    """The comparisons again, by what assumes no normal law: the bootstrap interval of the
    difference, P(b better than a), the rank test beside Welch's, and ASO's ε_min."""
    if not comparisons:
        return ""
    aso = any(not math.isnan(c.aso_epsilon) for c in comparisons)
    corrected = "(Holm)" if any(c.correction == "holm" for c in comparisons) else "(uncorrected)"
    rows = [
        {
            "compared": f"{level_label(c.factor, c.b)} − {level_label(c.factor, c.a)}",
            "where": context_label(c.context),
            "mean difference": f"{c.diff:+.3f}",
            "bootstrap 95% CI": interval(c.boot_low, c.boot_high, "+.3f"),
            f"P({level_label(c.factor, c.b)} better)": f"{number(c.p_better, '.2f')} "
            + interval(c.p_better_low, c.p_better_high, ".2f"),
            f"Welch p {corrected}": number(c.p_adjusted, ".2g"),
            f"rank p {corrected}": number(c.p_rank_adjusted, ".2g"),
            "tests agree": agreement(c),
            **({"ASO ε_min": number(c.aso_epsilon, ".2f")} if aso else {}),
        }
        for c in comparisons
    ]
    caption = (
        f"Test perplexity, every one-factor comparison without assuming a normal law: the mean difference's "
        f"BCa bootstrap 95% interval ({BOOTSTRAP_RESAMPLES:,} resamples of each configuration's seeds; none below "
        f"{BOOTSTRAP_MIN_RUNS} runs a side, where it would be far too narrow), the "
        "probability that a run of the second configuration beats a run of the first (lower perplexity; ties "
        "half) with its percentile bootstrap interval, Welch's t-test beside the Mann–Whitney U test (both "
        "after the report's correction), and whether they agree at α = 0.05"
        + ("; ASO ε_min (Dror et al., 2019): below 0.5 leans to the second, 0 is stochastic dominance." if aso else ".")
    )
    return write_table(
        pd.DataFrame(rows), out, "evidence_test_ppl", caption, numbers=[comparison_numbers(c) for c in comparisons]
    )


def agreement(c: Comparison) -> str:
    """Whether Welch's test and the rank test reach the same verdict at α (both corrected)."""
    if math.isnan(c.p_adjusted) or math.isnan(c.p_rank_adjusted):
        return "—"
    return "yes" if (c.p_adjusted < ALPHA) == (c.p_rank_adjusted < ALPHA) else "NO"


def comparison_numbers(c: Comparison) -> dict:
    skipped = ("factor", "a", "b", "context", "verdict")
    numbers = {k: v for k, v in dataclasses.asdict(c).items() if k not in skipped}
    return {"factor": c.factor, "a": c.a, "b": c.b, "where": context_label(c.context), **numbers}


def robust_table(sweep: Sweep, out: Path) -> str:
    """Per configuration: the mean with its t interval beside the interquartile mean with its
    bootstrap interval — a few outlying seeds move the first, not the second."""
    table, numbers = [], []
    for values, group in configurations(sweep, sweep.finished):
        ppl = group["test/ppl"].to_numpy(float)
        mean = mean_and_interval(ppl)
        iqm = interquartile_mean(ppl)
        table.append(
            {
                "configuration": config_label(sweep.factors, values),
                "n": len(ppl),
                "mean [95% CI]": f"{mean['mean']:.3f} " + interval(mean["ci_low"], mean["ci_high"], ".3f"),
                "IQM [95% CI]": f"{iqm.iqm:.3f} " + interval(iqm.low, iqm.high, ".3f"),
            }
        )
        numbers.append(
            {**dict(zip(sweep.factors, values)), **mean, "iqm": iqm.iqm, "iqm_low": iqm.low, "iqm_high": iqm.high}
        )
    if not table:
        return ""
    caption = (
        "Test perplexity per configuration: the mean with its 95% t interval, and the interquartile mean (the "
        f"mean of the middle half of the runs) with its percentile bootstrap 95% interval ({BOOTSTRAP_RESAMPLES:,} "
        "resamples)."
    )
    return write_table(pd.DataFrame(table), out, "robust_test_ppl", caption, numbers=numbers)


def reference_table(rows: list[ReferenceRow], out: Path) -> str:
    table = [
        {
            "configuration": ", ".join(level_label(k, v) for k, v in row.setting.items()),
            "reference test ppl": f"{row.reference_ppl:.3f}",
            "ours (mean ± std, n)": mean_std(row.ppl, 3),
            "ours − reference": f"{row.gap:+.3f} ({row.relative_gap:+.1%})" if row.ppl.n else "—",
            "reference inside our 95% CI": {True: "yes", False: "no", None: "—"}[row.inside_ci],
            "reference test loss": f"{row.reference_loss:.6f}" if row.reference_loss is not None else "—",
            "ours test loss": mean_std(row.loss, 6),
        }
        for row in rows
    ]
    numbers = [
        {
            **row.setting,
            "reference_ppl": row.reference_ppl,
            "reference_loss": row.reference_loss,
            "mean_ppl": row.ppl.mean,
            "std_ppl": row.ppl.std,
            "n": row.ppl.n,
            "gap": row.gap,
            "relative_gap": row.relative_gap,
            "reference_inside_ci": row.inside_ci,
            "mean_loss": row.loss.mean,
            "std_loss": row.loss.std,
        }
        for row in rows
    ]
    return write_table(
        pd.DataFrame(table),
        out,
        "reference_comparison",
        "Our means beside the reference's (test perplexity and loss).",
        numbers=numbers,
    )


def variation_table(sweep: Sweep, other: Sweep, label: str, rows: list[VariationRow], out: Path) -> str:
    table, numbers = [], []
    for row in rows:
        entry = {
            "configuration": config_label(sweep.factors, row.values),
            "this sweep": mean_std(row.ours, 3),
            label: mean_std(row.theirs, 3),
            "difference": f"{row.comparison.diff:+.3f}" if row.theirs.n else "—",
            **welch_cells(row.comparison),
        }
        if row.reference_ppl is not None:
            entry["reference"] = f"{row.reference_ppl:.3f}"
            entry[f"{label} − reference"] = f"{row.reference_gap:+.1%}" if row.theirs.n else "—"
        table.append(entry)
        c = row.comparison
        numbers.append(
            {
                **dict(zip(sweep.factors, row.values)),
                "mean": row.ours.mean,
                "std": row.ours.std,
                "n": row.ours.n,
                "mean_other": row.theirs.mean,
                "std_other": row.theirs.std,
                "n_other": row.theirs.n,
                "diff": c.diff,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "p_welch": c.p_welch,
                "reference_ppl": row.reference_ppl,
            }
        )
    stem = "variation_" + "".join(ch if ch.isalnum() else "_" for ch in label)
    caption = f"Test perplexity of this sweep and of the same configurations with {label} ({other.folder})."
    return write_table(pd.DataFrame(table), out, stem, caption, numbers=numbers)


STOPPED_BECAUSE = {
    "decided": "decided: the interval excludes 0",
    "equivalent": "equivalent: the interval lies within the margin",
    "undecided": "undecided at the most seeds",
    "continue": "open: more seeds are needed",
}


def sequential_table(found: list[Question], design: Design, metric: str, out: Path) -> str:
    """Each comparison run until decided: the seeds it took, why it stopped and its last look;
    the CSV holds every look of every comparison."""
    rows, numbers = [], []
    for q in found:
        a, b = level_label(q.factor, q.a), level_label(q.factor, q.b)
        last = q.result.looks[-1] if q.result.looks else None
        outcome = STOPPED_BECAUSE[q.result.outcome]
        if q.result.outcome == "decided" and last is not None:
            outcome += f" ({b if last.diff < 0 else a} is better)"
        rows.append(
            {
                "compared": f"{b} − {a}",
                "where": context_label(q.context),
                "seeds each": str(q.result.seeds),
                "stopped": outcome,
                "difference [repeated 95% CI]": f"{last.diff:+.3f} {interval(last.low, last.high, '+.3f')}"
                if last
                else "—",
                "z (boundary)": f"{last.z:+.2f} (±{last.boundary:.2f})" if last else "—",
                "z by seeds": " → ".join(f"{look.n}: {look.z:+.2f}" for look in q.result.looks) or "—",
            }
        )
        numbers += [
            {
                "factor": q.factor,
                "where": context_label(q.context),
                "a": q.a,
                "b": q.b,
                **vars(look),
                "stopped": q.result.outcome if k == len(q.result.looks) - 1 else "",
            }
            for k, look in enumerate(q.result.looks)
        ]
    margin = f"; equivalent once it lies within ±{design.margin:g}" if design.margin is not None else ""
    caption = (
        f"{metric}, seeds until decided: seeds were added {design.round_seeds} at a time per configuration up to "
        f"{design.max_seeds}, and after each round the difference was tested against the O'Brien–Fleming "
        f"boundary of that look (α = {design.alpha:g} over all looks); a comparison stopped once its repeated "
        f"95% interval excluded 0{margin}. z by seeds: the test statistic at each look."
    )
    return write_table(pd.DataFrame(rows), out, "sequential", caption, numbers=numbers)
