"""The report's figures, as PNG: validation perplexity per epoch and test perplexity per configuration."""

from __future__ import annotations

import math
from pathlib import Path

from lstm_sweep.analysis.compare import configurations
from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.stats import describe, describe_by
from lstm_sweep.analysis.tables import config_label
from lstm_sweep.files import replacing


def figures(sweep: Sweep, out: Path) -> list[tuple[str, str]]:
    """Draw the figures the sweep has data for; return (caption, file name) of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    made = []
    finished = sweep.finished
    curves = sweep.epochs.merge(finished[["run", *sweep.factors]], on="run")
    if len(curves):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for values, group in configurations(sweep, curves):
            by_epoch = describe_by(group, "epoch", "val/ppl")
            label = config_label(sweep.factors, values)
            ax.plot(by_epoch.index + 1, by_epoch["mean"], marker="o", label=f"{label} (n={by_epoch['n'].max()})")
            ax.fill_between(by_epoch.index + 1, by_epoch["mean"] - by_epoch["std"].fillna(0),
                            by_epoch["mean"] + by_epoch["std"].fillna(0), alpha=0.2)
        ax.set(xlabel="epoch", ylabel="validation perplexity", title="Validation perplexity, mean ± 1 std over seeds")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, out / "val_ppl.png")
        plt.close(fig)
        made.append(("Validation perplexity per epoch, mean over seeds with a ±1 std band", "val_ppl.png"))
    if len(finished):
        labels, means, stds = [], [], []
        for values, group in configurations(sweep, finished):
            mean, std, n = describe(group["test/ppl"])
            labels.append(f"{config_label(sweep.factors, values)}\n(n={n})")
            means.append(mean)
            stds.append(0.0 if math.isnan(std) else std)
        fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(labels)), 4.5))
        ax.bar(range(len(labels)), means, yerr=stds, capsize=6, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set(ylabel="test perplexity", title="Test perplexity, mean ± 1 std over seeds")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        save_figure(fig, out / "test_ppl.png")
        plt.close(fig)
        made.append(("Test perplexity per configuration, mean with ±1 std error bars", "test_ppl.png"))
    return made


def save_figure(fig, path: Path) -> None:
    with replacing(path, binary=True) as f:
        fig.savefig(f, format=path.suffix[1:], dpi=120)
