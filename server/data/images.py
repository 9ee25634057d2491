"""Image sets: scikit-learn's bundled handwritten digits (8x8) and `shapes`, generated 16x16
outlines of circles, squares, triangles and crosses that move, grow and carry noise, so that
convolution (the same filter everywhere) visibly beats a dense network of similar size.

Images are float32 (n, 1, height, width) with values in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import Field

from server.data.base import DataSetDef, Params
from server.data.starters import Starter
from server.spec.shapes import Shape

SHAPE_NAMES = ("circle", "square", "triangle", "cross")
SIZE = 16
NOISE_DESC = "Gaussian pixel noise (standard deviation); values stay in 0-1."


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float64) / 16.0)[:, None]  # (1797, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


class DigitsParams(Params):
    samples: int = Field(1797, ge=10, le=1797, description="Images to use, drawn at random.")
    noise: float = Field(0.0, ge=0.0, le=0.5, description=NOISE_DESC)


class ShapesParams(Params):
    samples: int = Field(1000, ge=10, le=100_000, description="Number of images.")
    noise: float = Field(0.1, ge=0.0, le=0.5, description=NOISE_DESC)


def digits(p: DigitsParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = _digits()
    order = np.sort(rng.permutation(len(x))[: p.samples])
    x = x[order]
    if p.noise > 0:
        x = np.clip(x + p.noise * rng.standard_normal(x.shape), 0.0, 1.0)
    return x, y[order]


def _outline(kind: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A 16x16 image of one shape's outline (stroke about 1.2 pixels) centred at (cx, cy)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    dx, dy = xx - cx, yy - cy
    if kind == 0:  # circle
        dist = np.abs(np.hypot(dx, dy) - r)
    elif kind == 1:  # square
        dist = np.abs(np.maximum(np.abs(dx), np.abs(dy)) - r)
    elif kind == 2:  # triangle pointing up: distance to the nearest of its three edges
        ux = np.array([0.0, 0.866, -0.866])
        uy = np.array([1.0, -0.5, -0.5])
        proj = dx[..., None] * ux + dy[..., None] * uy  # (16, 16, 3)
        dist = np.abs(proj.max(axis=-1) - r * 0.6)
    else:  # cross: two bars
        bar_h = np.maximum(np.abs(dy), np.maximum(np.abs(dx) - r, 0.0))
        bar_v = np.maximum(np.abs(dx), np.maximum(np.abs(dy) - r, 0.0))
        dist = np.minimum(bar_h, bar_v)
    return np.clip(1.2 - dist, 0.0, 1.0)


def shapes(p: ShapesParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = p.samples
    labels = rng.integers(0, len(SHAPE_NAMES), n)
    radius = rng.uniform(3.0, 5.5, n)
    margin = radius + 1.0
    cx = rng.uniform(margin, SIZE - margin)
    cy = rng.uniform(margin, SIZE - margin)
    x = np.stack([_outline(int(k), a, b, r) for k, a, b, r in zip(labels, cx, cy, radius,
                                                                   strict=True)])
    if p.noise > 0:
        x = np.clip(x + p.noise * rng.standard_normal(x.shape), 0.0, 1.0)
    return x[:, None], labels.astype(np.int64)  # (n, 1, 16, 16)


SETS = [
    DataSetDef(
        "digits", "Handwritten digits", "1,797 handwritten digits 0-9 as 8x8 grey images "
        "(scikit-learn's copy of the UCI set).",
        "Image classification with ten classes: dense networks, then convolution and pooling.",
        "classification", "image", DigitsParams, digits,
        input_shape=lambda p: Shape((1, 8, 8)),
        class_names=lambda p: tuple(str(i) for i in range(10)),
        starter=Starter(
            ({"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"},
             {"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}),
            epochs=15, expect=0.9, optimizer="adam", learning_rate=0.01, batch_size=32,
        ),
    ),
    DataSetDef(
        "shapes", "Shapes", "Outlines of a circle, square, triangle or cross on 16x16 pixels, "
        "moved, resized and noisy.",
        "Why convolution: the same filter finds an edge anywhere, so a small CNN beats a "
        "dense network of the same size.",
        "classification", "image", ShapesParams, shapes,
        input_shape=lambda p: Shape((1, SIZE, SIZE)),
        class_names=lambda p: SHAPE_NAMES,
        starter=Starter(
            ({"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"},
             {"type": "conv2d", "filters": 16, "kernel_size": 3}, {"type": "maxpool2d"},
             {"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"}),
            epochs=15, expect=0.9, optimizer="adam", learning_rate=0.003, batch_size=32,
        ),
    ),
]
