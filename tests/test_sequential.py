"""Seeds until decided: the group-sequential design's boundaries against an independent
computation, the α it spends, and simulated sweeps — A/A comparisons with report2021's seed
noise decide no more often than α, and report2021's effect sizes are found with the power
and the average seed count the docs state."""

import math

import numpy as np
import pytest
from scipy import stats

from lstm_sweep.analysis.sequential import Design, run_looks, simulate, spent
from lstm_sweep.errors import ConfigError

COURSE = Design(alpha=0.05, round_seeds=5, max_seeds=30)
# report2021's spread per configuration (std of test ppl over its 10 seeds) and its effects
ONE_LAYER = {"sigma_a": 1.95, "sigma_b": 2.80, "effect": -2.59}  # model two − model one, 1 layer
TWO_LAYERS = {"sigma_a": 3.53, "sigma_b": 5.92, "effect": -6.36}  # at 2 layers


def test_the_first_boundary_spends_exactly_its_share_of_alpha():
    (first, *_) = COURSE.boundaries()
    t = COURSE.looks[0] / COURSE.max_seeds
    assert first == pytest.approx(stats.norm.ppf(0.975) / math.sqrt(t), rel=1e-9)  # O'Brien–Fleming's shape
    assert 2 * stats.norm.sf(first) == pytest.approx(spent(0.05, t), rel=1e-9)


def test_the_boundaries_agree_with_scipys_multivariate_normal():
    """Three looks: each boundary makes P(first crossing there) the α spent there, computed
    with scipy's multivariate normal (Genz) instead of the recursive integration."""
    design = Design(alpha=0.05, round_seeds=4, max_seeds=12)
    c = np.array(design.boundaries())
    t = np.array(design.looks) / design.max_seeds
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    inside = [1.0]
    for k in range(1, 4):
        inside.append(
            stats.multivariate_normal.cdf(
                c[:k], cov=cov[:k, :k], lower_limit=-c[:k], rng=np.random.default_rng(0), abseps=1e-6
            )
        )
    crossed = 1 - np.array(inside[1:])
    assert crossed == pytest.approx([spent(0.05, tk) for tk in t], abs=2e-5)


def test_the_z_process_crosses_as_the_spending_function_says():
    """Brownian motion observed at the looks: the rate of first crossings by each look."""
    rng = np.random.default_rng(1)
    t = np.array(COURSE.looks) / COURSE.max_seeds
    steps = rng.normal(size=(400_000, len(t))) * np.sqrt(np.diff(t, prepend=0.0))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    crossed = np.maximum.accumulate(np.abs(z) >= COURSE.boundaries(), axis=1).mean(axis=0)
    assert crossed == pytest.approx([spent(0.05, tk) for tk in t], abs=4 * math.sqrt(0.05 / 400_000))


def test_aa_sweeps_with_report2021s_noise_decide_no_more_often_than_alpha():
    """20,000 A/A sweeps, rounds of 5 seeds up to 30: the false-decision rate is at most α
    (it is 4.3%: the conservative degrees of freedom trade a little power for validity)."""
    result = simulate(0.0, ONE_LAYER["sigma_b"], COURSE, sweeps=20_000, seed=3)
    assert result["decided"] <= 0.05
    assert result["mean_seeds"] > 29  # it almost always runs to the end: nothing to find


def test_report2021s_cell_difference_is_found_with_fewer_seeds_than_a_fixed_design_needs():
    """The one-layer difference (g ≈ 1.1): power and the average seeds per configuration."""
    result = simulate(ONE_LAYER["effect"], ONE_LAYER["sigma_a"], COURSE, 20_000, seed=4, sigma_b=ONE_LAYER["sigma_b"])
    assert result["decided"] > 0.95 and result["wrong"] < 0.001
    assert 15 < result["mean_seeds"] < 22


def test_report2021s_two_layer_cell_difference_too():
    result = simulate(
        TWO_LAYERS["effect"], TWO_LAYERS["sigma_a"], COURSE, 20_000, seed=9, sigma_b=TWO_LAYERS["sigma_b"]
    )
    assert result["decided"] > 0.95 and result["wrong"] < 0.001 and 14 < result["mean_seeds"] < 21


def test_aa_sweeps_with_unequal_spreads_decide_no_more_often_than_alpha():
    result = simulate(0.0, TWO_LAYERS["sigma_a"], COURSE, 20_000, seed=10, sigma_b=TWO_LAYERS["sigma_b"])
    assert result["decided"] <= 0.05


def test_the_layer_penalty_is_decided_at_the_second_look():
    """g ≈ 16: O'Brien–Fleming spends almost nothing at the first look (p < 1.6e-6, and 5
    seeds leave 4 degrees of freedom), so even this mostly waits for the second."""
    result = simulate(48.7, 3.0, COURSE, sweeps=5_000, seed=5)
    assert result["decided"] == 1.0 and 9 < result["mean_seeds"] <= 10  # now and then at the first


def test_a_difference_well_inside_the_margin_is_shown_equivalent():
    design = Design(alpha=0.05, round_seeds=5, max_seeds=30, margin=3.0)
    result = simulate(0.0, 1.0, design, sweeps=5_000, seed=6)
    assert result["equivalent"] > 0.95 and result["mean_seeds"] < 12
    # a difference at the margin is called equivalent at most α of the time: the intervals' coverage
    at_margin = simulate(3.0, 1.0, design, sweeps=20_000, seed=7)
    assert at_margin["equivalent"] <= 0.05


def test_the_looks_replay_on_complete_rounds_only_and_stop_at_the_first_decision():
    rng = np.random.default_rng(8)
    a = dict(enumerate(rng.normal(300, 3, 30)))
    b = dict(enumerate(rng.normal(250, 3, 30)))
    decided = run_looks(a, b, COURSE)
    assert decided.outcome == "decided" and decided.seeds == 10 and len(decided.looks) == 2
    assert decided.looks[0].outcome == "continue" and decided.looks[1].high < 0  # b is lower: better
    partial = run_looks({s: v for s, v in a.items() if s < 4}, b, COURSE)
    assert partial.looks == [] and not partial.stopped  # the first round is not complete
    same = dict(enumerate(rng.normal(300, 3, 30)))
    open_ = run_looks(a, {s: v for s, v in same.items() if s < 12}, COURSE)
    assert [look.n for look in open_.looks] == [5, 10] and open_.outcome == "continue"
    assert run_looks(a, {s: v for s, v in same.items() if s < 12}, COURSE).looks == open_.looks  # deterministic


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"alpha": 0.0}, r"--alpha=0.0 must be in \(0, 1\)"),
        ({"round_seeds": 1}, r"--round-seeds=1 must be at least 2"),
        ({"round_seeds": 5, "max_seeds": 4}, r"--max-seeds=4 must be at least --round-seeds=5"),
        ({"margin": -1.0}, r"--margin=-1.0 must be a finite number > 0"),
    ],
)
def test_a_bad_design_is_one_line(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        Design(**kwargs)
