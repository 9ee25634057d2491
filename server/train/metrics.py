"""Metrics of one data split from a model's outputs: plain numpy, no torch, no sklearn.

What is here: `classification_metrics` (accuracy, macro precision / recall / F1, binary ROC AUC
with ties averaged, confusion matrix as lists), `regression_metrics` (MAE, R^2), `roc_auc`,
`finite` (NaN and inf become None so every record is valid JSON).
What is not: losses (optim.py) and running the model over a split (trainer.py).
"""

from __future__ import annotations

import math

import numpy as np


def finite(value: float) -> float | None:
    """`value` as a plain float, or None when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of `scores` for binary `labels` (1 = positive).

    The Mann-Whitney statistic with average ranks, so tied scores count one half.
    None when only one class is present.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel() == 1
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0 or not np.all(np.isfinite(scores)):
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    # Average rank (1-based) of each run of equal scores.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    run_ranks = first + (counts + 1) / 2.0  # (runs,)
    ranks = np.empty_like(scores)
    ranks[order] = np.repeat(run_ranks, counts)
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return finite(u / (n_pos * n_neg))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = true class, column = predicted class (sklearn's convention)."""
    flat = np.bincount(labels.astype(np.int64) * k + predicted.astype(np.int64), minlength=k * k)
    return flat[: k * k].reshape(k, k)


def classification_metrics(outputs: np.ndarray, labels: np.ndarray, num_classes: int,
                           threshold: float) -> dict:
    """Metrics of `outputs` (n, units) against class ids `labels` (n,).

    One output unit: class 1 when the output is >= `threshold` (0 for logits, 0.5 for a
    regression-style output), and the AUC is of the output itself. Several units: the argmax;
    with two units the AUC is of (out1 - out0). Precision, recall and F1 are macro averages
    over all `num_classes` classes (a class never predicted has precision 0).
    """
    k = max(num_classes, 2)
    labels = labels.astype(np.int64)
    if outputs.shape[1] == 1:
        score = outputs[:, 0]  # (n,)
        predicted = (score >= threshold).astype(np.int64)
    else:
        predicted = outputs.argmax(axis=1)  # (n,)
        score = outputs[:, 1] - outputs[:, 0] if outputs.shape[1] == 2 else None
    predicted = np.minimum(predicted, k - 1)
    cm = confusion_matrix(labels, predicted, k)
    tp = np.diag(cm).astype(np.float64)
    predicted_count = cm.sum(axis=0)
    true_count = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted_count > 0, tp / predicted_count, 0.0)
        recall = np.where(true_count > 0, tp / true_count, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    n = labels.size
    record = {
        "accuracy": finite(tp.sum() / n) if n else None,
        "precision": finite(precision.mean()),
        "recall": finite(recall.mean()),
        "f1": finite(f1.mean()),
        "confusion_matrix": cm.tolist(),
    }
    if k == 2:
        record["auc"] = roc_auc(score, labels) if score is not None else None
    return record


def regression_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict:
    """MAE and R^2 of `outputs` (n, 1) against `targets` (n, 1).

    R^2 follows sklearn when the targets are constant: 1.0 for a perfect fit, else 0.0.
    """
    pred = outputs.astype(np.float64).ravel()
    true = targets.astype(np.float64).ravel()
    if true.size == 0:
        return {"mae": None, "r2": None}
    residual = ((true - pred) ** 2).sum()
    total = ((true - true.mean()) ** 2).sum()
    if not np.isfinite(residual):
        r2 = math.nan
    elif total == 0:
        r2 = 1.0 if residual == 0 else 0.0
    else:
        r2 = 1.0 - residual / total
    return {"mae": finite(np.abs(true - pred).mean()), "r2": finite(r2)}
