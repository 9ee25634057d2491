"""ActorStore: the store an engine actor's `Engine` writes to, in place of the server's SQLite.

The engine uses a narrow part of `server.store.Store` (server/engine/jobs.py, storage.py,
commands.py, trainers.py): `get_job`, `update_job`, `list_jobs`, `add_metrics`,
`add_metrics_many`, `truncate_history`, `save_checkpoint`, `load_checkpoint`,
`checkpoint_meta`, `checkpoint_path`, `delete_checkpoint` and `delete_job`. Here each write is
queued in the actor's `Outbox` for the server to apply to its real store, in the same order;
the reads answer from what the actor holds: a small row per job (status, owner, started_at,
error: what the engine reads back) and the job's latest checkpoint as bytes (what the server
sent when it placed the job, then what the engine saved). Checkpoints travel as the bytes of the
file the server keeps (`checkpoint_bytes`), so any actor can resume any job.
"""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from server.checkpoint_files import CHECKPOINT_FORMAT
from server.cluster.outbox import Outbox
from server.json_text import dumps as _dumps

ROW_FIELDS = ("status", "owner", "started_at", "error", "stop_reason", "name")


def checkpoint_bytes(tensors: dict[str, torch.Tensor], meta: dict) -> bytes:
    """A checkpoint file's bytes, exactly as `Store.save_checkpoint` writes them."""
    return save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
                metadata={"format": CHECKPOINT_FORMAT, "meta": _dumps(meta)})


def checkpoint_header(data: bytes) -> dict | None:
    """The meta of checkpoint bytes (None if they are not a playground checkpoint)."""
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size]).get("__metadata__") or {}
        if header.get("format") != CHECKPOINT_FORMAT:
            return None
        return json.loads(header.get("meta", "{}"))
    except (ValueError, struct.error, TypeError):
        return None


class ActorStore:
    """The engine's store inside an actor (see the module docstring). Thread-safe."""

    def __init__(self, outbox: Outbox, scratch: Path) -> None:
        self.outbox = outbox
        self.scratch = scratch  # node-local; checkpoint_path points here (never written)
        self.rows: dict[str, dict] = {}
        self.checkpoints: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # -- what the server hands over with a job ----------------------------------------------

    def adopt(self, job_id: str, row: dict, checkpoint: bytes | None) -> None:
        with self._lock:
            self.rows[job_id] = {k: row.get(k) for k in ROW_FIELDS}
            if checkpoint:
                self.checkpoints[job_id] = checkpoint
            else:
                self.checkpoints.pop(job_id, None)

    def forget(self, job_id: str) -> None:
        with self._lock:
            self.rows.pop(job_id, None)
            self.checkpoints.pop(job_id, None)

    # -- jobs -------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> dict | None:
        with self._lock:
            row = self.rows.get(job_id)
            return dict(row) if row is not None else None

    def list_jobs(self, token: str | None = None) -> list[dict]:
        return []  # the server recovers the stored jobs and places them (server/cluster/)

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            row = self.rows.get(job_id)
            if row is not None:
                row.update({k: v for k, v in fields.items() if k in ROW_FIELDS})
        self.outbox.write("update_job", job_id, **fields)

    def delete_job(self, job_id: str) -> None:
        self.forget(job_id)
        self.outbox.write("delete_job", job_id)

    # -- history ----------------------------------------------------------------------------

    def add_metrics(self, job_id: str, records: list[dict], **job_fields: Any) -> None:
        if records or job_fields:
            self.outbox.write("add_metrics", job_id, list(records), **job_fields)

    def add_metrics_many(self, batch: list[tuple[str, list[dict], dict]]) -> None:
        self.outbox.write("add_metrics_many", [(j, list(r), dict(f)) for j, r, f in batch])

    def truncate_history(self, job_id: str, after_epoch: int) -> None:
        self.outbox.write("truncate_history", job_id, after_epoch)

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint_path(self, job_id: str) -> Path:
        return self.scratch / f"{job_id}.safetensors"

    def save_checkpoint(self, job_id: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        data = checkpoint_bytes(tensors, meta)
        with self._lock:
            self.checkpoints[job_id] = data
        self.outbox.write("checkpoint", job_id, data)

    def load_checkpoint(self, job_id: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        with self._lock:
            data = self.checkpoints.get(job_id)
        if data is None:
            return None
        meta = checkpoint_header(data)
        if meta is None:
            return None
        try:
            return load(data), meta
        except Exception:  # a damaged checkpoint is no checkpoint (as Store.load_checkpoint)
            return None

    def checkpoint_meta(self, job_id: str) -> dict | None:
        with self._lock:
            data = self.checkpoints.get(job_id)
        return checkpoint_header(data) if data is not None else None

    def delete_checkpoint(self, job_id: str) -> None:
        with self._lock:
            self.checkpoints.pop(job_id, None)
        self.outbox.write("delete_checkpoint", job_id)


class ActorTimeline:
    """The kept pictures of an actor's jobs (server/timeline_store.py's `TimelineStore`, issue
    16) as the actor's engine sees them: `put` and `drop` are queued for the server's store
    like the other writes (`timeline.put`, `timeline.drop`); which epochs are kept is known
    here (the server sends a job's list when it places it), the pictures themselves are not
    (they are read on the server)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.kept: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def adopt(self, job_id: str, epochs: list[tuple[int, int]]) -> None:
        with self._lock:
            self.kept[job_id] = {int(e): int(s) for e, s in epochs}

    def put(self, job_id: str, epoch: int, step: int, frame: bytes) -> None:
        with self._lock:
            self.kept.setdefault(job_id, {})[int(epoch)] = int(step)
        self.outbox.write("timeline.put", job_id, int(epoch), int(step), bytes(frame))

    def epochs(self, job_id: str) -> list[tuple[int, int]]:
        with self._lock:
            return sorted(self.kept.get(job_id, {}).items())

    def at_or_before(self, job_id: str, epoch: int) -> None:
        return None

    def drop(self, job_id: str, epochs: list[int]) -> None:
        if not epochs:
            return
        with self._lock:
            for epoch in epochs:
                self.kept.get(job_id, {}).pop(int(epoch), None)
        self.outbox.write("timeline.drop", job_id, [int(e) for e in epochs])

    def stored_bytes(self, job_id: str) -> int:
        return 0


def install_timeline(store: ActorStore) -> ActorTimeline | None:
    """Make `TimelineStore.of(store)` answer with an ActorTimeline (the engine's Timeline asks
    for it when it is built); None when this version has no timeline."""
    try:
        from server import timeline_store
    except ImportError:
        return None
    timeline = ActorTimeline(store.outbox)
    timeline_store._OPEN[store] = timeline
    return timeline
