"""Shapes of what flows through a network, per sample (no batch dimension), and of a data set.

`Shape` is what a layer receives and gives; `DataShape` is what a data set feeds in and
expects out, known without generating the data. Shape inference lives with each layer
(`LayerSpec.output_shape`); this module only holds the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Task = Literal["classification", "regression"]
DataKind = Literal["points2d", "tabular", "image", "sequence"]


@dataclass(frozen=True)
class Shape:
    """The shape of one sample's tensor.

    dims: `(features,)` for flat vectors, `(channels, height, width)` for images,
    `(time, features)` for sequences of vectors, `(time,)` with `tokens` set for token ids.
    tokens: the vocabulary size when the values are integer token ids, else None.
    """

    dims: tuple[int, ...]
    tokens: int | None = None

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def size(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    def describe(self) -> str:
        """`[64]`, `[1, 8, 8]`, or `[12] token ids (vocabulary 10)`, as errors quote it."""
        text = "[" + ", ".join(str(d) for d in self.dims) + "]"
        if self.tokens is not None:
            text += f" token ids (vocabulary {self.tokens})"
        return text

    def as_list(self) -> list[int]:
        return list(self.dims)


@dataclass(frozen=True)
class DataShape:
    """What a data set feeds a model and what it expects back, known before any data exists.

    num_classes: the number of classes for classification (2 for binary), None for regression.
    class_names: one name per class (empty for regression).
    """

    kind: DataKind
    task: Task
    input: Shape
    num_classes: int | None = None
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def output_units(self) -> int:
        """Units of the output layer that `model.output: "auto"` appends: one for binary
        classification and for regression, k for k classes."""
        if self.task == "regression" or self.num_classes is None or self.num_classes <= 2:
            return 1
        return self.num_classes

    @property
    def auto_loss(self) -> str:
        """The loss `training.loss: "auto"` picks to match `output_units`."""
        if self.task == "regression":
            return "mse"
        return "bce" if self.output_units == 1 else "cross_entropy"
