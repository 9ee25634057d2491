"""What every data set module shares: `DataSetDef` (a set declared once), `Dataset` (the
arrays a trainer receives), `Params` (the base of every set's parameter model) and the input
features of two-dimensional point sets.

Nothing here generates data; the kind modules (points, tabular, images, sequences, upload)
do, and `registry.py` splits, standardizes and caches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from server.data.starters import Starter
from server.spec.shapes import DataKind, DataShape, Shape, Task
from server.spec.vocabulary import POINT_DOMAIN

DOMAIN = POINT_DOMAIN  # server.spec.vocabulary's, for every 2-D point set

# The input features of two-dimensional point sets, as TensorFlow Playground offers them.
POINT_FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1*x2": lambda x1, x2: x1 * x2,
    "sin(x1)": lambda x1, x2: np.sin(x1),
    "sin(x2)": lambda x1, x2: np.sin(x2),
    "cos(x1)": lambda x1, x2: np.cos(x1),
    "cos(x2)": lambda x1, x2: np.cos(x2),
}


def point_features(xy: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Map raw coordinates (n, 2) (or (n, 1) for one-dimensional sets) to features (n, k)."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] not in (1, 2):
        raise ValueError(f"expected coordinates of shape (n, 2) or (n, 1), got {xy.shape}")
    x1 = xy[:, 0]
    x2 = xy[:, 1] if xy.shape[1] == 2 else np.zeros_like(x1)
    cols = [POINT_FEATURES[name](x1, x2) for name in names]
    return np.stack(cols, axis=1).astype(np.float32)  # (n, features)


class Params(BaseModel):
    """Base of every data set's parameter model: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid")


# generate(params, rng) -> (x, y): raw inputs and targets for all samples, before any split.
# points2d: x is the raw coordinates (n, 2) or (n, 1); tabular: (n, features) float64 before
# standardization; image: (n, channels, height, width); sequence: (n, time, features) or token
# ids (n, time). y: int64 class indices, or float (n,) values for regression.
Generator = Callable[[Any, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DataSetDef:
    """One data set, declared once in its kind's module and collected by the registry."""

    name: str
    title: str
    description: str
    teaches: str
    task: Task
    kind: DataKind
    params: type[Params]
    generate: Generator
    # The model input per sample for the given params (points2d: from the features instead).
    input_shape: Callable[[Any], Shape] = lambda p: Shape((2,))
    # One name per class for the given params; empty for regression.
    class_names: Callable[[Any], tuple[str, ...]] = lambda p: ()
    feature_names: Callable[[Any], list[str]] = lambda p: []
    # Tabular: standardize inputs (and regression targets) with training-split statistics.
    standardize: bool = False
    standardize_target: bool = False
    # points2d only: the features a model may use (the one-dimensional `line` allows x1 only).
    allowed_features: tuple[str, ...] = tuple(POINT_FEATURES)
    default_features: tuple[str, ...] = ("x1", "x2")
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The setup the set opens with and the score it is tested to reach (uploads: None, the
    # registry sizes a generic one from the table).
    starter: Starter | None = None


@dataclass
class Dataset:
    """The arrays of one loaded data set, split into train, validation and test.

    x: float32, or int64 token ids; y: int64 class indices for classification, float32 of
    shape (n, 1) for regression. The validation split may be empty (0 rows).
    points2d sets also carry `points_train` / `points_test` (raw coordinates for drawing; for
    the one-dimensional `line` set the columns are (x, y)) and `features_of` for heatmaps.
    """

    shape: DataShape
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    points_train: np.ndarray | None = None
    points_val: np.ndarray | None = None
    points_test: np.ndarray | None = None
    domain: tuple[float, float] = DOMAIN
    features: tuple[str, ...] = ()
    # Tabular: the mean and standard deviation used to standardize (training split only).
    target_mean: float | None = None
    target_std: float | None = None
    # Token sequences: a readable name per token id (for drawing), when the set has them.
    token_names: tuple[str, ...] = ()

    def features_of(self, xy: np.ndarray) -> np.ndarray:
        """Raw grid coordinates (n, 2) -> the model's input (n, features), for heatmaps.
        For the one-dimensional `line` set only the first column (x) is used."""
        if self.shape.kind != "points2d":
            raise ValueError(
                f"features_of applies to two-dimensional point sets; this one is {self.shape.kind}"
            )
        xy = np.asarray(xy)
        if self.features == ("x1",):
            xy = xy[:, :1]
        return point_features(xy, self.features)

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])
