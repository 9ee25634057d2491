"""Small fixtures for the trainer tests: hand-made data sets, specs and plain torch models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from server.data.base import Dataset
from server.spec.job import JobSpec
from server.spec.shapes import DataShape, Shape


def job_spec(**training) -> JobSpec:
    """A JobSpec for a 2-D point set with `training` fields overriding the defaults."""
    return JobSpec.model_validate({
        "dataset": {"name": "xor"},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": training,
    })


def blobs(n: int = 200, classes: int = 2, seed: int = 0, validation: int = 0) -> Dataset:
    """Gaussian blobs in 2-D, `classes` classes, half train, `validation` rows of validation."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    centers = np.stack([np.cos(np.arange(classes)), np.sin(np.arange(classes))], 1) * 2
    x = (centers[y] + rng.normal(0, 0.8, size=(n, 2))).astype(np.float32)
    y = y.astype(np.int64)
    half = n // 2
    v = half + validation
    shape = DataShape("points2d", "classification", Shape((2,)), classes,
                      tuple(str(i) for i in range(classes)))
    return Dataset(shape, x[:half], y[:half], x[half:v], y[half:v], x[v:], y[v:], ["x1", "x2"])


def regression_set(n: int = 200, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 1)).astype(np.float32)
    y = (np.sin(x) + rng.normal(0, 0.1, size=(n, 1))).astype(np.float32)
    shape = DataShape("points2d", "regression", Shape((1,)))
    half = n // 2
    empty_x, empty_y = x[:0], y[:0]
    return Dataset(shape, x[:half], y[:half], empty_x, empty_y, x[half:], y[half:], ["x1"])


def mlp(seed: int, inputs: int = 2, outputs: int = 1, hidden: int = 4,
        dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Linear(inputs, hidden), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, outputs)]
    return nn.Sequential(*layers)
