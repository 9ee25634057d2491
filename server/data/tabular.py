"""Real tabular data that scikit-learn ships inside the package (nothing is downloaded):
iris, wine and breast_cancer (classification) and diabetes (regression).

Features, and diabetes' target, are standardized by the registry with the mean and standard
deviation of the training split only, so no statistic of the test data leaks into training.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field

from server.data.base import DataSetDef, Params
from server.data.starters import Starter, dense
from server.spec.shapes import Shape


@lru_cache(maxsize=8)
def _bundled(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """(x, y, feature names, class names) of one of scikit-learn's bundled sets."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    classes = tuple(str(c) for c in getattr(bunch, "target_names", ()))
    x = np.asarray(bunch.data, dtype=np.float64)
    x.setflags(write=False)
    y = np.asarray(bunch.target)
    y.setflags(write=False)
    return x, y, tuple(str(f) for f in bunch.feature_names), classes


def _params_model(total: int) -> type[Params]:
    class TabularParams(Params):
        samples: int = Field(
            total, ge=10, le=total, description=f"Rows to use, drawn at random (all {total})."
        )
        noise: float = Field(
            0.0, ge=0.0, le=2.0,
            description="Gaussian noise added to every feature, in its standard deviations.",
        )

    return TabularParams


def _generator(name: str, task: str):
    def generate(p, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, y, _, _ = _bundled(name)
        order = np.sort(rng.permutation(len(x))[: p.samples])
        x = x[order]
        if p.noise > 0:
            x = x + p.noise * x.std(axis=0) * rng.standard_normal(x.shape)
        y = y[order].astype(np.int64 if task == "classification" else np.float64)
        return x, y

    return generate


def _declare(name: str, total: int, features: int, task: str, title: str, description: str,
             teaches: str, starter: Starter, class_names: tuple[str, ...] = ()) -> DataSetDef:
    return DataSetDef(
        name, title, description, teaches, task, "tabular", _params_model(total),
        _generator(name, task),
        input_shape=lambda p: Shape((features,)),
        class_names=lambda p: class_names,
        feature_names=lambda p: list(_bundled(name)[2]),
        standardize=True,
        standardize_target=task == "regression",
        starter=starter,
        notes="Features standardized with the training split's mean and standard deviation."
        + (" So is the target (training statistics)." if task == "regression" else ""),
    )


# One hidden layer of 16 ReLU units and Adam learn each of the three small tables quickly.
_CLASSIFIER = Starter(dense(16, activation="relu"), epochs=50, expect=0.9, optimizer="adam",
                      learning_rate=0.01)

SETS = [
    _declare("iris", 150, 4, "classification", "Iris flowers",
             "150 iris flowers, 4 measurements each, 3 species (Fisher, 1936).",
             "Softmax classification on real measurements; a linear model is nearly enough.",
             _CLASSIFIER, ("setosa", "versicolor", "virginica")),
    _declare("wine", 178, 13, "classification", "Wine",
             "178 wines, 13 chemical measurements, 3 cultivars.",
             "Softmax on real data whose features differ in scale a thousandfold "
             "(standardized for you).",
             _CLASSIFIER, ("class_0", "class_1", "class_2")),
    _declare("breast_cancer", 569, 30, "classification", "Breast cancer (Wisconsin)",
             "569 tumours, 30 features of cell nuclei, malignant or benign.",
             "Logistic regression on real data, and overfitting with 30 features.",
             _CLASSIFIER, ("malignant", "benign")),
    _declare("diabetes", 442, 10, "regression", "Diabetes progression",
             "442 patients, 10 baseline measurements; the target is disease progression a "
             "year later.",
             "Regression on real, noisy data: mean squared error and a hard floor to reach.",
             Starter(dense(8), epochs=30, expect=0.4, optimizer="adam", learning_rate=0.003,
                     note="Small and slow on purpose: 16 ReLU units overfit to R^2 0.37.")),
]
