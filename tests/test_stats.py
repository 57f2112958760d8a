"""Comparisons, verdicts and table layout on hand-made numbers (no training)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats as scipy_stats

from lstm_sweep.analysis.compare import reference_ppl, runs_with
from lstm_sweep.analysis.read import Sweep
from lstm_sweep.analysis.report import judge_claim, reference_section
from lstm_sweep.analysis.stats import (
    compare,
    correct,
    describe,
    format_p,
    hedges_g,
    one_factor_comparisons,
    seeds_for_power,
)
from lstm_sweep.analysis.tables import summary_tables


def runs(values: dict) -> pd.DataFrame:
    """{(cell, layers): [ppl per seed]} → a finished-runs table."""
    rows = [
        {
            "model.cell": c,
            "model.num_layers": n,
            "seed": s,
            "test/ppl": v,
            "test/loss": math.log(v),
            "status": "finished",
        }
        for (c, n), vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_describe_uses_the_sample_standard_deviation():
    assert describe([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(np.std([1, 2, 3, 4], ddof=1)), 4)
    mean, std, n = describe([5.0])
    assert (mean, n) == (5.0, 1) and math.isnan(std)


def test_compare_matches_scipy_and_reads_as_a_verdict():
    a = runs({("one", 1): [280, 284, 279, 286, 281]})
    b = runs({("one", 2): [320, 331, 318, 327, 335]})
    c = compare(a, b, "test/ppl", "model.num_layers", 1, 2, {"model.cell": "one"}, "ppl")
    welch = scipy_stats.ttest_ind(b["test/ppl"], a["test/ppl"], equal_var=False)
    paired = scipy_stats.ttest_rel(b["test/ppl"], a["test/ppl"])
    assert c.diff == pytest.approx(44.2) and c.p_welch == pytest.approx(welch.pvalue)
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(welch.confidence_interval(0.95)))
    assert c.n_pairs == 5 and c.p_paired == pytest.approx(paired.pvalue)
    assert c.verdict == (
        f"2 layers worse than 1 layer by 44.2 ppl (95% CI ± {(c.ci_high - c.ci_low) / 2:.2g}), "
        f"g = {c.hedges_g:.2f}, p < 0.001"
    )


def test_hedges_g_is_the_pooled_standardised_difference_corrected_for_small_samples():
    # A textbook case: means 3 and 5, both sample stds sqrt(2.5); d = 2 / 1.5811; J = 1 − 3/31.
    g = hedges_g(np.array([1.0, 2, 3, 4, 5]), np.array([3.0, 4, 5, 6, 7]))
    assert g == pytest.approx(2 / math.sqrt(2.5) * (1 - 3 / 31))
    assert math.isnan(hedges_g(np.array([1.0]), np.array([2.0, 3.0])))


@pytest.mark.parametrize("g", [0.3, 0.8, 1.5, -2.0])
def test_the_seeds_for_80_percent_power_reach_it_and_one_fewer_does_not(g):
    """The oracle: a two-sided two-sample t-test's power from scipy's noncentral t."""

    def power(n: int) -> float:
        df, nc = 2 * n - 2, abs(g) * math.sqrt(n / 2)
        critical = scipy_stats.t.ppf(0.975, df)
        return scipy_stats.nct.sf(critical, df, nc) + scipy_stats.nct.cdf(-critical, df, nc)

    n = int(seeds_for_power(g))
    assert power(n) >= 0.8 and (n == 2 or power(n - 1) < 0.8)


def test_huge_and_null_effects_need_the_fewest_seeds_or_have_no_answer():
    assert seeds_for_power(10.0) == 2 and math.isnan(seeds_for_power(0.0)) and math.isnan(seeds_for_power(math.nan))


def test_effects_past_what_the_power_functions_evaluate_need_two_seeds_and_warn_nothing():
    """g = 16.4 (report2021's 2-layer penalty): statsmodels' and scipy's power there is NaN,
    and its solver warned on the report's stderr, even inside an "ignore"."""
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lstm_sweep.analysis.stats import seeds_for_power as s; "
            "print([s(g) for g in (16.37, -9.28, 5.9, 5.5, 0.3)])",
        ],
        capture_output=True,
        text=True,
    )
    assert (proc.stdout.strip(), proc.stderr) == ("[2.0, 2.0, 2.0, 3.0, 176.0]", "")


def test_holms_correction_adjusts_the_reports_p_values_together_and_redoes_the_verdicts():
    table = runs(
        {
            ("one", 1): [280, 282, 281],
            ("one", 2): [330, 333, 329],
            ("two", 1): [281, 279, 284],
            ("two", 2): [319, 321, 318],
        }
    )
    pairs = one_factor_comparisons(table, ["model.cell", "model.num_layers"], "test/ppl", "ppl")
    raw = [c.p_welch for c in pairs]
    correct(pairs, "holm")
    # Holm by hand: sort ascending, multiply the k-th smallest by (m − k), keep it monotone, cap at 1.
    order, m, running = np.argsort(raw), len(raw), 0.0
    expected = [0.0] * m
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * raw[i]))
        expected[i] = running
    assert [c.p_adjusted for c in pairs] == pytest.approx(expected)
    assert all(c.correction == "holm" and "(Holm)" in c.verdict for c in pairs)
    correct(pairs := one_factor_comparisons(table, ["model.cell", "model.num_layers"], "test/ppl", "ppl"), "none")
    assert [c.p_adjusted for c in pairs] == raw


def test_overlapping_runs_give_no_detectable_difference():
    a = runs({("one", 1): [280, 290, 275, 285]})
    b = runs({("two", 1): [283, 279, 288, 281]})
    c = compare(a, b, "test/ppl", "model.cell", "one", "two", {}, "ppl")
    assert c.verdict.startswith("model two vs model one: no detectable difference (+0.25 ppl, 95% CI ± ")
    assert c.p_welch > 0.5


def test_one_run_each_is_too_few_to_test():
    c = compare(runs({("one", 1): [280]}), runs({("two", 1): [283]}), "test/ppl", "model.cell", "one", "two", {}, "ppl")
    assert c.verdict == "model two vs model one: too few runs to test (n = 1 and 1)" and math.isnan(c.p_welch)


def test_pairs_differ_in_exactly_one_factor():
    table = runs({("one", 1): [1, 2], ("two", 1): [3, 5], ("one", 2): [5, 9], ("two", 2): [7, 8]})
    pairs = one_factor_comparisons(table, ["model.cell", "model.num_layers"], "test/ppl", "ppl")
    described = {(c.factor, c.a, c.b, tuple(c.context.items())) for c in pairs}
    assert described == {
        ("model.cell", "one", "two", (("model.num_layers", 1),)),
        ("model.cell", "one", "two", (("model.num_layers", 2),)),
        ("model.num_layers", 1, 2, (("model.cell", "one"),)),
        ("model.num_layers", 1, 2, (("model.cell", "two"),)),
    }


def test_claims_hold_fail_or_reverse_by_the_numbers():
    table = runs(
        {
            ("one", 1): [280, 282, 281],
            ("one", 2): [330, 333, 329],
            ("two", 1): [281, 279, 284],
            ("two", 2): [319, 321, 318],
        }
    )
    pairs = one_factor_comparisons(table, ["model.cell", "model.num_layers"], "test/ppl", "ppl")
    layers = judge_claim({"factor": "model.num_layers", "better": 1, "worse": 2}, pairs)
    assert layers.count("**holds**") == 2
    cells = judge_claim({"factor": "model.cell", "better": "two", "worse": "one"}, pairs)
    assert "layers=1: **not supported**, within seed noise" in cells and "layers=2: **holds**" in cells
    reversed_ = judge_claim({"factor": "model.num_layers", "better": 2, "worse": 1}, pairs)
    assert reversed_.count("**reversed**") == 2


def test_summary_rows_are_the_last_factor_columns_the_one_before(tmp_path: Path):
    table = runs({("one", 1): [280, 282], ("two", 1): [281, 279], ("one", 2): [330, 334], ("two", 2): [319, 321]})
    sweep = Sweep(tmp_path, table, pd.DataFrame(), ["model.cell", "model.num_layers"])
    summary_tables(sweep, tmp_path)
    shown = (tmp_path / "summary_test_perplexity.md").read_text()
    assert "| layers   | model one             | model two             |" in shown
    assert f"| 2 layers | 332.000 ± {np.std([330, 334], ddof=1):.3f} (n=2) |" in shown
    assert "\\begin{table}" in (tmp_path / "summary_test_perplexity.tex").read_text()
    # the CSV holds the numbers, one column each
    grid = pd.read_csv(tmp_path / "summary_test_perplexity.csv")
    assert list(grid.columns) == ["model.cell", "model.num_layers", "mean", "std", "n", "ci_low", "ci_high"]
    one_two = grid[(grid["model.cell"] == "one") & (grid["model.num_layers"] == 2)].iloc[0]
    assert (one_two["mean"], one_two["n"]) == (332.0, 2) and one_two["std"] == pytest.approx(np.std([330, 334], ddof=1))
    low, high = scipy_stats.t.interval(0.95, 1, loc=332.0, scale=scipy_stats.sem([330, 334]))
    assert (one_two["ci_low"], one_two["ci_high"]) == pytest.approx((low, high))


def test_a_reference_result_is_matched_on_the_keys_the_sweep_kept_fixed_too(tmp_path: Path, fake_run):
    """A sweep over cells at 2 layers only: the 1-layer reference has no runs of ours."""
    run = fake_run(
        tmp_path / "run",
        status=None,
        config={
            "model": {"num_layers": 2},
            "reference": {
                "results": [
                    {"model.cell": "one", "model.num_layers": 1, "test/ppl": 286.0},
                    {"model.cell": "one", "model.num_layers": 2, "test/ppl": 330.0},
                    {"model.cell": "two", "model.num_layers": 2, "test/ppl": 318.0},
                ]
            },
        },
    )
    table = runs({("one", 2): [331, 333], ("two", 2): [321, 319]}).drop(columns="model.num_layers")
    table["path"] = str(run)
    sweep = Sweep(tmp_path, table, pd.DataFrame(), ["model.cell"])
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    reference_section(sweep, tmp_path, [], config)
    ours = pd.read_csv(tmp_path / "reference_comparison.csv")
    assert ours["n"].tolist() == [0, 2, 2] and ours["mean_ppl"].tolist()[1:] == [332.0, 320.0]
    spread = f"{np.std([331, 333], ddof=1):.3f}"
    assert f"| 332.000 ± {spread} (n=2)" in (tmp_path / "reference_comparison.md").read_text()
    assert reference_ppl(config.reference, {"model.cell": "two"}, config) == 318.0
    assert reference_ppl(config.reference, {"model.cell": "two"}, None) is None  # layers unknown


@pytest.mark.parametrize("correction", ["holm", "none"])
def test_a_references_claims_are_judged_by_the_p_values_the_report_states(tmp_path: Path, correction):
    table = runs(
        {
            ("one", 1): [280, 282, 281],
            ("one", 2): [330, 333, 329],
            ("two", 1): [281, 279, 284],
            ("two", 2): [319, 321, 318],
        }
    )
    table["path"] = str(tmp_path)
    pairs = one_factor_comparisons(table, ["model.cell", "model.num_layers"], "test/ppl", "ppl")
    correct(pairs, correction)
    config = OmegaConf.create(
        {
            "reference": {
                "results": [{"model.cell": "one", "model.num_layers": 1, "test/ppl": 286.0}],
                "claims": [{"factor": "model.cell", "better": "two", "worse": "one", "text": "model two is better"}],
            }
        }
    )
    sweep = Sweep(tmp_path, table, pd.DataFrame(), ["model.cell", "model.num_layers"])
    text = reference_section(sweep, tmp_path, pairs, config)
    caption = "tested on our runs (Welch's t-test" + (", after Holm's correction" if correction == "holm" else "")
    assert caption + ", α = 0.05):" in text
    cells = [c for c in pairs if c.factor == "model.cell"]
    assert all(f"{format_p(c.p_adjusted)})" in text for c in cells)
    moved = [c for c in cells if format_p(c.p_welch) != format_p(c.p_adjusted)]
    assert len(moved) == (correction == "holm") and all(f"{format_p(c.p_welch)})" not in text for c in moved)


def test_runs_are_selected_by_their_columns_or_by_the_config_they_share():
    table = runs({("one", 1): [280, 282], ("two", 1): [281, 279]})
    assert runs_with(table, {"model.cell": "two"})["test/ppl"].tolist() == [281, 279]
    shared = OmegaConf.create({"data": {"bptt": 35}})
    assert len(runs_with(table, {"model.cell": "one", "data.bptt": 35}, shared)) == 2
    assert len(runs_with(table, {"model.cell": "one", "data.bptt": 20}, shared)) == 0
    assert len(runs_with(table, {"model.cell": "one", "data.bptt": 35})) == 0  # nothing says which


def test_the_figures_show_every_run_the_reference_and_the_oracle_as_png_and_pdf(tmp_path: Path):
    from lstm_sweep.analysis.figures import figures

    table = runs({("one", 1): [280, 284, 281], ("two", 1): [279, 283, 280]})
    table["test/oracle_ppl"] = 150.0
    table["run"] = [f"r{i}" for i in range(len(table))]
    epochs = pd.DataFrame(
        [
            {"run": r, "epoch": e, "train/ppl": 400.0 - 50 * e, "val/ppl": 420.0 - 40 * e}
            for r in table["run"]
            for e in range(3)
        ]
    )
    shared = OmegaConf.create(
        {
            "model": {"num_layers": 1},
            "reference": {"results": [{"model.cell": "one", "model.num_layers": 1, "test/ppl": 286.5}]},
        }
    )
    made = figures(Sweep(tmp_path, table, epochs, ["model.cell"]), tmp_path, shared)
    assert [file for _, file in made] == ["test_ppl.png", "learning_curves.png"]
    assert "the published value" in made[0][0] and "the oracle floor" in made[0][0]
    for stem in ("test_ppl", "learning_curves"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
    first = (tmp_path / "test_ppl.pdf").read_bytes()
    figures(Sweep(tmp_path, table, epochs, ["model.cell"]), tmp_path, shared)
    assert (tmp_path / "test_ppl.pdf").read_bytes() == first  # regenerates byte for byte
