"""fANOVA (analysis/fanova.py) held to Optuna's tree algorithm on the same trees, and to
objectives whose answer is known exactly."""

import numpy as np
import pytest

from helpers import extra
from lstm_sweep.analysis.fanova import TreeBoxes, fanova


class ScalarValues:
    """A scikit-learn tree whose `value` is one number a node, as Optuna 2's fANOVA reads it."""

    def __init__(self, tree):
        self.tree = tree
        self.value = tree.value.reshape(len(tree.value), -1)[:, 0]

    def __getattr__(self, name):
        return getattr(self.tree, name)


def forest(x, y):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=8, random_state=0).fit(x, y)


@pytest.mark.slow
@pytest.mark.extras
def test_tree_marginals_equal_optunas():
    extra("sklearn", "importance")
    tree_module = extra("optuna.importance._fanova._tree", "optuna")
    rng = np.random.default_rng(0)
    x = rng.uniform([-4, 20, 0], [-1, 200, 2], size=(120, 3))
    y = np.sin(x[:, 0]) + 0.01 * x[:, 1] * x[:, 0] + rng.normal(0, 0.1, 120)
    bounds = np.array([[-4, -1], [20, 200], [-0.5, 2.5]], float)
    for estimator in forest(x, y).estimators_:
        ours = TreeBoxes(estimator.tree_, bounds)
        theirs = tree_module._FanovaTree(ScalarValues(estimator.tree_), bounds)
        assert ours.variance == pytest.approx(theirs.variance, rel=1e-9)
        for columns in [(0,), (1,), (2,), (0, 1), (1, 2)]:
            expected = theirs.get_marginal_variance(np.array(columns))
            assert ours.marginal_variance(columns) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_one_key_explains_all_another_none():
    extra("sklearn", "importance")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(200, 3))
    effects = {e.columns: e for e in fanova(x, np.cos(4 * x[:, 1]), np.array([[0, 1]] * 3, float))}
    assert effects[(1,)].fraction > 0.99
    assert effects[(0,)].fraction < 0.005 and effects[(2,)].fraction < 0.005
    assert all(effects[pair].fraction < 0.005 for pair in [(0, 1), (0, 2), (1, 2)])


def test_a_product_is_an_interaction():
    """y = (x0 − ½)(x1 − ½) has no main effects at all: its variance is the pair's."""
    extra("sklearn", "importance")
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(400, 2))
    effects = {e.columns: e for e in fanova(x, (x[:, 0] - 0.5) * (x[:, 1] - 0.5), np.array([[0, 1]] * 2, float))}
    assert effects[(0, 1)].fraction > 0.7
    assert effects[(0,)].fraction < 0.15 and effects[(1,)].fraction < 0.15
