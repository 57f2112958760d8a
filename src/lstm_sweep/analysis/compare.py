"""Which runs make a configuration, and how they compare with a reference and with variations.

Returns numbers in plain records; tables.py and report.py decide how they read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.stats import (
    ALPHA,
    Comparison,
    Description,
    compare,
    describe,
    mean_half_width,
)
from lstm_sweep.fields import plain

_MISSING = object()  # a key a config does not have


def configurations(sweep: Sweep, runs: pd.DataFrame):
    """(values tuple, runs) per configuration, in grid order."""
    if not sweep.factors:
        yield (), runs
        return
    for values, group in runs.groupby(sweep.factors, sort=False, dropna=False):
        yield (values if isinstance(values, tuple) else (values,)), group


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
    return plain(config.get("reference") or OmegaConf.create({}), resolve=False)


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


@dataclass
class ReferenceRow:
    """One published result beside our runs of the same configuration."""

    setting: dict  # the configuration, {key: value}
    reference_ppl: float
    reference_loss: float | None  # None: the reference gives no test loss
    ppl: Description  # ours, over the matching finished runs
    loss: Description
    gap: float  # our mean ppl − the reference's; NaN without runs
    relative_gap: float  # gap / the reference's ppl
    inside_ci: bool | None  # the reference within our mean's 95% CI; None below two runs


def reference_rows(sweep: Sweep, reference: dict, shared) -> list[ReferenceRow]:
    """Our finished runs against each of the reference's results. `shared`: the sweep's
    newest saved config, which also holds the keys it did not vary."""
    rows = []
    for entry in reference.get("results", []):
        setting = reference_setting(entry)
        part = runs_with(sweep.finished, setting, shared)
        ppl = describe(part["test/ppl"])
        ref = entry["test/ppl"]
        gap = ppl.mean - ref
        inside = bool(abs(gap) <= mean_half_width(part["test/ppl"])) if ppl.n >= 2 else None
        rows.append(
            ReferenceRow(setting, ref, entry.get("test/loss"), ppl, describe(part["test/loss"]), gap, gap / ref, inside)
        )
    return rows


@dataclass
class ClaimFinding:
    """A reference's claim (`worse` has the higher perplexity) tested where the other factors share values."""

    context: dict  # the other factors' values; {}: all runs
    outcome: str  # "holds", "reversed", "not supported" or "untestable"
    diff: float  # mean ppl of `worse` − of `better`
    p: float  # Welch's, after the report's correction


def claim_findings(claim: dict, comparisons: list[Comparison]) -> list[ClaimFinding]:
    """The claim tested by every comparison of its two levels; [] where the sweep has none."""
    factor, better, worse = claim["factor"], claim["better"], claim["worse"]
    found = []
    for c in comparisons:
        if c.factor != factor or {c.a, c.b} != {better, worse}:
            continue
        diff = c.diff if c.b == worse else -c.diff  # c.diff is b − a
        if math.isnan(c.p_adjusted):
            outcome = "untestable"
        elif c.p_adjusted < ALPHA:
            outcome = "holds" if diff > 0 else "reversed"
        else:
            outcome = "not supported"
        found.append(ClaimFinding(c.context, outcome, diff, c.p_adjusted))
    return found


@dataclass
class VariationRow:
    """One configuration of this sweep beside the same configuration of a variation."""

    values: tuple  # the configuration's factor values, in sweep.factors order
    ours: Description  # test perplexity of this sweep's finished runs
    theirs: Description  # and of the variation's
    comparison: Comparison  # Welch's test, this sweep (a) against the variation (b)
    reference_ppl: float | None  # the reference's, if it names this configuration
    reference_gap: float  # (the variation's mean − reference) / reference; NaN without either


def variation_rows(sweep: Sweep, other: Sweep, label: str, shared) -> list[VariationRow]:
    """Every configuration of `sweep` against the same configuration of `other`, the same grid
    run with one thing changed (`label`). `shared`: `sweep`'s newest saved config."""
    reference = read_reference(shared)
    other_shared = newest_config(other)
    rows = []
    for values, ours in configurations(sweep, sweep.finished):
        context = dict(zip(sweep.factors, values))
        ref = reference_ppl(reference, context, shared)
        theirs = runs_with(other.finished, context, other_shared)
        c = compare(ours, theirs, "test/ppl", "variation", "this sweep", label, context, "ppl")
        gap = (c.mean_b - ref) / ref if ref is not None else math.nan
        rows.append(VariationRow(values, describe(ours["test/ppl"]), describe(theirs["test/ppl"]), c, ref, gap))
    return rows
