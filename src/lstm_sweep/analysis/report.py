"""A sweep's tables, statistics, figures and REPORT.md (lstm-aggregate's work).

This module writes the report document: REPORT.md's sections, the prose around the tables
(tables.py) and figures (figures.py), its provenance, and where the report folder goes.
Everything in it is generated from the runs' logs — never edited by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lstm_sweep.analysis.compare import (
    claim_findings,
    newest_config,
    read_reference,
    reference_rows,
    variation_rows,
)
from lstm_sweep.analysis.figures import comparison_figures, figures
from lstm_sweep.analysis.read import DAMAGED, Sweep, read_sweep
from lstm_sweep.analysis.search import write_search
from lstm_sweep.analysis.sequential import design_from, questions
from lstm_sweep.analysis.stats import (
    ALPHA,
    POWER,
    correct,
    format_p,
    one_factor_comparisons,
)
from lstm_sweep.analysis.tables import (
    config_label,
    context_label,
    evidence_table,
    per_configuration_tables,
    reference_table,
    robust_table,
    run_counts,
    sequential_table,
    statistics_table,
    summary_tables,
    variation_table,
    write_csv,
)
from lstm_sweep.files import write_json, write_text
from lstm_sweep.naming import level_label, short_key
from lstm_sweep.records import SEQUENTIAL_FILE, SWEEP_FILE, read_object

log = logging.getLogger("lstm_sweep.analysis.report")

REPORT_FILE = "report.json"  # which sweep a report folder was generated from


# --------------------------------------------------------------------------- reference


def reference_section(sweep: Sweep, out: Path, comparisons, shared) -> str:
    """Compare with published means, if the experiment's config names them (`reference:`).
    `shared`: the sweep's newest saved config, which also holds the keys it did not vary."""
    reference = read_reference(shared)
    if not reference.get("results"):
        return ""
    rows = reference_rows(sweep, reference, shared)
    lines = [f"Reference: {reference.get('source', 'published results')}.", "", reference_table(rows, out)]
    ran = [row for row in rows if row.ppl.n]
    if ran:
        worst = max(abs(row.relative_gap) for row in ran)
        lines += ["", f"Largest relative gap: {worst:.1%} ({'within' if worst <= 0.05 else 'outside'} 5%)."]
        if all(row.relative_gap < 0 for row in ran) or all(row.relative_gap > 0 for row in ran):
            side = "below" if ran[0].relative_gap < 0 else "above"
            lines.append(
                (f"All {len(ran)} of our means lie" if len(ran) > 1 else "Our mean lies")
                + f" {side} the reference's"
                + (
                    ", each outside our 95% confidence interval: the gap is a difference of set-up, not seed noise."
                    if all(row.inside_ci is False for row in ran)
                    else "."
                )
            )
    claims = reference.get("claims", [])
    if claims:
        holm = any(c.correction == "holm" for c in comparisons)
        lines += [
            "",
            "The reference's conclusions, tested on our runs (Welch's t-test"
            + (", after Holm's correction" if holm else "")
            + ", α = 0.05):",
            "",
        ]
        for claim in claims:
            lines.append(f"- *{claim['text']}* — " + judge_claim(claim, comparisons))
    notes = reference.get("notes", [])
    if notes:
        lines += ["", "Known differences between the reference's set-up and ours:", ""]
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def judge_claim(claim: dict, comparisons) -> str:
    """How a reference's claim fares wherever this sweep can test it, as one line."""
    found = []
    for finding in claim_findings(claim, comparisons):
        where = context_label(finding.context) if finding.context else "all runs"
        if finding.outcome == "untestable":
            found.append(f"{where}: too few runs to test")
        else:
            noise = ", within seed noise" if finding.outcome == "not supported" else ""
            found.append(f"{where}: **{finding.outcome}**{noise} ({finding.diff:+.1f} ppl, {format_p(finding.p)})")
    return "; ".join(found) if found else "not testable in this sweep"


# --------------------------------------------------------------------------- variations


def variations_section(sweep: Sweep, out: Path, variations: list[tuple[str, Sweep]], shared) -> str:
    """The same configurations run with one thing changed, each compared with ours by Welch's test."""
    lines = []
    for label, other in variations:
        rows = variation_rows(sweep, other, label, shared)
        verdicts = [
            f"{config_label(sweep.factors, row.values)}: " + row.comparison.verdict.replace("variation=", "")
            for row in rows
        ]
        lines += [
            f"### {label}",
            "",
            *[f"- {v}" for v in verdicts],
            "",
            variation_table(sweep, other, label, rows, out),
            "",
        ]
        lines += [f"Its runs, read from `{other.folder}`:", "", *start_lines(other), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- evidence


def evidence_lines(comparisons) -> list[str]:
    """Each comparison in words: what Welch's test, the rank test, the bootstrap interval and
    P(better) say together, and where they part."""
    lines = []
    for c in comparisons:
        a, b = level_label(c.factor, c.a), level_label(c.factor, c.b)
        where = f" (at {context_label(c.context)})" if c.context else ""
        if math.isnan(c.p_welch) or math.isnan(c.p_rank_adjusted):
            lines.append(f"{b} vs {a}{where}: too few runs for the tests.")
            continue
        welch, rank = c.p_adjusted < ALPHA, c.p_rank_adjusted < ALPHA
        boot_excludes = not math.isnan(c.boot_low) and (c.boot_low > 0 or c.boot_high < 0)
        tests = f"Welch {format_p(c.p_adjusted)}, rank {format_p(c.p_rank_adjusted)}"
        if welch and rank:
            found = f"both tests find {b} {'worse' if c.diff > 0 else 'better'} ({tests})"
        elif not welch and not rank:
            found = f"neither test finds a difference ({tests})"
        else:
            found = (
                f"**the tests disagree** at α = {ALPHA}: {'Welch' if welch else 'the rank test'} finds a "
                f"difference, {'the rank test' if welch else 'Welch'} does not ({tests}); the verdict rests "
                f"on {'the normal law Welch assumes' if welch else 'the ranks alone'}"
            )
        boot = (
            "—"
            if math.isnan(c.boot_low)
            else f"[{c.boot_low:+.2f}, {c.boot_high:+.2f}], which {'excludes' if boot_excludes else 'includes'} 0"
        )
        if not math.isnan(c.boot_low) and boot_excludes != welch:
            boot += f" — **unlike** Welch's test{' after the correction' if c.correction == 'holm' else ''}"
        chance = f"{c.p_better:.2f}" + (
            "" if math.isnan(c.p_better_low) else f" [{c.p_better_low:.2f}, {c.p_better_high:.2f}]"
        )
        lines.append(
            f"{b} vs {a}{where}: {found}; the bootstrap 95% interval of the difference is {boot}; a run "
            f"of {b} beats a run of {a} with probability {chance}."
        )
    return lines


def robust_caption() -> str:
    return (
        "The mean beside the interquartile mean (the mean of the middle half of the runs), each with its "
        "95% interval: where they part, a few seeds pull the mean."
    )


# --------------------------------------------------------------------------- REPORT.md


def sequential_section(sweep: Sweep, out: Path) -> str:
    """For a sweep run until decided (lstm-sweep --until-decided): how many seeds each comparison
    took and why it stopped. The question and design are sequential.json's; the looks are
    recomputed from the runs, so a run damaged since is no look."""
    path = sweep.folder / SEQUENTIAL_FILE
    if not path.exists():
        return ""
    try:
        design, metric, asked = design_from(read_object(path))
        found = questions(sweep.runs, sweep.factors, asked, metric, design)
    except (OSError, ValueError) as err:
        log.warning("%s cannot be read (%s): the report goes on without its seeds-until-decided section", path, err)
        return ""
    table = sequential_table(found, design, metric, out)
    seeds: dict[tuple, int] = {}  # a configuration in two comparisons runs the seeds the longer needs
    for q in found:
        for level in (q.a, q.b):
            key = tuple(sorted(q.config(level).items(), key=str))
            seeds[key] = max(seeds.get(key, 0), q.result.seeds)
    lines = [
        f"Asked: {', '.join(asked)} (`lstm-sweep --until-decided`), compared on {metric}; lower is better.",
        "",
        table,
        "",
        f"Runs the comparisons took: {sum(seeds.values())}, against {design.max_seeds * len(seeds)} for "
        f"{design.max_seeds} seeds of each of the {len(seeds)} configurations without stopping early. "
        "A decision is valid at its look whatever the looks before it said: the boundaries spend α over the "
        "looks, which reading a fixed-seed test after each round would not.",
    ]
    if any(not q.result.stopped for q in found):
        lines += ["", "Some comparisons are still open: the rounds were stopped before they decided."]
    return "\n".join(lines)


def start_lines(sweep: Sweep) -> list[str]:
    """Each start of the sweep as recorded: the exact command, when and where, and the settings
    its command line fixed (defaults change between versions; these do not)."""
    lines = []
    for start in sweep.info.get("starts", []):
        fixed = start.get("fixed")
        lines.append(
            f"- `{start['command']}` — started {start['date']} on {start['machine']}; "
            + ", ".join(f"{k} {v}" for k, v in start.get("versions", {}).items())
            + (f"; fixed settings: {', '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else "")
        )
    return lines or [f"- no start record: {sweep.folder / SWEEP_FILE} is missing or cannot be read"]


def provenance(sweep: Sweep, regenerate: str) -> list[str]:
    import matplotlib
    import pytorch_lightning
    import scipy
    import torch

    lines = [
        f"- runs read from `{sweep.folder}` "
        "(each start below is its command as recorded, with the folder it named then)",
        *start_lines(sweep),
        f"- regenerate this report: `{regenerate}`",
    ]
    lines.append(
        f"- report generated {dt.datetime.now().astimezone().isoformat(timespec='seconds')} on "
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs) with python "
        f"{platform.python_version()}, torch {torch.__version__}, pytorch_lightning "
        f"{pytorch_lightning.__version__}, pandas {pd.__version__}, scipy {scipy.__version__}, "
        f"matplotlib {matplotlib.__version__}"
    )
    return lines


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


def regenerate_command(sweep_dir, out: Path, variations, correction: str) -> str:
    """The lstm-aggregate command that writes this report again, whichever command wrote it."""
    return shlex.join(
        [
            "lstm-aggregate",
            str(sweep_dir),
            "--out",
            str(out),
            *[a for label, folder in variations for a in ("--compare", f"{label}={folder}")],
            *(["--correction", correction] if correction != "holm" else []),
        ]
    )


def correction_note(correction: str, comparisons: int) -> str:
    if correction == "holm":
        return (
            f"A verdict is Welch's t-test at α = {ALPHA} after Holm's correction over the {comparisons} "
            "comparisons (`lstm-aggregate --correction none` for uncorrected p-values)."
        )
    return (
        f"No correction is made for the {comparisons} comparisons (`--correction none`); a verdict is "
        f"Welch's at α = {ALPHA}."
    )


def write_report(
    sweep_dir: str | Path,
    out: str | Path | None = None,
    variations: Sequence[tuple[str, str | Path]] = (),
    correction: str = "holm",
) -> tuple[Sweep, Path]:
    """Write the report of `sweep_dir`; `variations` are (label, sweep folder) of the same
    grid run with one thing changed, to compare with; `correction` (holm or none) is made
    over the report's one-factor comparisons."""
    sweep = read_sweep(sweep_dir)
    others = [(label, read_sweep(folder)) for label, folder in variations]
    for label, other in others:
        if len(other.damaged):
            log.warning(
                "--compare %s: %d damaged runs left out: %s", label, len(other.damaged), ", ".join(other.damaged["run"])
            )
    out = resolve_out(sweep, Path(out) if out else None)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(sweep.runs, out / "runs.csv")
    write_csv(sweep.epochs, out / "epochs.csv")

    if sweep.search:  # trials differ in their settings, not only their seeds: the search's own analysis
        return sweep, write_search_report(sweep, sweep_dir, out, variations, correction)
    summaries = summary_tables(sweep, out)
    comparisons = correct(one_factor_comparisons(sweep.finished, sweep.factors, "test/ppl", "ppl"), correction)
    stats_md = statistics_table(comparisons, out)
    evidence_md = evidence_table(comparisons, out)
    robust_md = robust_table(sweep, out)
    verdicts = [c.verdict + (f" (at {context_label(c.context)})" if c.context else "") for c in comparisons]
    per_config = per_configuration_tables(sweep, out)
    shared = newest_config(sweep)
    made = figures(sweep, out, shared) + comparison_figures(sweep, comparisons, out)
    reference_md = reference_section(sweep, out, comparisons, shared)
    sequential_md = sequential_section(sweep, out)
    variations_md = variations_section(sweep, out, others, shared)

    parts = [*report_head(sweep, sweep_dir, out, variations, correction), "## Results", ""]
    for caption, markdown in summaries:
        parts += [caption, "", markdown, ""]
    if robust_md:
        parts += [robust_caption(), "", robust_md, ""]
    if verdicts:
        parts += [
            "## Statistics",
            "",
            *[f"- {v}" for v in verdicts],
            "",
            correction_note(correction, len(verdicts)) + " Lower perplexity is better. "
            "± is the half-width of the difference's 95% confidence interval; g is Hedges' g; the "
            'table\'s "seeds for 80% power" is how many seeds per configuration would detect a '
            f"difference of that size with {POWER:.0%} power.",
            "",
            stats_md,
            "",
            "### What the evidence supports, without a normal law",
            "",
            *[f"- {line}" for line in evidence_lines(comparisons)],
            "",
            evidence_md,
            "",
        ]
    if sequential_md:
        parts += ["## Seeds until decided", "", sequential_md, ""]
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
    finish_report(sweep, out, parts)
    return sweep, out


def report_head(sweep: Sweep, sweep_dir, out: Path, variations, correction: str) -> list[str]:
    """REPORT.md's title, provenance and run counts, with every run left out of the numbers and why."""
    name = sweep.info.get("name") or sweep.folder.name
    finished, total = len(sweep.finished), len(sweep.runs)
    over = [*(["trials"] if sweep.search else []), *(["seeds"] if "seed" in sweep.runs else [])]
    parts = [
        f"# Sweep report: {name}",
        "",
        "Generated by `lstm-aggregate` from the runs' TensorBoard event files and saved configs; "
        "do not edit by hand — regenerate it.",
        "",
        "## Provenance",
        "",
        *provenance(sweep, regenerate_command(sweep_dir, out, variations, correction)),
        "",
        f"Factors: {', '.join(short_key(f) for f in sweep.factors) or 'none'}"
        + (f", over {' and '.join(over)}" if over else "")
        + f". Runs: {finished} finished of {total}.",
        "",
        run_counts(sweep),
        "",
    ]
    problems = sweep.runs[sweep.runs["status"] != "finished"]
    if len(problems):
        parts += ["Runs excluded from every mean:", ""]
        parts += [
            f"- `{r['run']}`: {r['status']}" + (f" — {r['error']}" if r["error"] else "")
            for _, r in problems.iterrows()
        ]
        parts.append("")
    return parts


def finish_report(sweep: Sweep, out: Path, parts: list[str]) -> None:
    """The first readable run's config at the end, then REPORT.md and the record of its sweep."""
    readable = sweep.runs[sweep.runs["status"] != DAMAGED]  # an undamaged run's config is there and reads
    if len(readable):
        config_file = Path(readable.iloc[0]["path"]) / ".hydra" / "config.yaml"
        parts += ["## Configuration (first run)", "", "```yaml", config_file.read_text().rstrip(), "```", ""]
    write_text(out / "REPORT.md", "\n".join(parts))
    write_json(out / REPORT_FILE, {"sweep": str(sweep.folder.resolve())})


def write_search_report(sweep: Sweep, sweep_dir, out: Path, variations, correction: str) -> Path:
    """The report of a sweep that searched: its head, the search's analysis (analysis/search.py)."""
    if variations:
        log.warning("--compare is for grids over seeds; a search's report leaves it out")
    section, made = write_search(sweep, out, correction)
    parts = [*report_head(sweep, sweep_dir, out, (), correction), "## Search", "", *section]
    if made:
        parts += ["## Figures", ""]
        parts += [f"![{caption}]({file})\n\n{caption}.\n" for caption, file in made]
    finish_report(sweep, out, parts)
    return out
