"""The report's figures, each as PNG (for REPORT.md) and PDF (for a paper):

- test perplexity per configuration: every seed's run as a point, the mean with its 95%
  t interval, the published reference (where the experiment names one) and the oracle
  floor (the built-in corpus's best possible perplexity) as lines, on an axis fitted to
  the data — so a 2-ppl difference shows;
- learning curves: training and validation perplexity per epoch, the mean over seeds with
  a 95% band, one line per configuration.

Configurations are labelled in words ("model two, 2 layers").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lstm_sweep.analysis.compare import configurations, read_reference, reference_ppl
from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.stats import describe, mean_half_width
from lstm_sweep.files import replacing
from lstm_sweep.naming import level_label

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
