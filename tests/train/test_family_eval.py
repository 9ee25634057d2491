"""A family's batched metrics equal server.train.metrics (the numpy oracle) on each row, with
padding, ties, one, two and three output units, and regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.train.family_eval import batched_metrics
from server.train.metrics import classification_metrics, regression_metrics


def assert_same(want: dict, got: dict) -> None:
    assert set(want) == set(got)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-12), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("units,classes", [(1, 2), (2, 2), (3, 3)])
def test_classification_rows_match_the_numpy_metrics(units, classes):
    rng = np.random.default_rng(units)
    for _ in range(60):
        n = int(rng.integers(2, 40))
        decimals = int(rng.integers(0, 3))  # few decimals: many tied scores
        out = np.round(rng.normal(size=(4, n, units)), decimals).astype(np.float32)
        labels = rng.integers(0, classes, size=(4, n))
        counts = rng.integers(1, n + 1, size=4)
        mask = np.arange(n)[None, :] < counts[:, None]
        got = batched_metrics("classification", torch.tensor(out), torch.tensor(labels),
                              torch.tensor(mask), classes, 0.0)
        for i in range(4):
            want = classification_metrics(out[i, :counts[i]], labels[i, :counts[i]], classes,
                                          0.0)
            assert_same(want, got[i])


def test_regression_rows_match_the_numpy_metrics():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 30))
        out = rng.normal(size=(3, n, 1)).astype(np.float32)
        targets = rng.normal(size=(3, n, 1)).astype(np.float32)
        targets[0] = 1.5  # constant targets: sklearn's R^2 rule
        counts = rng.integers(1, n + 1, size=3)
        mask = np.arange(n)[None, :] < counts[:, None]
        got = batched_metrics("regression", torch.tensor(out), torch.tensor(targets),
                              torch.tensor(mask), 0, 0.5)
        for i in range(3):
            want = regression_metrics(out[i, :counts[i]], targets[i, :counts[i]])
            assert_same(want, got[i])
