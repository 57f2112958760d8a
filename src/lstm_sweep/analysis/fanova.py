"""Functional ANOVA (Hutter, Hoos and Leyton-Brown, ICML 2014): how much of an objective's
variance over a search space each key explains alone, and each pair beyond its keys.

A random forest (scikit-learn's) is fitted to the trials; on each tree, which cuts the
space into boxes of constant prediction, the marginal of a set of keys (the prediction
averaged over every other key, uniformly over the space) is exact and piecewise constant, so
its variance is a sum over the grid the tree's cuts make. A key's importance is its
marginal's variance as a fraction of the tree's; a pair's is its marginal's less both main
effects'; the mean and the spread over the trees are reported.

Why here and not Optuna's evaluator: the `optuna` extra is held to Optuna 2.x by
hydra-optuna-sweeper, whose fANOVA no longer runs under numpy 2, and Optuna's public
evaluator gives neither pairs nor the spread over trees. tests/test_fanova.py holds these
numbers to Optuna's own tree algorithm on the same trees.

Categorical keys are one column of category indices spread over [−½, k − ½], so the
uniform average is over the categories, as in the original fanova.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

TREES, SEED = 64, 0  # Optuna's FanovaImportanceEvaluator's forest, its seed fixed


@dataclass(frozen=True)
class Effect:
    columns: tuple[int, ...]  # one column (a main effect) or two (their interaction)
    fraction: float  # of the objective's variance: the mean over trees
    std: float  # over trees
    trees: int  # trees with any variance (the others explain nothing and are left out)


class TreeBoxes:
    """One fitted regression tree as its leaves' boxes (bounds clipped to the space) and values."""

    def __init__(self, tree, bounds: np.ndarray):
        lows, highs, values = [], [], []
        stack = [(0, bounds[:, 0].copy(), bounds[:, 1].copy())]
        while stack:
            node, low, high = stack.pop()
            left, right = tree.children_left[node], tree.children_right[node]
            if left == right:  # a leaf
                lows.append(low)
                highs.append(high)
                values.append(float(np.ravel(tree.value[node])[0]))
                continue
            feature, cut = tree.feature[node], tree.threshold[node]
            cut = min(max(cut, low[feature]), high[feature])
            left_high, right_low = high.copy(), low.copy()
            left_high[feature], right_low[feature] = cut, cut
            stack += [(left, low, left_high), (right, right_low, high)]
        width = bounds[:, 1] - bounds[:, 0]
        self.low = (np.array(lows) - bounds[:, 0]) / width  # the space as [0, 1]^d
        self.high = (np.array(highs) - bounds[:, 0]) / width
        self.values = np.array(values)
        self.share = np.prod(self.high - self.low, axis=1)  # each leaf's part of the space
        self.mean = float(self.share @ self.values)
        self.variance = float(self.share @ (self.values - self.mean) ** 2)

    def marginal_variance(self, columns: tuple[int, ...]) -> float:
        """The variance, over the space, of the tree's prediction averaged over every column
        but `columns` (one or two): constant on each cell of the grid the tree's cuts make on
        them, where it is the sum of the leaves holding the cell, each weighted by its share of
        the other columns."""
        others = [c for c in range(self.low.shape[1]) if c not in columns]
        weight = self.values * np.prod(self.high[:, others] - self.low[:, others], axis=1)
        holds, lengths = [], []
        for c in columns:  # per column: which leaf spans which interval between cuts
            edges = np.unique(np.concatenate([self.low[:, c], self.high[:, c], [0.0, 1.0]]))
            middles = (edges[:-1] + edges[1:]) / 2
            holds.append(((self.low[:, c, None] <= middles) & (middles < self.high[:, c, None])).astype(float))
            lengths.append(np.diff(edges))
        if len(columns) == 1:
            marginal, share = weight @ holds[0], lengths[0]
        elif len(columns) == 2:  # leaves × cells of one column, and of the other: a product
            marginal, share = (holds[0] * weight[:, None]).T @ holds[1], np.outer(lengths[0], lengths[1])
        else:
            raise ValueError("marginals of one or two columns")
        return float(np.sum(share * (marginal - self.mean) ** 2))


def fanova(x: np.ndarray, y: np.ndarray, bounds: np.ndarray, pairs: bool = True) -> list[Effect]:
    """Every column's main effect and (with `pairs`) every pair's interaction on y, from a
    random forest fitted to (x, y); `bounds` is each column's (low, high)."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(
        n_estimators=TREES, max_depth=64, min_samples_split=2, min_samples_leaf=1, random_state=SEED
    )
    forest.fit(x, y)
    trees = [TreeBoxes(e.tree_, bounds) for e in forest.estimators_]
    trees = [t for t in trees if t.variance > 0]
    if not trees:
        return []
    sets: list[tuple[int, ...]] = [(c,) for c in range(x.shape[1])]
    if pairs:
        sets += list(itertools.combinations(range(x.shape[1]), 2))
    variances: dict[tuple[int, ...], np.ndarray] = {}
    effects = []
    for columns in sets:
        v = np.array([t.marginal_variance(columns) for t in trees])
        for part in sets_within(columns):
            v = v - variances[part]  # an interaction is what the pair explains beyond its keys
        variances[columns] = v = np.clip(v, 0.0, None)
        fractions = v / np.array([t.variance for t in trees])
        effects.append(Effect(columns, float(fractions.mean()), float(fractions.std()), len(trees)))
    return effects


def sets_within(columns: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [part for size in range(1, len(columns)) for part in itertools.combinations(columns, size)]
