"""The parts of a stream's `hello` that come from the store and the data set, not the engine.

`history(store, job_id, max_points, latest)` is the metric history downsampled to at most
`max_points` records (for every `stride`-th epoch from the first, the first stored record at or
after it; the last one always) with the total and the stride; the whole history is paged from
`GET /api/jobs/{id}/metrics?since=&limit=`.
`describe(datasets, spec)` is the data the client draws under the snapshots, computed once per
data set spec and kept in a small cache, so that a client reconnecting in a loop costs a
dictionary lookup. Both run in a worker thread (asyncio.to_thread), never in the engine's.
"""

from __future__ import annotations

import bisect
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


def history(store, job_id: str, max_points: int,
            latest: dict | None = None) -> tuple[list[dict], int, int]:
    """(records, total stored records, stride in epochs) with at most `max_points` records
    spread evenly over the epochs, not over the records: past `history_full_epochs` one epoch
    in 10 or fewer is stored, and a sample by record would crowd the run's first epochs.
    `latest`, the job's latest metrics, close it when their epoch was not stored. They must be
    read before the history (the stream reads the job when it authorizes the client): they are
    written with the records up to them, so an epoch stored after that read is newer than
    them, and no stored epoch is skipped."""
    epochs = store.history_epochs(job_id)
    total = len(epochs)
    if not (epochs and isinstance(latest, dict) and latest.get("epoch", 0) > epochs[-1]):
        latest = None
    room = max_points - (latest is not None)
    if total <= room:
        records, stride = store.history(job_id), 1
    else:
        chosen, stride = pick_epochs(epochs, room)
        records = store.history_at(job_id, chosen)
    return records + ([latest] if latest else []), total, stride


def pick_epochs(epochs: list[int], max_points: int) -> tuple[list[int], int]:
    """(at most `max_points` of the sorted `epochs`, stride): for every stride-th epoch from
    the first, the first stored epoch at or after it, and the last always. With every epoch
    stored that is every stride-th epoch."""
    first, last = epochs[0], epochs[-1]
    if max_points < 2:
        return [last], max(1, last - first + 1)
    stride = max(1, -(-(last - first + 1) // (max_points - 1)))
    chosen, i = [], 0
    for target in range(first, last, stride):
        i = bisect.bisect_left(epochs, target, i)
        if epochs[i] >= last:
            break
        if not chosen or epochs[i] != chosen[-1]:
            chosen.append(epochs[i])
    chosen.append(last)
    return chosen, stride


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
