"""The report's figures, each as PNG (for REPORT.md) and PDF (for a paper):

- test perplexity per configuration: every seed's run as a point, the mean with its 95%
  t interval, the published reference (where the experiment names one) and the oracle
  floor (the built-in corpus's best possible perplexity) as lines, on an axis fitted to
  the data — so a 2-ppl difference shows;
- learning curves: training and validation perplexity per epoch, the mean over seeds with
  a 95% band, one line per configuration;
- one per comparison of two configurations: each seed's value of both, the bootstrap
  distribution of the difference of their means with its 95% interval, and the probability
  that a run of one beats a run of the other, with its interval.

Configurations are labelled in words ("model two, 2 layers").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lstm_sweep.analysis.compare import configurations, read_reference, reference_ppl, runs_with
from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.stats import Comparison, describe, difference_distribution, mean_half_width
from lstm_sweep.files import replacing
from lstm_sweep.naming import file_stem, level_label, short_key

FORMATS = ("png", "pdf")


def words(factors: list[str], values) -> str:
    return ", ".join(level_label(f, v) for f, v in zip(factors, values)) or "all runs"


def figures(sweep: Sweep, out: Path, shared=None) -> list[tuple[str, str]]:
    """Draw the figures the sweep has data for; return (caption, PNG file name) of each
    (a PDF of the same name lies beside it). `shared`: a run's saved config, for the
    experiment's published reference."""
    import matplotlib

    matplotlib.use("Agg")
    made = []
    if len(sweep.finished):
        made.append(test_ppl_figure(sweep, out, read_reference(shared) if shared is not None else {}, shared))
    curves = sweep.epochs.merge(sweep.finished[["run", *sweep.factors]], on="run")
    if len(curves):
        made.append(learning_curves_figure(sweep, curves, out))
    return made


def comparison_figures(sweep: Sweep, comparisons: list[Comparison], out: Path) -> list[tuple[str, str]]:
    """One figure per comparison (as PNG and PDF); (caption, PNG file) of each."""
    made = []
    for c in comparisons:
        a = runs_with(sweep.finished, {**c.context, c.factor: c.a})["test/ppl"].to_numpy(float)
        b = runs_with(sweep.finished, {**c.context, c.factor: c.b})["test/ppl"].to_numpy(float)
        if len(a) >= 2 and len(b) >= 2:
            made.append(comparison_figure(c, a, b, out))
    return made


def comparison_figure(c: Comparison, a, b, out: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    label_a, label_b = level_label(c.factor, c.a), level_label(c.factor, c.b)
    where = ", ".join(level_label(k, v) for k, v in c.context.items())
    fig, (seeds, boot, better) = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [1.1, 1.6, 0.8]})
    jitter = np.random.default_rng(0)
    for x, values in enumerate((a, b)):
        seeds.scatter(x + jitter.uniform(-0.1, 0.1, len(values)), values, s=16, alpha=0.6, zorder=2)
        seeds.hlines(values.mean(), x - 0.25, x + 0.25, colors="black", linewidth=2, zorder=3)
    seeds.set_xticks([0, 1], [f"{label_a}\n(n={len(a)})", f"{label_b}\n(n={len(b)})"], fontsize=8)
    seeds.set(ylabel="test perplexity", title="each seed, and the mean")
    seeds.grid(axis="y", alpha=0.3)
    distribution = difference_distribution(a, b)
    if len(distribution):
        boot.hist(distribution, bins=60, color="tab:blue", alpha=0.6)
    else:
        boot.text(0.5, 0.5, "too few runs for a bootstrap", ha="center", transform=boot.transAxes, fontsize=9)
    boot.axvline(0, color="black", linewidth=1)
    for edge in (c.boot_low, c.boot_high):
        if not math.isnan(edge):
            boot.axvline(edge, color="tab:red", linestyle="--", linewidth=1.2)
    boot.axvline(c.diff, color="tab:red", linewidth=2)
    boot.set(
        xlabel=f"mean {label_b} − mean {label_a} (ppl)",
        yticks=[],
        title="bootstrap distribution"
        + ("" if math.isnan(c.boot_low) else f", 95% CI [{c.boot_low:+.2f}, {c.boot_high:+.2f}]"),
    )
    better.bar([0], [c.p_better], color="tab:green", alpha=0.7, width=0.5)
    if not math.isnan(c.p_better_low):
        better.errorbar(
            [0],
            [c.p_better],
            yerr=[[c.p_better - c.p_better_low], [c.p_better_high - c.p_better]],
            color="black",
            capsize=8,
        )
    better.axhline(0.5, color="gray", linestyle=":", linewidth=1)
    better.set(
        ylim=(0, 1),
        xlim=(-1, 1),
        xticks=[],
        ylabel=f"P({label_b} better than {label_a})",
        title=f"P = {c.p_better:.2f}",
    )
    fig.suptitle(f"{label_b} against {label_a}" + (f" ({where})" if where else ""), fontsize=10)
    fig.tight_layout()
    name = "_".join(str(part) for part in (c.factor, c.b, "vs", c.a, *c.context.values()))
    stem = file_stem("comparison_" + "".join(ch if ch.isalnum() else "_" for ch in name))
    save_figure(fig, out / stem)
    plt.close(fig)
    caption = (
        f"{label_b} against {label_a}{f' ({where})' if where else ''}: each seed, the bootstrap distribution of "
        "the difference of means with its 95% interval, and P(a run of one beats a run of the other)"
    )
    return caption, f"{stem}.png"


def test_ppl_figure(sweep: Sweep, out: Path, reference: dict, shared) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    groups = list(configurations(sweep, sweep.finished))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(groups)), 4.5))
    jitter = np.random.default_rng(0)  # fixed: the figure regenerates byte for byte
    referenced = False
    for x, (values, group) in enumerate(groups):
        ppl = group["test/ppl"].to_numpy(float)
        ax.scatter(
            x + jitter.uniform(-0.12, 0.12, len(ppl)),
            ppl,
            s=14,
            color="tab:blue",
            alpha=0.55,
            label="one run (seed)" if x == 0 else None,
            zorder=2,
        )
        mean = describe(ppl).mean
        half = mean_half_width(ppl)
        ax.errorbar(
            x,
            mean,
            yerr=None if math.isnan(half) else half,
            fmt="o",
            color="black",
            capsize=7,
            markersize=6,
            label="mean, 95% CI" if x == 0 else None,
            zorder=3,
        )
        published = reference_ppl(reference, dict(zip(sweep.factors, values)), shared) if reference else None
        if published is not None:
            ax.hlines(
                published,
                x - 0.32,
                x + 0.32,
                colors="tab:red",
                linestyles="-",
                linewidth=2,
                label="_nolegend_" if referenced else "published",
                zorder=4,
            )
            referenced = True
    oracle = sweep.finished.get("test/oracle_ppl")
    if oracle is not None and oracle.notna().any():
        ax.axhline(
            float(oracle.dropna().iloc[0]),
            color="tab:green",
            linestyle="--",
            linewidth=1,
            label="oracle floor (the corpus's own entropy)",
        )
    ax.set_xticks(range(len(groups)), [f"{words(sweep.factors, v)}\n(n={len(g)})" for v, g in groups], fontsize=8)
    ax.set(ylabel="test perplexity", title="Test perplexity per configuration")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "test_ppl")
    plt.close(fig)
    return (
        "Test perplexity per configuration: each seed's run, the mean with its 95% confidence interval"
        + (", the published value" if referenced else "")
        + (", the oracle floor" if oracle is not None and oracle.notna().any() else ""),
        "test_ppl.png",
    )


def learning_curves_figure(sweep: Sweep, curves, out: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [
        (column, name)
        for column, name in (("train/ppl", "training"), ("val/ppl", "validation"))
        if column in curves and curves[column].notna().any()
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (column, name) in zip(axes[0], panels):
        for values, group in configurations(sweep, curves):
            epochs = sorted(group["epoch"].unique())
            by_epoch = [group.loc[group["epoch"] == e, column].dropna().to_numpy(float) for e in epochs]
            mean = np.array([v.mean() if len(v) else math.nan for v in by_epoch])
            half = np.nan_to_num(np.array([mean_half_width(v) for v in by_epoch]))
            x = np.array(epochs) + 1
            ax.plot(
                x, mean, marker="o", markersize=3, label=f"{words(sweep.factors, values)} (n={group['run'].nunique()})"
            )
            ax.fill_between(x, mean - half, mean + half, alpha=0.2)
        ax.set(xlabel="epoch", ylabel=f"{name} perplexity", title=f"{name.capitalize()} perplexity")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Mean over seeds with a 95% confidence band", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out / "learning_curves")
    plt.close(fig)
    return (
        "Training and validation perplexity per epoch: the mean over seeds with a 95% confidence band",
        "learning_curves.png",
    )


def save_figure(fig, stem: Path) -> None:
    """stem.png and stem.pdf, each written whole. PDFs carry no creation date, so a report
    regenerates byte for byte."""
    for fmt in FORMATS:
        with replacing(stem.with_suffix(f".{fmt}"), binary=True) as f:
            fig.savefig(f, format=fmt, dpi=120, metadata={"CreationDate": None} if fmt == "pdf" else None)


def search_figures(sweep: Sweep, table, best, found, dimensions, out: Path) -> list[tuple[str, str]]:
    """A search's figures (analysis/search.py): each variant's trials, the test loss against
    each searched number, and the importance of each key; (caption, PNG file) of each. The
    table is search.trials_table's, with the loss fANOVA explains as `explained_loss`."""
    import matplotlib

    matplotlib.use("Agg")
    made = [search_variants_figure(table, best, out)]
    numeric = [d for d in dimensions if not d.categorical and d.key in table]
    if numeric:
        made.append(search_marginals_figure(table, numeric, out))
    if found:
        made.append(search_importance_figure(found, out))
    return made


def search_variants_figure(table, best, out: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(table["variant"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.8 * len(variants)), 4.5))
    jitter = np.random.default_rng(0)
    values = [table[table["variant"] == v]["test/ppl"].dropna().to_numpy(float) for v in variants]
    ax.boxplot(values, positions=range(len(variants)), widths=0.5, showfliers=False)
    for x, v in enumerate(variants):
        every = table[table["variant"] == v]["test/ppl"].dropna().to_numpy(float)
        top = best[best["variant"] == v]["test/ppl"].to_numpy(float)
        ax.scatter(x + jitter.uniform(-0.15, 0.15, len(every)), every, s=10, color="tab:gray", alpha=0.6, zorder=2)
        ax.scatter(x + jitter.uniform(-0.15, 0.15, len(top)), top, s=18, color="tab:red", zorder=3)
    ax.set_xticks(range(len(variants)), [v.replace(",", "\n") for v in variants], fontsize=8)
    ax.set_yscale("log")
    ax.set(ylabel="test perplexity (log scale)", title="every trial (grey) and each variant's best (red)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "search_variants")
    plt.close(fig)
    return (
        "Test perplexity of every trial per variant, its best trials in red, a box over all trials",
        "search_variants.png",
    )


def search_marginals_figure(table, numeric, out: Path) -> tuple[str, str]:
    """The test loss against each searched number, all trials pooled: each trial a point, the
    mean of each of up to 8 equal-count bins with its 95% t interval as a band."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(numeric), figsize=(4.5 * len(numeric), 4), squeeze=False)
    chance = float(np.nanmedian(table["chance_loss"])) if table["chance_loss"].notna().any() else math.nan
    for ax, d in zip(axes[0], numeric):
        x = table[d.key].to_numpy(float)
        y = table["explained_loss"].to_numpy(float)  # as fANOVA sees it: a trial worse than chance at chance
        name = d.key
        if d.kind == "oneminuslog":  # drawn log-uniformly as 1 − value: plotted so
            x, name = 1 - x, f"1 − {d.key}"
        x, y = x[~np.isnan(y)], y[~np.isnan(y)]  # a trial that diverged has no test loss
        ax.scatter(x, y, s=10, color="tab:gray", alpha=0.6)
        order = np.argsort(x)
        bins = [chunk for chunk in np.array_split(order, min(8, max(1, len(x) // 5))) if len(chunk)]
        centres = [float(np.median(x[chunk])) for chunk in bins]
        means = [describe(y[chunk]).mean for chunk in bins]
        halves = [mean_half_width(y[chunk]) if len(chunk) > 1 else math.nan for chunk in bins]
        ax.plot(centres, means, color="tab:blue", linewidth=2)
        ax.fill_between(
            centres,
            [m - h for m, h in zip(means, halves)],
            [m + h for m, h in zip(means, halves)],
            color="tab:blue",
            alpha=0.2,
        )
        if not math.isnan(chance):
            ax.axhline(chance, color="tab:red", linestyle="--", linewidth=1, label="chance (log V)")
            ax.legend(fontsize=7)
        if d.log:
            ax.set_xscale("log")
        ax.set(xlabel=name + (" (log scale)" if d.log else ""), ylabel="test loss", title=f"test loss against {name}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "search_marginals")
    plt.close(fig)
    caption = (
        "The test loss against each searched number, every trial of every variant a point (a trial worse than "
        "chance, or diverged, at chance, as fANOVA counts it); the line is the mean of equal-count bins, the band "
        "its 95% t interval"
    )
    return caption, "search_marginals.png"


def search_importance_figure(found, out: Path) -> tuple[str, str]:
    import matplotlib.pyplot as plt

    effects = list(dict.fromkeys(" × ".join(i.keys) for i in found))
    scopes = list(dict.fromkeys(i.scope for i in found))
    width = 0.8 / len(scopes)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(effects)), 4.5))
    for s, scope in enumerate(scopes):
        by_effect = {" × ".join(i.keys): i for i in found if i.scope == scope}
        xs = [e + s * width - 0.4 + width / 2 for e, name in enumerate(effects) if name in by_effect]
        shown = [by_effect[name] for name in effects if name in by_effect]
        ax.bar(xs, [i.fraction for i in shown], width, yerr=[i.std for i in shown], capsize=2, label=scope)
    labels = [" ×\n".join(short_key(key) for key in effect.split(" × ")) for effect in effects]
    ax.set_xticks(range(len(effects)), labels, fontsize=8)
    ax.set(ylabel="fraction of the test loss's variance", ylim=(0, 1), title="fANOVA: mean over trees ± std")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "search_importance")
    plt.close(fig)
    return "Hyperparameter importance (fANOVA): each key alone and each pair beyond its keys, per variant and pooled", (
        "search_importance.png"
    )
