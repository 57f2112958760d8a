"""`lstm-aggregate SWEEP_DIR [--out DIR]`: a sweep's tables, statistics, figures and REPORT.md.

Everything here is generated from the runs' logs (aggregate.py) — never edited by hand.
Means are over finished runs only, and every mean shows its n. Tables are written as
Markdown, CSV and LaTeX; figures as PNG.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lstm_sweep.analysis.read import Sweep, read_sweep
from lstm_sweep.errors import ConfigError
from lstm_sweep.naming import level_label, short_key
from lstm_sweep.analysis.stats import ALPHA, describe, format_p, one_factor_comparisons

log = logging.getLogger("lstm_sweep.analysis.report")

REPORT_FILE = "report.json"  # which sweep a report folder was generated from
_MISSING = object()  # a key a config does not have


# --------------------------------------------------------------------------- helpers

def config_label(factors: list[str], values) -> str:
    return ",".join(f"{short_key(f)}={v}" for f, v in zip(factors, values)) or "all"


def write_table(table: pd.DataFrame, out: Path, stem: str, caption: str, index: bool = False) -> str:
    """Write stem.md, stem.csv and stem.tex; return the Markdown."""
    markdown = table.to_markdown(index=index, disable_numparse=True)
    (out / f"{stem}.md").write_text(f"{caption}\n\n{markdown}\n")
    table.to_csv(out / f"{stem}.csv", index=index)
    latex = table.to_latex(index=index, caption=caption, label=f"tab:{stem}", escape=True)
    (out / f"{stem}.tex").write_text(latex)
    return markdown


def mean_std(values, digits: int) -> str:
    mean, std, n = describe(values)
    if n == 0:
        return "—"
    spread = f" ± {std:.{digits}f}" if not math.isnan(std) else ""
    return f"{mean:.{digits}f}{spread} (n={n})"


def runs_with(runs: pd.DataFrame, setting: dict, shared=None) -> pd.DataFrame:
    """The runs that used exactly these values. A key that is not a column of `runs` was
    not varied there: its one value is read from `shared` (a run's saved config), and it
    then selects every run or none — none also when there is no such value."""
    selected = pd.Series(True, index=runs.index)
    for key, value in setting.items():
        if key in runs:
            selected &= runs[key] == value
        elif shared is None or OmegaConf.select(shared, key, default=_MISSING) != value:
            return runs.iloc[0:0]
    return runs[selected]


def configurations(sweep: Sweep, runs: pd.DataFrame):
    """(values tuple, runs) per configuration, in grid order."""
    if not sweep.factors:
        yield (), runs
        return
    for values, group in runs.groupby(sweep.factors, sort=False, dropna=False):
        yield (values if isinstance(values, tuple) else (values,)), group


# --------------------------------------------------------------------------- tables

def per_configuration_tables(sweep: Sweep, out: Path) -> list[tuple[str, str]]:
    """The course report's table per configuration: one row per seed, then Average and Std."""
    sections = []
    for values, group in configurations(sweep, sweep.finished):
        label = config_label(sweep.factors, values)
        rows = [{"Times": int(r["seed"]) if "seed" in group else i + 1,
                 "The value of loss": f"{r['test/loss']:.6f}", "The value of ppl": f"{r['test/ppl']:.3f}"}
                for i, (_, r) in enumerate(group.iterrows())]
        loss_mean, loss_std, _ = describe(group["test/loss"])
        ppl_mean, ppl_std, _ = describe(group["test/ppl"])
        rows.append({"Times": "Average", "The value of loss": f"{loss_mean:.6f}", "The value of ppl": f"{ppl_mean:.3f}"})
        rows.append({"Times": "Std", "The value of loss": f"{loss_std:.6f}", "The value of ppl": f"{ppl_std:.3f}"})
        caption = (f"Test loss and perplexity of {label}, one row per seed (Times = seed); "
                   f"Std is the sample standard deviation over n = {len(group)} runs.")
        markdown = write_table(pd.DataFrame(rows), out, f"runs_{label}", caption)
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
            table = []
            for r in rows:
                entry = {short_key(row_f) if row_f else "": level_label(row_f, r) if row_f else "all runs"}
                for c in cols:
                    cell = part
                    if row_f:
                        cell = cell[cell[row_f] == r]
                    if col_f:
                        cell = cell[cell[col_f] == c]
                    entry[level_label(col_f, c) if col_f else f"test {name}"] = mean_std(cell[metric], digits)
                table.append(entry)
            suffix = config_label(outer, outer_values) if outer else ""
            stem = f"summary_test_{name}" + (f"_{suffix}" if suffix else "")
            caption = (f"Mean test {name} ± sample std (n finished runs)"
                       + (f", {suffix}" if suffix else "") + ".")
            sections.append((caption, write_table(pd.DataFrame(table), out, stem, caption)))
    return sections


def statistics_table(sweep: Sweep, out: Path) -> tuple[str, list[str], list]:
    comparisons = one_factor_comparisons(sweep.finished, sweep.factors, "test/ppl", "ppl")
    rows = [{
        "compared": f"{level_label(c.factor, c.b)} − {level_label(c.factor, c.a)}",
        "where": config_label(list(c.context), c.context.values()) if c.context else "all",
        "n": f"{c.n_b} / {c.n_a}",
        "mean difference": f"{c.diff:+.3f}",
        "95% CI": f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if not math.isnan(c.ci_low) else "—",
        "Welch p": f"{c.p_welch:.2g}" if not math.isnan(c.p_welch) else "—",
        "paired n": c.n_pairs,
        "paired mean difference": f"{c.paired_diff:+.3f}" if not math.isnan(c.paired_diff) else "—",
        "paired p": f"{c.p_paired:.2g}" if not math.isnan(c.p_paired) else "—",
    } for c in comparisons]
    verdicts = [f"{c.verdict}" + (f" (at {config_label(list(c.context), c.context.values())})" if c.context else "")
                for c in comparisons]
    if not rows:
        return "", [], comparisons
    caption = ("Test perplexity, every pair of configurations that differ in one factor: mean difference "
               "with Welch's 95% confidence interval and p-value, and the paired-by-seed t-test.")
    return write_table(pd.DataFrame(rows), out, "statistics_test_ppl", caption), verdicts, comparisons


# --------------------------------------------------------------------------- figures

def figures(sweep: Sweep, out: Path) -> list[tuple[str, str]]:
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
            by_epoch = group.groupby("epoch")["val/ppl"].agg(["mean", "std", "count"])
            label = config_label(sweep.factors, values)
            ax.plot(by_epoch.index + 1, by_epoch["mean"], marker="o", label=f"{label} (n={by_epoch['count'].max()})")
            ax.fill_between(by_epoch.index + 1, by_epoch["mean"] - by_epoch["std"].fillna(0),
                            by_epoch["mean"] + by_epoch["std"].fillna(0), alpha=0.2)
        ax.set(xlabel="epoch", ylabel="validation perplexity", title="Validation perplexity, mean ± 1 std over seeds")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "val_ppl.png", dpi=120)
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
        fig.savefig(out / "test_ppl.png", dpi=120)
        plt.close(fig)
        made.append(("Test perplexity per configuration, mean with ±1 std error bars", "test_ppl.png"))
    return made


# --------------------------------------------------------------------------- reference

def newest_config(sweep: Sweep):
    """The newest finished run's saved config (a sweep completed later may carry an updated
    description), or None before any run finished."""
    if not len(sweep.finished):
        return None
    configs = [Path(p) / ".hydra" / "config.yaml" for p in sweep.finished["path"]]
    return OmegaConf.load(max(configs, key=lambda c: c.stat().st_mtime))


def read_reference(config) -> dict:
    """The experiment's `reference:` block in a run's saved config (None: no run finished)."""
    if config is None:
        return {}
    return OmegaConf.to_container(config.get("reference") or OmegaConf.create({}))


def reference_setting(entry: dict) -> dict:
    """The configuration a reference result is for: its keys other than the metrics."""
    return {k: v for k, v in entry.items() if not k.startswith("test/")}


def reference_ppl(reference: dict, configuration: dict, shared) -> float | None:
    """The reference's test perplexity for this configuration, if it names one."""
    one_run = pd.DataFrame([configuration])  # matched exactly as the runs are
    for entry in reference.get("results", []):
        if len(runs_with(one_run, reference_setting(entry), shared)):
            return entry["test/ppl"]
    return None


def reference_section(sweep: Sweep, out: Path, comparisons, shared) -> str:
    """Compare with published means, if the experiment's config names them (`reference:`).
    `shared`: the sweep's newest saved config, which also holds the keys it did not vary."""
    finished = sweep.finished
    reference = read_reference(shared)
    if not reference.get("results"):
        return ""
    lines = [f"Reference: {reference.get('source', 'published results')}.", ""]
    rows, gaps = [], []  # gaps: (relative gap, reference inside our CI?) per configuration
    for entry in reference["results"]:
        setting = reference_setting(entry)
        part = runs_with(finished, setting, shared)
        mean, std, n = describe(part["test/ppl"])
        ref = entry["test/ppl"]
        half = math.nan
        if n >= 2:
            from scipy import stats as st
            half = st.t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n)
        if n:
            gaps.append(((mean - ref) / ref, bool(abs(mean - ref) <= half) if n >= 2 else None))
        rows.append({
            "configuration": ", ".join(level_label(k, v) for k, v in setting.items()),
            "reference test ppl": f"{ref:.3f}",
            "ours (mean ± std, n)": mean_std(part["test/ppl"], 3),
            "ours − reference": f"{mean - ref:+.3f} ({(mean - ref) / ref:+.1%})" if n else "—",
            "reference inside our 95% CI": ("yes" if abs(mean - ref) <= half else "no") if n >= 2 else "—",
            "reference test loss": f"{entry['test/loss']:.6f}" if "test/loss" in entry else "—",
            "ours test loss": mean_std(part["test/loss"], 6),
        })
    lines.append(write_table(pd.DataFrame(rows), out, "reference_comparison",
                             "Our means beside the reference's (test perplexity and loss)."))
    if gaps:
        worst = max(abs(g) for g, _ in gaps)
        lines += ["", f"Largest relative gap: {worst:.1%} ({'within' if worst <= 0.05 else 'outside'} 5%)."]
        outside = [inside is False for _, inside in gaps]
        if all(g < 0 for g, _ in gaps) or all(g > 0 for g, _ in gaps):
            side = "below" if gaps[0][0] < 0 else "above"
            lines.append((f"All {len(gaps)} of our means lie" if len(gaps) > 1 else "Our mean lies")
                         + f" {side} the reference's"
                         + (", each outside our 95% confidence interval: the gap is a difference of set-up, "
                            "not seed noise." if all(outside) else "."))
    claims = reference.get("claims", [])
    if claims:
        lines += ["", "The reference's conclusions, tested on our runs (Welch's t-test, α = 0.05):", ""]
        for claim in claims:
            lines.append(f"- *{claim['text']}* — " + judge_claim(claim, comparisons))
    notes = reference.get("notes", [])
    if notes:
        lines += ["", "Known differences between the reference's set-up and ours:", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def judge_claim(claim: dict, comparisons) -> str:
    factor, better, worse = claim["factor"], claim["better"], claim["worse"]
    found = []
    for c in comparisons:
        if c.factor != factor or {c.a, c.b} != {better, worse}:
            continue
        # diff is b - a; the claim holds if `worse` has the higher perplexity.
        diff_worse_minus_better = c.diff if c.b == worse else -c.diff
        where = config_label(list(c.context), c.context.values()) if c.context else "all runs"
        if math.isnan(c.p_welch):
            found.append(f"{where}: too few runs to test")
        elif c.p_welch < ALPHA and diff_worse_minus_better > 0:
            found.append(f"{where}: **holds** ({diff_worse_minus_better:+.1f} ppl, {format_p(c.p_welch)})")
        elif c.p_welch < ALPHA:
            found.append(f"{where}: **reversed** ({diff_worse_minus_better:+.1f} ppl, {format_p(c.p_welch)})")
        else:
            found.append(f"{where}: **not supported**, within seed noise "
                         f"({diff_worse_minus_better:+.1f} ppl, {format_p(c.p_welch)})")
    return "; ".join(found) if found else "not testable in this sweep"


# --------------------------------------------------------------------------- variations

def variations_section(sweep: Sweep, out: Path, variations: list[tuple[str, Sweep]], shared) -> str:
    """The same configurations run with one thing changed, each compared with ours by Welch's test."""
    from lstm_sweep.analysis.stats import compare

    lines = []
    reference = read_reference(shared)
    for label, other in variations:
        rows, verdicts = [], []
        other_shared = newest_config(other)
        for values, ours in configurations(sweep, sweep.finished):
            context = dict(zip(sweep.factors, values))
            ref = reference_ppl(reference, context, shared)
            theirs = runs_with(other.finished, context, other_shared)
            c = compare(ours, theirs, "test/ppl", "variation", "this sweep", label, context, "ppl")
            where = config_label(sweep.factors, values)
            rows.append({"configuration": where, "this sweep": mean_std(ours["test/ppl"], 3),
                         label: mean_std(theirs["test/ppl"], 3),
                         "difference": f"{c.diff:+.3f}" if len(theirs) else "—",
                         "95% CI": f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if not math.isnan(c.ci_low) else "—",
                         "Welch p": f"{c.p_welch:.2g}" if not math.isnan(c.p_welch) else "—"})
            if ref is not None:
                rows[-1]["reference"] = f"{ref:.3f}"
                rows[-1][f"{label} − reference"] = (f"{(c.mean_b - ref) / ref:+.1%}" if len(theirs) else "—")
            verdicts.append(f"{where}: " + c.verdict.replace("variation=", ""))
        stem = "variation_" + "".join(ch if ch.isalnum() else "_" for ch in label)
        caption = f"Test perplexity of this sweep and of the same configurations with {label} ({other.folder})."
        lines += [f"### {label}", "", *[f"- {v}" for v in verdicts], "",
                  write_table(pd.DataFrame(rows), out, stem, caption), ""]
        lines += [f"Started as: `{s['command']}`" for s in other.info.get("starts", [])[:1]] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- REPORT.md

def provenance(sweep: Sweep) -> list[str]:
    import matplotlib
    import pytorch_lightning
    import scipy
    import torch

    lines = []
    for start in sweep.info.get("starts", []):
        lines.append(f"- `{start['command']}` — started {start['date']} on {start['machine']}; "
                     + ", ".join(f"{k} {v}" for k, v in start.get("versions", {}).items()))
    if not lines:
        lines.append(f"- sweep folder `{sweep.folder}` (not started by lstm-sweep: no {sweep.folder / 'sweep.json'})")
    lines.append(f"- report generated {dt.datetime.now().astimezone().isoformat(timespec='seconds')} on "
                 f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs) with python "
                 f"{platform.python_version()}, torch {torch.__version__}, pytorch_lightning "
                 f"{pytorch_lightning.__version__}, pandas {pd.__version__}, scipy {scipy.__version__}, "
                 f"matplotlib {matplotlib.__version__}")
    return lines


def run_counts(sweep: Sweep) -> str:
    rows = []
    for values, group in configurations(sweep, sweep.runs):
        counts = group["status"].value_counts()
        rows.append({"configuration": config_label(sweep.factors, values), "finished": int(counts.get("finished", 0)),
                     "failed": int(counts.get("failed", 0)),
                     "unfinished": int(len(group) - counts.get("finished", 0) - counts.get("failed", 0))})
    return pd.DataFrame(rows).to_markdown(index=False)


def resolve_out(sweep: Sweep, out: Path | None) -> Path:
    """reports/<name>, unless that folder holds another sweep's report (then name_<sweep>)."""
    if out is not None:
        return out
    name = sweep.info.get("name") or sweep.folder.name
    out = Path("reports") / name
    marker = out / REPORT_FILE
    if marker.exists() and json.loads(marker.read_text()).get("sweep") != str(sweep.folder.resolve()):
        out = Path("reports") / f"{name}_{sweep.folder.name}"
    return out


def write_report(sweep_dir: str | Path, out: str | Path | None = None,
                 variations: list[tuple[str, str | Path]] = ()) -> tuple[Sweep, Path]:
    """Write the report of `sweep_dir`; `variations` are (label, sweep folder) of the same
    grid run with one thing changed, to compare with."""
    sweep = read_sweep(sweep_dir)
    others = [(label, read_sweep(folder)) for label, folder in variations]
    out = resolve_out(sweep, Path(out) if out else None)
    out.mkdir(parents=True, exist_ok=True)
    sweep.runs.to_csv(out / "runs.csv", index=False)
    sweep.epochs.to_csv(out / "epochs.csv", index=False)

    summaries = summary_tables(sweep, out)
    stats_md, verdicts, comparisons = statistics_table(sweep, out)
    per_config = per_configuration_tables(sweep, out)
    made = figures(sweep, out)
    shared = newest_config(sweep)
    reference_md = reference_section(sweep, out, comparisons, shared)
    variations_md = variations_section(sweep, out, others, shared)

    name = sweep.info.get("name") or sweep.folder.name
    finished, total = len(sweep.finished), len(sweep.runs)
    parts = [f"# Sweep report: {name}", "",
             "Generated by `lstm-aggregate` from the runs' TensorBoard event files and saved configs; "
             "do not edit by hand — regenerate it.", "",
             "## Provenance", "", *provenance(sweep), "",
             f"Factors: {', '.join(short_key(f) for f in sweep.factors) or 'none'}"
             + (", over seeds" if "seed" in sweep.runs else "") + f". Runs: {finished} finished of {total}.", "",
             run_counts(sweep), ""]
    problems = sweep.runs[sweep.runs["status"] != "finished"]
    if len(problems):
        parts += ["Runs excluded from every mean:", ""]
        parts += [f"- `{r['run']}`: {r['status']}" + (f" — {r['error']}" if r["error"] else "")
                  for _, r in problems.iterrows()]
        parts.append("")
    parts += ["## Results", ""]
    for caption, markdown in summaries:
        parts += [caption, "", markdown, ""]
    if verdicts:
        parts += ["## Statistics", "", *[f"- {v}" for v in verdicts], "",
                  f"No correction is made for the {len(verdicts)} comparisons; a verdict is Welch's at "
                  f"α = {ALPHA}. Lower perplexity is better.", "", stats_md, ""]
    if reference_md:
        parts += ["## Against the reference", "", reference_md, ""]
    if variations_md:
        parts += ["## Variations", "", variations_md]
    if made:
        parts += ["## Figures", ""]
        parts += [f"![{caption}]({file})\n\n{caption}.\n" for caption, file in made]
    parts += ["## Runs per configuration", ""]
    for label, markdown in per_config:
        parts += [f"### {label}", "", markdown, ""]
    config_file = Path(sweep.runs.iloc[0]["path"]) / ".hydra" / "config.yaml"
    if config_file.exists():
        parts += ["## Configuration (first run)", "", "```yaml", config_file.read_text().rstrip(), "```", ""]
    (out / "REPORT.md").write_text("\n".join(parts))
    (out / REPORT_FILE).write_text(json.dumps({"sweep": str(sweep.folder.resolve())}, indent=2) + "\n")
    return sweep, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lstm-aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder (lstm-sweep's or lstm-train -m's)")
    parser.add_argument("--out", type=Path, help="the report folder (default: reports/<sweep name>)")
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=DIR",
                        help="another sweep of the same grid with one thing changed, e.g. "
                             "'without shuffling=multirun/x' (repeatable)")
    args = parser.parse_args(argv)
    variations = []
    for item in args.compare:
        label, sep, folder = item.rpartition("=")
        if not sep or not label:
            parser.error(f"--compare {item!r}: expected LABEL=DIR")
        variations.append((label, Path(folder)))
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        sweep, out = write_report(args.sweep_dir, args.out, variations)
    except ConfigError as err:
        log.error("%s", err)
        return 2
    log.info("%d runs (%d finished) -> %s", len(sweep.runs), len(sweep.finished), out / "REPORT.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
