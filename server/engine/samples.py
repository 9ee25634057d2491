"""The fixed inputs of a job's frames and the data the client draws under them: the grid of a
2-D point set (`grid_xy`), the test samples shown for images and sequences (`sample_indices`,
`grid_indices`) and `describe(dataset)`, hello's `data`, which picks the same samples as the
frames of `server.engine.snapshot` do. Pure numpy, no torch.
"""

from __future__ import annotations

import numpy as np

THUMBNAIL = 20  # per-neuron heatmap side
BOUNDARY = 100  # output heatmap side, as TF Playground (a forward pass over BOUNDARY**2 points)
IMAGE_SAMPLES = 4
IMAGE_GRID = 16
SEQUENCE_SAMPLES = 4


def grid_xy(domain: tuple[float, float], n: int) -> np.ndarray:
    """Grid coordinates (n * n, 2): row 0 is the top (largest y), column 0 the smallest x."""
    lo, hi = float(domain[0]), float(domain[1])
    xs = np.linspace(lo, hi, n)  # (n,)
    ys = np.linspace(hi, lo, n)  # (n,)
    gx, gy = np.meshgrid(xs, ys)  # (n, n) each
    return np.stack([gx.ravel(), gy.ravel()], axis=1)  # (n * n, 2)


def sample_indices(dataset, count: int) -> np.ndarray:
    """`count` fixed test indices: for classification one per class first, then spread."""
    n = len(dataset.x_test)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    chosen: list[int] = []
    if dataset.shape.task == "classification":
        y = np.asarray(dataset.y_test).reshape(-1)
        for c in range(dataset.shape.num_classes or 0):
            hits = np.flatnonzero(y == c)
            if len(hits) and len(chosen) < count:
                chosen.append(int(hits[0]))
    for i in np.linspace(0, n - 1, count * 2).astype(int):
        if len(chosen) >= count:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return np.array(chosen[:count], dtype=np.int64)


def grid_indices(dataset, count: int) -> np.ndarray:
    n = len(dataset.x_test)
    return np.unique(np.linspace(0, max(n - 1, 0), min(count, n)).astype(np.int64))


def describe(dataset) -> dict:
    """hello's `data`: what the client draws under the snapshots (plain JSON)."""
    kind = dataset.shape.kind
    if kind == "points2d":
        lo, hi = (float(v) for v in dataset.domain)
        return {
            "points_train": _round(dataset.points_train), "labels_train": _labels(dataset.y_train),
            "points_test": _round(dataset.points_test), "labels_test": _labels(dataset.y_test),
            "domain": [lo, hi], "features": list(dataset.features),
            "grid": {"x": [lo, hi], "y": [lo, hi], "thumbnail": THUMBNAIL, "boundary": BOUNDARY},
        }
    if kind == "image":
        samples, grid = sample_indices(dataset, IMAGE_SAMPLES), grid_indices(dataset, IMAGE_GRID)
        return {"samples": _picked(dataset, samples, "images"),
                "test_grid": _picked(dataset, grid, "images")}
    data = {"samples": _picked(dataset, sample_indices(dataset, SEQUENCE_SAMPLES), "inputs")}
    if dataset.token_names:
        data["token_names"] = list(dataset.token_names)
    return data


def _round(a: np.ndarray | None) -> list:
    if a is None:
        return []
    a = np.asarray(a)
    return np.round(a, 4).tolist() if a.dtype.kind == "f" else a.tolist()


def _labels(y: np.ndarray) -> list:
    y = np.asarray(y)
    return _round(y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y)


def _picked(dataset, idx: np.ndarray, inputs_name: str) -> dict:
    return {"indices": idx.tolist(), inputs_name: _round(dataset.x_test[idx]),
            ("labels" if inputs_name == "images" else "targets"): _labels(dataset.y_test[idx])}
