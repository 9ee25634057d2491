"""Train / validation / test splits: seeded, disjoint, stratified for classification."""

from __future__ import annotations

import numpy as np


def split_indices(
    y: np.ndarray, stratify: bool, train_fraction: float, validation_fraction: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, validation and test rows; every row is in exactly one.

    With `stratify`, each class is split by the same fractions, so every split keeps the
    class proportions (up to rounding). The rest after train and validation is test.
    """
    n = len(y)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for members in groups:
        members = rng.permutation(members)
        m = len(members)
        n_train = min(m, int(round(m * train_fraction)))
        n_val = min(m - n_train, int(round(m * validation_fraction)))
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train:n_train + n_val])
        parts[2].append(members[n_train + n_val:])
    # Shuffle within each split so that classes are interleaved.
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)  # type: ignore[return-value]
