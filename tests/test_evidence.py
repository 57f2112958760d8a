"""The report's evidence that assumes no normal law, against known answers: the Mann–Whitney
worked example, P(better) from the U statistic and by brute force, the interquartile mean,
the bootstrap interval against Welch's where both should agree, Holm's correction of the
rank test, ASO against deepsig itself — and the report's words when the tests disagree."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from helpers import extra
from lstm_sweep.analysis.report import evidence_lines
from lstm_sweep.analysis.stats import (
    BOOTSTRAP_MIN_RUNS,
    aso_epsilon,
    compare,
    correct,
    distribution_free,
    interquartile_mean,
    one_factor_comparisons,
)


def frame(values, level) -> pd.DataFrame:
    return pd.DataFrame({"test/ppl": values, "model.cell": level, "seed": range(len(values))})


def test_the_rank_test_gives_the_worked_examples_answer():
    """scipy's documented example (Mann & Whitney's own form): U = 17 for the first sample, exact p = 0.1111."""
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    assert distribution_free(np.array(females), np.array(males))["p_rank"] == pytest.approx(0.1111, abs=5e-5)
    assert scipy_stats.mannwhitneyu(males, females).statistic == 17


def test_p_better_is_the_u_statistic_over_all_pairs_and_counts_ties_half():
    a, b = np.array([3.0, 5.0, 5.0, 9.0, 1.0, 4.0]), np.array([2.0, 5.0, 8.0, 0.5, 4.0])
    brute = np.mean([(y < x) + 0.5 * (y == x) for x in a for y in b])
    u_b_below = scipy_stats.mannwhitneyu(a, b).statistic  # a's count of pairs above b, ties half
    got = distribution_free(a, b)["p_better"]
    assert got == pytest.approx(brute) == pytest.approx(u_b_below / (len(a) * len(b)))


def test_p_better_of_a_batch_of_resamples_is_each_resamples_pairwise_count():
    """As scipy's bootstrap calls it: resamples along the first axis, of unequal sizes, ties."""
    from lstm_sweep.analysis.stats import _better

    rng = np.random.default_rng(3)
    b, a = rng.integers(0, 6, (50, 7)).astype(float), rng.integers(0, 6, (50, 11)).astype(float)
    brute = [np.mean([(y < x) + 0.5 * (y == x) for x in a[i] for y in b[i]]) for i in range(50)]
    assert _better(b, a) == pytest.approx(brute, abs=1e-12)
    assert _better(b[:1], a) == pytest.approx(
        [np.mean((b[0][:, None] < a[i]) + 0.5 * (b[0][:, None] == a[i])) for i in range(50)]
    )


def test_the_interquartile_mean_is_the_mean_of_the_middle_half():
    values = np.array([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0])
    robust = interquartile_mean(values)
    assert robust.iqm == 4.5 and robust.low < 4.5 < robust.high


def test_the_bootstrap_interval_agrees_with_welchs_on_many_normal_runs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(285, 2.0, 60), rng.normal(282, 2.8, 60)
    evidence = distribution_free(a, b)
    low, high = scipy_stats.ttest_ind(b, a, equal_var=False).confidence_interval()
    assert evidence["boot_low"] == pytest.approx(low, rel=0.1) and evidence["boot_high"] == pytest.approx(high, rel=0.1)
    assert evidence["resamples"] == 9999
    again = distribution_free(a, b)  # seeded: a report regenerates number for number
    assert again["boot_low"] == evidence["boot_low"] and again["p_better_low"] == evidence["p_better_low"]


def test_no_bootstrap_interval_below_its_minimum_runs():
    few = distribution_free(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 4.0, 5.0]))
    assert BOOTSTRAP_MIN_RUNS == 5 and math.isnan(few["boot_low"]) and math.isnan(few["p_better_low"])
    assert not math.isnan(few["p_better"]) and not math.isnan(few["p_rank"])


def test_the_rank_test_is_corrected_with_welchs_by_holm():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(1)
    runs = pd.concat([frame(rng.normal(m, 1.0, 6), level) for m, level in ((0, "one"), (1.5, "two"), (0.2, "gru"))])
    comparisons = correct(one_factor_comparisons(runs, ["model.cell"], "test/ppl", "ppl"), "holm")
    expected = multipletests([c.p_rank for c in comparisons], method="holm")[1]
    assert [c.p_rank_adjusted for c in comparisons] == pytest.approx(list(expected))


def test_the_report_says_when_the_tests_disagree_and_which_way():
    """Four runs of b all beat every run of a, but one of a's is a wild outlier: the ranks
    are as clear as five runs a side can be, Welch's test is not."""
    a, b = frame([6.0, 7.0, 8.0, 9.0, 1000.0], "one"), frame([1.0, 2.0, 3.0, 4.0, 5.0], "two")
    c = correct([compare(a, b, "test/ppl", "model.cell", "one", "two", {}, "ppl")], "holm")[0]
    assert c.p_adjusted > 0.05 and c.p_rank_adjusted < 0.05 and c.p_better == 1.0
    (line,) = evidence_lines([c])
    assert "**the tests disagree** at α = 0.05: the rank test finds a difference, Welch does not" in line
    assert "the verdict rests on the ranks alone" in line
    agreeing = correct(
        [compare(frame([6.0, 7.0, 8.0, 9.0, 10.0], "one"), b, "test/ppl", "model.cell", "one", "two", {}, "ppl")],
        "holm",
    )[0]
    assert evidence_lines([agreeing])[0].startswith("model two vs model one: both tests find model two better")


@pytest.mark.slow
@pytest.mark.extras
def test_aso_is_deepsigs_own_epsilon_with_lower_perplexity_as_better():
    deepsig = extra("deepsig", "stats")
    rng = np.random.default_rng(2)
    worse, better = rng.normal(300, 3, 10), rng.normal(290, 3, 10)
    epsilon = distribution_free(worse, better)["aso_epsilon"]
    assert epsilon == pytest.approx(deepsig.aso(-better, -worse, seed=20210101, show_progress=False), abs=1e-12)
    assert epsilon < 0.2 and distribution_free(better, worse)["aso_epsilon"] > 0.8


SAMPLES = np.random.default_rng(7)
ASO_CASES = {
    "three a side": (SAMPLES.normal(100, 1, 3), SAMPLES.normal(100.5, 1, 3)),
    "unequal sizes": (SAMPLES.normal(100, 2, 7), SAMPLES.normal(99, 1, 23)),
    "ties": (np.round(SAMPLES.normal(100, 1, 12)), np.round(SAMPLES.normal(100.3, 1, 9))),
    "overlapping": (SAMPLES.normal(100, 5, 40), SAMPLES.normal(100, 5, 40)),
    "one value": (np.full(6, 100.0), np.full(6, 100.0)),
}


@pytest.mark.extras
@pytest.mark.parametrize("case", ASO_CASES)
def test_aso_computes_deepsigs_epsilon_number_for_number(case):
    import warnings

    deepsig = extra("deepsig", "stats")
    xa, xb = ASO_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deepsig's own warnings (a zero distance)
        expected = deepsig.aso(-np.asarray(xb), -np.asarray(xa), seed=20210101, show_progress=False)
    assert aso_epsilon(xa, xb) == pytest.approx(expected, abs=1e-12)
