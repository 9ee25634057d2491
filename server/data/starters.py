"""`Starter`: the setup a data set opens with (features, hidden layers, optimizer, batch size,
epochs) and the score it is tested to reach, declared next to the set in its kind's module;
and `table_starter`, the generic starter of an uploaded CSV, sized from its rows and task.

The catalogue shows a starter as a partial job spec (`Starter.as_spec`), which the page merges
over its defaults; tests/data/test_starters.py trains every set's starter with the real
trainer and checks `expect` (test accuracy for classification, test R^2 for regression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from server.spec.job import OptimizerSpec
from server.spec.layers import Layer

_LAYERS = TypeAdapter(list[Layer])


def dense(*units: int, activation: str = "tanh") -> tuple[dict[str, Any], ...]:
    """Dense hidden layers of the given widths, all with one activation."""
    return tuple({"type": "dense", "units": n, "activation": activation} for n in units)


@dataclass(frozen=True)
class Starter:
    """A set's opening setup. `layers` are minimal layer objects (omitted fields take their
    schema's default); `features` is for points2d sets only (None: the set's default
    features); `expect` is the test accuracy (classification) or test R^2 (regression) that
    the starter reaches within `epochs` with the set's default params, as the test checks."""

    layers: tuple[dict[str, Any], ...]
    expect: float
    epochs: int
    optimizer: str = "sgd"
    learning_rate: float = 0.03
    batch_size: int = 10
    features: tuple[str, ...] | None = None
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # A typo in a starter fails at import, not in a newcomer's page.
        _LAYERS.validate_python([dict(layer) for layer in self.layers])
        OptimizerSpec(name=self.optimizer, learning_rate=self.learning_rate)
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("a starter needs at least one epoch and a batch of at least 1")

    def as_spec(self, features: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The catalogue's `starter`: a partial job spec. `features` (points2d sets only) is
        the list to use when the starter names none (the set's default features)."""
        spec: dict[str, Any] = {}
        chosen = self.features or features
        if chosen is not None:
            spec["features"] = list(chosen)
        spec["model"] = {"layers": [dict(layer) for layer in self.layers]}
        spec["training"] = {
            "optimizer": {"name": self.optimizer, "learning_rate": self.learning_rate},
            "batch_size": self.batch_size,
            "epochs": self.epochs,
        }
        return spec


# An uploaded table: about this many gradient steps in all, within these epochs.
TABLE_STEPS = 1500
TABLE_EPOCHS = (10, 100)


def table_starter(task: str, rows: int, train_fraction: float = 0.5) -> Starter:
    """The generic starter of an uploaded CSV: one dense ReLU layer of 16 units and Adam; the
    batch grows with the table and the epochs are chosen for about TABLE_STEPS steps, so a
    small table gets enough passes and a large one stays quick. `expect` is a modest floor
    (accuracy 0.5 / R^2 0): nothing is known about the data beyond its shape."""
    train_rows = max(1, int(rows * train_fraction))
    batch = 10 if train_rows <= 500 else 32 if train_rows <= 5000 else 128
    per_epoch = math.ceil(train_rows / batch)
    low, high = TABLE_EPOCHS
    epochs = max(low, min(high, math.ceil(TABLE_STEPS / per_epoch)))
    return Starter(dense(16, activation="relu"), expect=0.5 if task == "classification" else 0.0,
                   epochs=epochs, optimizer="adam", learning_rate=0.01, batch_size=batch)
