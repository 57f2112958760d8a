"""Random search (sweep/search.py) and its analysis (analysis/search.py): the trial list is a
pure function of the space and seed; a bad space is one line naming the key; importance on
an objective with a known answer ranks the keys as that answer does."""

import math
import re

import numpy as np
import pytest

from helpers import extra, fake_run
from lstm_sweep.errors import ConfigError
from lstm_sweep.sweep.grid import plan_grid, record_start
from lstm_sweep.sweep.search import Search, parse_search

SPACE = {
    "optim.lr": "loguniform(1e-4, 1e-1)",
    "model.hidden_size": "logint(20, 200)",
    "model.dropout": "uniform(0, 0.5)",
    "model.num_layers": "int(1, 3)",
    "optim.momentum": "oneminuslog(0.01, 1)",
    "optim._target_": "choice(torch.optim.Adam, torch.optim.NAdam)",
}


def search(trials=20, seed=0, method="random", space=None) -> Search:
    parsed = parse_search({"trials": trials, "seed": seed, "method": method, "space": space or SPACE})
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("method", ["random", "sobol", "lhs"])
def test_trials_are_a_pure_function_of_space_seed_and_method(method):
    first, again = search(method=method).points(), search(method=method).points()
    assert first == again
    assert search(seed=1, method=method).points() != first
    for trial in first:
        assert 1e-4 <= trial["optim.lr"] <= 1e-1
        assert isinstance(trial["model.hidden_size"], int) and 20 <= trial["model.hidden_size"] <= 200
        assert 0 <= trial["model.dropout"] <= 0.5
        assert trial["model.num_layers"] in (1, 2, 3)
        assert 0 <= trial["optim.momentum"] <= 0.99
        assert trial["optim._target_"] in ("torch.optim.Adam", "torch.optim.NAdam")


@pytest.mark.parametrize("method", ["random", "sobol"])
def test_more_trials_keep_the_first_ones(method):
    assert search(40, method=method).points()[:20] == search(20, method=method).points()
    assert search(40, method=method).same_trials(search(20, method=method).record()) == ""


def test_latin_hypercube_cannot_grow_and_a_changed_space_is_named():
    assert "trial count" in search(40, method="lhs").same_trials(search(20, method="lhs").record())
    other = search(space={**SPACE, "optim.lr": "loguniform(1e-5, 1e-1)"})
    assert "space" in other.same_trials(search().record())
    assert "seed" in search(seed=3).same_trials(search().record())
    # the same keys in another order draw each from another coordinate: other trials
    reordered = search(space=dict(reversed(list(SPACE.items()))))
    assert reordered.points()[0] != search().points()[0] and "space" in reordered.same_trials(search().record())
    assert "fewer trials" in search(10).same_trials(search(20).record())


def test_draws_follow_their_distributions():
    """10,000 draws: a log-uniform key spends a third of its draws in each decade, a log-integer
    key's draws of 20..200 put half below √(20·201) ≈ 63, a choice is even."""
    points = search(10_000, space=SPACE).points()
    lr = np.log10([p["optim.lr"] for p in points])
    assert np.histogram(lr, bins=[-4, -3, -2, -1])[0] / len(lr) == pytest.approx([1 / 3] * 3, abs=0.02)
    hidden = np.array([p["model.hidden_size"] for p in points])
    assert np.mean(hidden < math.sqrt(20 * 201)) == pytest.approx(0.5, abs=0.02)
    assert hidden.min() == 20 and hidden.max() == 200
    assert np.mean([p["optim._target_"] == "torch.optim.Adam" for p in points]) == pytest.approx(0.5, abs=0.02)
    one_minus = np.log10([1 - p["optim.momentum"] for p in points])
    assert np.histogram(one_minus, bins=[-2, -1, 0])[0] / len(points) == pytest.approx([0.5, 0.5], abs=0.02)
    layers = np.bincount([p["model.num_layers"] for p in points])[1:] / len(points)
    assert layers == pytest.approx([1 / 3] * 3, abs=0.02)


def test_values_survive_hydra_and_yaml():
    """Each trial's overrides, parsed as Hydra parses a job's, give back the trial's values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = search(space={**SPACE, "data.unk_token": "choice('<unk>', 'a,b', x=y, '1', 1, 0.5, true)"})
    assert found.space[-1].choices == ("<unk>", "a,b", "x=y", "1", 1, 0.5, True)
    parser = OverridesParser.create()
    for values, overrides in zip(found.points(), found.overrides()):
        parsed = {o.key_or_group: o.value() for o in parser.parse_overrides(overrides)}
        assert parsed == values


@pytest.mark.parametrize(
    ("node", "names"),
    [
        ({"trials": 0, "space": SPACE}, "hydra.sweeper.search.trials"),
        ({"trials": 4, "space": {"optim.lr": "loguniform(0.1, 0.01)"}}, "optim.lr"),
        ({"trials": 4, "space": {"optim.lr": "loguniform(0, 0.1)"}}, "above 0"),
        ({"trials": 4, "space": {"optim.lr": "gaussian(0, 1)"}}, "unknown distribution 'gaussian'"),
        ({"trials": 4, "space": {"optim.lr": "uniform(0)"}}, "low and a high bound"),
        ({"trials": 4, "space": {"optim.lr": "uniform(a, b)"}}, "numbers"),
        ({"trials": 4, "space": {"model.hidden_size": "int(1.5, 3)"}}, "integers"),
        ({"trials": 4, "space": {"seed": "int(0, 9)"}}, "seed cannot be searched"),
        ({"trials": 4, "method": "grid", "space": SPACE}, "method"),
        ({"trials": 4, "space": {}}, "space"),
        ({"trials": 4, "space": SPACE, "trails": 3}, "trails"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_key(node, names):
    with pytest.raises(ConfigError, match=re.escape(names)) as err:
        parse_search(node)
    assert "\n" not in str(err.value)


def test_a_searched_key_set_on_the_grid_is_refused():
    with pytest.raises(ConfigError, match=r"optim\.lr is set on the grid and by hydra\.sweeper\.search"):
        plan_grid({"optim.lr": "0.1,0.01"}, [], search())
    with pytest.raises(ConfigError, match="trial"):
        plan_grid({}, ["trial=1,2"], search())
    plan = plan_grid({"model.cell": "one,two", "seed": "range(3)"}, [], search(5))
    assert plan.swept == ["trial", "model.cell", "seed"] and plan.runs == 30


def fake_search_sweep(folder, objective, trials=40, variants=("vanilla", "np"), reference=None) -> None:
    """A finished search over lr (log), hidden size and a key of no effect, its test loss
    `objective(values, variant)`: fake runs, written as the sweeper lays them out."""
    space = {
        "optim.lr": "loguniform(1e-4, 1e-1)",
        "model.hidden_size": "logint(20, 200)",
        "model.dropout": "uniform(0, 0.5)",
    }
    found = search(trials, seed=7, space=space)
    arguments = [f"model.cell={','.join(variants)}", "seed=0"]
    record_start(folder, "odyssey-test", plan_grid({}, arguments, found), [])
    for trial, (values, overrides) in enumerate(zip(found.points(), found.overrides())):
        for variant in variants:
            loss = objective(values, variant)
            fake_run(
                folder / f"cell={variant},trial={trial}",
                config={"seed": 0, "trial": trial, "reference": reference},
                overrides=[f"trial={trial}", f"model.cell={variant}", "seed=0", *overrides],
                scalars={"test/loss": loss, "test/ppl": math.exp(loss), "val/ppl": math.exp(loss)},
            )


def needs_fanova() -> None:
    extra("sklearn", "importance")


def lr_matters(values, variant):
    """The loss is a bowl in log10(lr) around 1e-2.5 (~98% of its variance); hidden size matters
    a little (~2%), dropout not at all."""
    return (
        4.0
        + (math.log10(values["optim.lr"]) + 2.5) ** 2
        + 0.05 * math.log10(values["model.hidden_size"])
        + (0.3 if variant == "np" else 0.0)
    )


FINDINGS = [
    {"kind": "none_better", "text": "none better"},
    {"kind": "worst", "variants": ["np"], "text": "np worst"},
    {"kind": "no_worse", "variants": ["cifg", "np"], "text": "cifg and np cost nothing"},
    {"kind": "importance_order", "keys": ["optim.lr", "model.hidden_size"], "text": "lr, then hidden"},
    {"kind": "small_interactions", "below": 0.1, "text": "barely interact"},
    {"kind": "worst", "variants": ["nfg"], "text": "nfg worst"},
    {"kind": "astrology", "text": "unknown"},
]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished search of 30 trials × (vanilla, np, cifg) on lr_matters, with a paper's
    findings to test: read only."""
    folder = tmp_path_factory.mktemp("searched") / "s"
    reference = {"source": "a paper", "findings": FINDINGS}
    fake_search_sweep(folder, lr_matters, trials=30, variants=("vanilla", "np", "cifg"), reference=reference)
    return folder


def test_importance_ranks_a_known_answer(searched):
    needs_fanova()
    from lstm_sweep.analysis.read import read_sweep
    from lstm_sweep.analysis.search import importances, trials_table

    sweep = read_sweep(searched)
    assert sweep.factors == ["model.cell"] and sweep.searched == ["optim.lr", "model.hidden_size", "model.dropout"]
    found, note = importances(sweep, trials_table(sweep))
    assert note == ""
    for scope in ("cell=vanilla", "cell=np"):
        main = {i.keys[0]: i.fraction for i in found if i.scope == scope and len(i.keys) == 1}
        assert main["optim.lr"] > 0.8  # nearly all the variance
        assert main["model.dropout"] < 0.05  # none of it
        assert main["optim.lr"] > main["model.hidden_size"] > main["model.dropout"]
    pooled = {i.keys: i for i in found if i.scope == "pooled"}
    assert pooled[("optim.lr",)].fraction > pooled[("variant",)].fraction > pooled[("model.dropout",)].fraction
    assert pooled[("optim.lr", "model.dropout")].fraction < 0.05  # an additive objective: no interaction
    assert all(i.std >= 0 and 0 < i.trees <= 64 for i in found)


def test_search_report_says_what_it_found(searched, tmp_path):
    needs_fanova()
    from lstm_sweep.analysis.report import write_report

    _, out = write_report(searched, tmp_path / "report")
    text = (out / "REPORT.md").read_text()
    assert "## Search" in text and "Factors: cell, over trials." in text
    for stem in ("search_variants", "search_welch", "search_importance"):
        assert (out / f"{stem}.md").exists() and (out / f"{stem}.csv").exists() and (out / f"{stem}.tex").exists()
    for figure in ("search_variants", "search_marginals", "search_importance"):
        assert (out / f"{figure}.png").exists() and (out / f"{figure}.pdf").exists()
    # np is 0.3 nats worse everywhere, cifg no different: the test says so, and lr explains the most
    assert "cell=np's best trials are 2" in text and "worse than cell=vanilla's" in text
    assert "significant difference" in text.split("cell=np's best trials are")[1].splitlines()[0]
    assert "no significant difference" in text.split("cell=cifg's best trials are")[1].splitlines()[0]
    assert "variance of the test loss explained (pooled): optim.lr" in text
    assert (out / "search_trials.csv").read_text().count("\n") == 91
    assert "with 3 best trials a variant, Welch's test finds a difference with 80% power only from 3.1" in text
    assert "one seed a trial" in text
    said = text.split("### Against a paper")[1]
    assert "*none better* — **not contradicted**" in said and "*np worst* — **holds**" in said
    assert "a test that does not reject is no test of equivalence" in said
    assert "*cifg and np cost nothing* — **does not hold**: cell=cifg +0.0 ppl" in said
    assert "*barely interact* — **holds**" in said
    assert "*nfg worst* — **cannot be tested**: the search has no variant nfg" in said
    assert "*unknown* — **cannot be tested**: unknown kind 'astrology'" in said
    assert "*lr, then hidden* — **holds**: main effects (pooled): optim.lr 9" in said


def test_a_run_with_another_trials_values_is_damaged(tmp_path):
    from lstm_sweep.analysis.read import read_sweep

    fake_search_sweep(tmp_path / "s", lr_matters, trials=3, variants=("vanilla",))
    overrides = tmp_path / "s" / "cell=vanilla,trial=1" / ".hydra" / "overrides.yaml"
    lines = overrides.read_text().replace("- optim.lr=", "- optim.lr=9").splitlines()
    overrides.write_text("\n".join(lines) + "\n")
    runs = read_sweep(tmp_path / "s").runs.set_index("run")
    assert runs.loc["cell=vanilla,trial=1", "status"] == "damaged"
    assert "trial 1's" in runs.loc["cell=vanilla,trial=1", "error"]
    assert (runs.drop("cell=vanilla,trial=1")["status"] == "finished").all()


def test_a_trial_worse_than_chance_counts_at_chance(tmp_path):
    """A diverged trial (perplexity 10⁶ over a 100-word vocabulary) enters fANOVA at log 100, a
    run without vocab.json as it is."""
    import json

    import pandas as pd

    from lstm_sweep.analysis.search import chance_loss, explained

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "vocab.json").write_text(json.dumps({"unk": "<unk>", "itos": [str(i) for i in range(100)]}))
    assert chance_loss(tmp_path / "run") == pytest.approx(math.log(100))
    assert math.isnan(chance_loss(tmp_path / "missing"))
    table = pd.DataFrame(
        {
            "test/loss": [4.0, math.log(1e6), 20.0, math.nan],
            "chance_loss": [math.log(100)] * 2 + [math.nan, math.log(100)],
            "diverged": [0, 0, 0, 1],
        }
    )
    assert explained(table).tolist() == pytest.approx([4.0, math.log(100), 20.0, math.log(100)])


def test_diverged_trials_count_at_chance_and_odd_values_read(tmp_path):
    """A trial that diverged (failed with DivergenceError) is a trial of the search: listed as
    diverged, counted at log V by fANOVA; a choice of floats, and a key every trial drew alike
    (one trial), do not break the report."""
    needs_fanova()
    import json

    from lstm_sweep.analysis.read import read_sweep
    from lstm_sweep.analysis.report import write_report
    from lstm_sweep.analysis.search import DIVERGED, explained, importances, trials_table

    folder = tmp_path / "s"
    space = {"optim.lr": "loguniform(1e-4, 1e-1)", "model.dropout": "choice(0, 0.25, 0.5)"}
    found = search(12, seed=3, space=space)
    record_start(folder, "odd", plan_grid({}, ["seed=0"], found), [])
    for trial, (values, overrides) in enumerate(zip(found.points(), found.overrides())):
        run = folder / f"trial={trial}"
        diverged = trial == 5
        loss = 4.0 + (math.log10(values["optim.lr"]) + 2.5) ** 2 + values["model.dropout"]
        fake_run(
            run,
            config={"seed": 0, "trial": trial},
            overrides=[f"trial={trial}", "seed=0", *overrides],
            status={"status": "failed", "error": "DivergenceError: training loss became nan"}
            if diverged
            else "finished",
            scalars=None if diverged else {"test/loss": loss, "test/ppl": math.exp(loss), "val/ppl": math.exp(loss)},
        )
        (run / "vocab.json").write_text(json.dumps({"unk": "<unk>", "itos": [str(i) for i in range(1000)]}))
    sweep = read_sweep(folder)
    table = trials_table(sweep)
    assert len(table) == 12 and table[DIVERGED].tolist() == [int(t == 5) for t in range(12)]
    assert explained(table)[5] == pytest.approx(math.log(1000))
    effects, note = importances(sweep, table)
    assert note == "" and {i.keys for i in effects} >= {("optim.lr",), ("model.dropout",)}
    _, out = write_report(folder, tmp_path / "report")
    assert "| all       | 12       | 1          |" in (out / "REPORT.md").read_text()
    one = search(1, space={"optim.lr": "loguniform(1e-4, 1e-1)"})
    record_start(tmp_path / "one", "one", plan_grid({}, ["seed=0"], one), [])
    fake_run(
        tmp_path / "one" / "trial=0",
        config={"seed": 0, "trial": 0},
        overrides=["trial=0", "seed=0", *one.overrides()[0]],
        scalars={"test/loss": 5.0, "test/ppl": math.exp(5.0), "val/ppl": math.exp(5.0)},
    )
    _, out = write_report(tmp_path / "one", tmp_path / "report_one")
    assert "Not shown: importance needs at least 8 finished trials" in (out / "REPORT.md").read_text()


def test_without_scikit_learn_the_report_names_the_extra_and_writes_the_rest(searched, tmp_path, monkeypatch):
    import sys

    from lstm_sweep.analysis.report import write_report

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    _, out = write_report(searched, tmp_path / "report")
    text = (out / "REPORT.md").read_text()
    assert (
        'Not shown: hyperparameter importance needs the importance extra: pip install "lstm-sweep[importance]".' in text
    )
    assert (out / "search_welch.md").exists() and (out / "search_marginals.png").exists()
    assert not (out / "search_importance.md").exists()
