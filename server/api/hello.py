"""The parts of a stream's `hello` that come from the store and the data set, not the engine.

`history(store, job_id, max_points)` is the metric history downsampled to at most `max_points`
records (every `stride`-th epoch from the first, the last one always included) with the total
and the stride; the whole history is paged from `GET /api/jobs/{id}/metrics?since=&limit=`.
`describe(datasets, spec)` is the data the client draws under the snapshots, computed once per
data set spec and kept in a small cache, so that a client reconnecting in a loop costs a
dictionary lookup. Both run in a worker thread (asyncio.to_thread), never in the engine's.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

from server.engine import samples
from server.spec.job import DatasetSpec

CACHE_SIZE = 32  # data set specs whose drawing data is kept
CACHE_SECONDS = 600.0  # an entry is computed again after this (an upload replaced by name)

_cache: OrderedDict[str, tuple[float, dict]] = OrderedDict()
_lock = threading.Lock()


def history(store, job_id: str, max_points: int) -> tuple[list[dict], int, int]:
    """(records, total records, stride) with at most `max_points` records."""
    return store.history_sample(job_id, max_points)


def describe(datasets, spec: dict) -> dict:
    """kind, task, classes and the data to draw for a job spec (JSON), cached per data set."""
    dataset_spec = DatasetSpec.model_validate(spec["dataset"])
    key = json.dumps(dataset_spec.model_dump(mode="json"), sort_keys=True)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            _cache.move_to_end(key)
            return hit[1]
    try:
        dataset = datasets.load(dataset_spec)
    except Exception as exc:  # a job whose data set vanished still streams its history
        return {"kind": None, "task": None, "num_classes": None, "class_names": None,
                "data": {"error": f"the data set could not be loaded: {exc}"}}
    shape = dataset.shape
    described = {"kind": shape.kind, "task": shape.task, "num_classes": shape.num_classes,
                 "class_names": shape.class_names, "data": samples.describe(dataset)}
    with _lock:
        _cache[key] = (now, described)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return described
