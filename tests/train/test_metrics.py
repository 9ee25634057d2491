"""Metrics against scikit-learn as the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from server.train.metrics import classification_metrics, finite, regression_metrics, roc_auc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 4
    labels = rng.integers(0, k, 300)
    outputs = rng.normal(size=(300, k)).astype(np.float32)
    outputs[np.arange(300), labels] += 0.8  # better than chance, still many mistakes
    outputs[:, 3] -= 5.0  # class 3 is never predicted: precision 0 for it, as sklearn says
    ours = classification_metrics(outputs, labels, k, threshold=0.0)
    predicted = outputs.argmax(1)
    labels_k = list(range(k))
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        expected = fn(labels, predicted, average="macro", labels=labels_k, zero_division=0)
        assert ours[name] == pytest.approx(expected), name
    assert ours["confusion_matrix"] == skm.confusion_matrix(labels, predicted,
                                                            labels=labels_k).tolist()
    assert "auc" not in ours


def test_binary_metrics_and_auc_match_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 500)
    logits = (labels * 1.2 + rng.normal(size=500)).astype(np.float32)[:, None]
    logits[::7] = 0.25  # many tied scores
    ours = classification_metrics(logits, labels, 2, threshold=0.0)
    predicted = (logits[:, 0] >= 0).astype(int)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert ours["f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"))
    assert ours["confusion_matrix"] == skm.confusion_matrix(labels, predicted).tolist()
    assert ours["auc"] == pytest.approx(skm.roc_auc_score(labels, logits[:, 0]), abs=1e-12)
    # Two output units: the AUC of (out1 - out0).
    two = np.concatenate([np.zeros_like(logits), logits], axis=1)
    assert classification_metrics(two, labels, 2, 0.0)["auc"] == pytest.approx(ours["auc"])


def test_auc_edge_cases():
    assert roc_auc(np.array([0.1, 0.2]), np.array([1, 1])) is None  # one class only
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert roc_auc(np.array([0.0, 1.0]), np.array([0, 1])) == 1.0
    assert roc_auc(np.array([np.nan, 1.0]), np.array([0, 1])) is None
    rng = np.random.default_rng(9)
    scores = rng.integers(0, 5, 1000).astype(float)  # heavy ties
    labels = rng.integers(0, 2, 1000)
    assert roc_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    true = rng.normal(size=(200, 1)).astype(np.float32)
    pred = (true + rng.normal(0, 0.3, size=(200, 1))).astype(np.float32)
    ours = regression_metrics(pred, true)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(true, pred), rel=1e-6)
    assert ours["r2"] == pytest.approx(skm.r2_score(true, pred), rel=1e-6)
    constant = np.ones((5, 1), np.float32)
    assert regression_metrics(constant, constant)["r2"] == skm.r2_score(constant, constant)
    assert regression_metrics(constant * 2, constant)["r2"] == skm.r2_score(constant,
                                                                             constant * 2)


def test_every_float_is_finite_or_none():
    assert finite(math.nan) is None
    assert finite(math.inf) is None
    assert finite(np.float32(1.5)) == 1.5
    outputs = np.full((4, 1), np.nan, np.float32)
    record = regression_metrics(outputs, np.zeros((4, 1), np.float32))
    assert record == {"mae": None, "r2": None}
    record = classification_metrics(outputs, np.array([0, 1, 0, 1]), 2, 0.0)
    assert record["auc"] is None
