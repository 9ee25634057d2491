"""Two-dimensional point sets: TensorFlow Playground's four classification sets (circle, xor,
gauss, spiral) and two regression sets (plane, multi_gauss), reproduced from its
`dataset.ts`, plus moons, blobs (k classes) and line (one input: linear regression).

Points lie in [-6, 6]^2. TF Playground labels its points -1 and +1; here -1 is class 0 and +1
class 1. `noise` is TF Playground's slider divided by 100 (0 to 0.5). Each generator takes
(params, rng) and returns raw coordinates (n, 2) and targets; the registry maps coordinates
to the chosen input features and splits.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from server.data.base import DataSetDef, Params
from server.data.starters import Starter, dense
from server.spec.shapes import Shape
from server.spec.vocabulary import POINT_DOMAIN

SAMPLES_DESC = "Number of points (train, validation and test together)."
NOISE_DESC = "Noise, as TF Playground's slider: 0 (none) to 0.5 (50%)."


class PointParams(Params):
    samples: int = Field(500, ge=10, le=100_000, description=SAMPLES_DESC)
    noise: float = Field(0.0, ge=0.0, le=0.5, description=NOISE_DESC)


class SurfaceParams(Params):
    samples: int = Field(1200, ge=10, le=100_000, description=SAMPLES_DESC)
    noise: float = Field(0.0, ge=0.0, le=0.5, description=NOISE_DESC)


class MoonsParams(Params):
    samples: int = Field(500, ge=10, le=100_000, description=SAMPLES_DESC)
    noise: float = Field(
        0.1, ge=0.0, le=0.5, description="Standard deviation of Gaussian noise, in moon radii."
    )


class BlobsParams(Params):
    samples: int = Field(500, ge=10, le=100_000, description=SAMPLES_DESC)
    noise: float = Field(
        0.1, ge=0.0, le=0.5, description="Spread of each blob: 0 tight, 0.5 overlapping."
    )
    classes: int = Field(3, ge=2, le=8, description="Number of blobs, one class each.")


class LineParams(Params):
    samples: int = Field(100, ge=10, le=100_000, description=SAMPLES_DESC)
    noise: float = Field(
        0.5, ge=0.0, le=5.0, description="Standard deviation of Gaussian noise added to y."
    )
    slope: float = Field(0.5, ge=-5.0, le=5.0, description="a in y = a x + b.")
    intercept: float = Field(1.0, ge=-5.0, le=5.0, description="b in y = a x + b.")


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return rng.uniform(low, high, n)


def _halves(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def circle(p: PointParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Radius 5: half the points inside r < 2.5, half in the ring 3.5..5; the label is where
    the point plus noise falls (inside 2.5: class 1), as TF Playground does."""
    radius = 5.0
    parts = []
    rings = ((0.0, radius * 0.5), (radius * 0.7, radius))
    for count, (r_lo, r_hi) in zip(_halves(p.samples), rings, strict=True):
        r = _uniform(rng, r_lo, r_hi, count)
        angle = _uniform(rng, 0.0, 2 * math.pi, count)
        x, y = r * np.sin(angle), r * np.cos(angle)
        noise = _uniform(rng, -radius, radius, 2 * count).reshape(2, count) * p.noise
        label = (np.hypot(x + noise[0], y + noise[1]) < radius * 0.5).astype(np.int64)
        parts.append((np.stack([x, y], 1), label))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def xor(p: PointParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform in [-5, 5]^2 pushed 0.3 away from the axes; class 1 where x*y >= 0 (with noise)."""
    n = p.samples
    xy = _uniform(rng, -5.0, 5.0, 2 * n).reshape(n, 2)
    xy += np.where(xy > 0, 0.3, -0.3)
    noise = _uniform(rng, -5.0, 5.0, 2 * n).reshape(n, 2) * p.noise
    moved = xy + noise
    return xy, (moved[:, 0] * moved[:, 1] >= 0).astype(np.int64)


def gauss(p: PointParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussians at (2, 2) (class 1) and (-2, -2) (class 0); variance 0.5 to 4 with noise."""
    variance = 0.5 + p.noise / 0.5 * 3.5
    parts = []
    for count, (c, label) in zip(_halves(p.samples), ((2.0, 1), (-2.0, 0)), strict=True):
        xy = c + math.sqrt(variance) * rng.standard_normal((count, 2))
        parts.append((xy, np.full(count, label, np.int64)))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def spiral(p: PointParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two arms of 1.75 turns out to radius 5, the second turned by pi; noise moves points."""
    parts = []
    for count, (delta, label) in zip(_halves(p.samples), ((0.0, 1), (math.pi, 0)), strict=True):
        i = np.arange(count) / max(count, 1)
        r = i * 5.0
        t = 1.75 * i * 2 * math.pi + delta
        noise = _uniform(rng, -1.0, 1.0, 2 * count).reshape(2, count) * p.noise
        xy = np.stack([r * np.sin(t) + noise[0], r * np.cos(t) + noise[1]], 1)
        parts.append((xy, np.full(count, label, np.int64)))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def moons(p: MoonsParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles, scaled by 3 and centred."""
    outer, inner = _halves(p.samples)
    a = np.linspace(0, math.pi, outer)
    b = np.linspace(0, math.pi, inner)
    xy = np.concatenate([np.stack([np.cos(a), np.sin(a)], 1),
                         np.stack([1 - np.cos(b), 0.5 - np.sin(b)], 1)])
    xy += rng.standard_normal(xy.shape) * p.noise
    xy = np.clip((xy - [0.5, 0.25]) * 3.0, *POINT_DOMAIN)
    return xy, np.concatenate([np.zeros(outer, np.int64), np.ones(inner, np.int64)])


def blobs(p: BlobsParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """k round blobs with centres evenly spaced on a circle of radius 4."""
    k = p.classes
    labels = np.arange(p.samples) % k
    angles = 2 * math.pi * labels / k + math.pi / 4
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    std = 0.4 + 3.0 * p.noise
    xy = np.clip(centres + std * rng.standard_normal((p.samples, 2)), *POINT_DOMAIN)
    return xy, labels.astype(np.int64)


def plane(p: SurfaceParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform in [-6, 6]^2; the value is (x + y) / 10 measured at the point moved by noise."""
    n = p.samples
    xy = _uniform(rng, *POINT_DOMAIN, 2 * n).reshape(n, 2)
    noise = _uniform(rng, *POINT_DOMAIN, 2 * n).reshape(n, 2) * p.noise
    moved = xy + noise
    return xy, (moved[:, 0] + moved[:, 1]) / 10.0


_GAUSSIANS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def multi_gauss(p: SurfaceParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Six bumps of alternating sign; the value is the strongest bump, 1 - distance / 2."""
    n = p.samples
    xy = _uniform(rng, *POINT_DOMAIN, 2 * n).reshape(n, 2)
    noise = _uniform(rng, *POINT_DOMAIN, 2 * n).reshape(n, 2) * p.noise
    moved = xy + noise
    value = np.zeros(n)
    for cx, cy, sign in _GAUSSIANS:
        d = np.hypot(moved[:, 0] - cx, moved[:, 1] - cy)
        bump = sign * np.clip(1.0 - d / 2.0, 0.0, 1.0)
        value = np.where(np.abs(bump) > np.abs(value), bump, value)
    return xy, value


def line(p: LineParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x uniform in [-6, 6]; y = slope * x + intercept + Gaussian noise."""
    x = _uniform(rng, *POINT_DOMAIN, p.samples)
    y = p.slope * x + p.intercept + p.noise * rng.standard_normal(p.samples)
    return x[:, None], y


def _classes(*names: str):
    return lambda p: names


# TF Playground's opening setup: x1 and x2, two tanh layers 4-2, SGD 0.03, batch 10.
PLAYGROUND = {"layers": dense(4, 2)}
SPIRAL_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")


SETS = [
    DataSetDef(
        "circle", "Circle", "Points inside a circle against points in a ring around it.",
        "A boundary a linear model cannot draw: add x1^2 and x2^2, or a hidden layer.",
        "classification", "points2d", PointParams, circle, class_names=_classes("ring", "inside"),
        starter=Starter(**PLAYGROUND, epochs=150, expect=0.95),
    ),
    DataSetDef(
        "xor", "Exclusive or", "Four squares; opposite corners share a class.",
        "Why one neuron is not enough: XOR needs a hidden layer (or the feature x1*x2).",
        "classification", "points2d", PointParams, xor,
        class_names=_classes("different signs", "same signs"),
        starter=Starter(dense(8, 4), epochs=150, expect=0.9,
                        note="4-2 stops at 92-93% for some seeds; 8-4 does not."),
    ),
    DataSetDef(
        "gauss", "Two Gaussians", "Two clouds of points, one per class.",
        "A linear decision boundary: logistic regression is enough; noise makes them overlap.",
        "classification", "points2d", PointParams, gauss,
        class_names=_classes("lower left", "upper right"),
        starter=Starter(**PLAYGROUND, epochs=30, expect=0.95),
    ),
    DataSetDef(
        "spiral", "Spiral", "Two interleaved spiral arms.",
        "Depth and features: a hard boundary that needs several layers or sin features.",
        "classification", "points2d", PointParams, spiral, class_names=_classes("arm B", "arm A"),
        starter=Starter(dense(8, 8), epochs=300, expect=0.85, features=SPIRAL_FEATURES,
                        note="On x1, x2 alone 4-2 stays near 66%; squares, product and sines "
                        "with two layers of 8 learn it."),
    ),
    DataSetDef(
        "moons", "Two moons", "Two interleaving half circles.",
        "A curved boundary a small hidden layer can learn; overfitting as noise grows.",
        "classification", "points2d", MoonsParams, moons, class_names=_classes("upper", "lower"),
        starter=Starter(**PLAYGROUND, epochs=100, expect=0.95),
    ),
    DataSetDef(
        "blobs", "Blobs", "k round clouds of points, one class each.",
        "More than two classes: softmax output and cross-entropy loss.",
        "classification", "points2d", BlobsParams, blobs,
        class_names=lambda p: tuple(f"blob {i}" for i in range(p.classes)),
        starter=Starter(dense(4, 4), epochs=50, expect=0.95),
    ),
    DataSetDef(
        "plane", "Plane", "A value that rises evenly from one corner to the other.",
        "Regression: a linear model fits a plane with mean squared error.",
        "regression", "points2d", SurfaceParams, plane,
        starter=Starter(**PLAYGROUND, epochs=30, expect=0.95),
    ),
    DataSetDef(
        "multi_gauss", "Multiple Gaussians", "Six bumps of alternating sign.",
        "Regression of a bumpy surface: hidden units each learn a part.",
        "regression", "points2d", SurfaceParams, multi_gauss,
        starter=Starter(dense(32, 16, activation="relu"), epochs=150, expect=0.85,
                        optimizer="adam", learning_rate=0.01, batch_size=32,
                        note="tanh 16-8 ends anywhere from R^2 0.77 to 0.96 by seed."),
    ),
    DataSetDef(
        "line", "Line", "One input x and a noisy target y = a x + b.",
        "Linear regression: one weight and one bias, gradient descent on mean squared error.",
        "regression", "points2d", LineParams, line,
        input_shape=lambda p: Shape((1,)),
        allowed_features=("x1",), default_features=("x1",),
        notes="One input feature, x1; points_train holds (x, y) for drawing.",
        starter=Starter((), epochs=50, expect=0.85, note="No hidden layer: y = w x + b."),
    ),
]
