"""Checkpoint files: one safetensors file per job, written atomically.

`CheckpointFiles` is a part of `server.store.Store` (a mixin: the files beside the database,
under `checkpoint_dir`): save a job's state (its tensors, its JSON meta in the safetensors
header), load it back, read only its meta, delete it, and clear temp files a crash left.
`write_atomic` writes a file so that a `kill -9` at any moment leaves the old content or the
new, never a mix. Checkpoints are read with safetensors only: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from server.json_text import dumps

CHECKPOINT_FORMAT = "playground-checkpoint-1"


class CheckpointFiles:
    """The store's checkpoint files (`self.checkpoint_dir` is set by the store)."""

    checkpoint_dir: Path

    def checkpoint_path(self, job_id: str) -> Path:
        return self.checkpoint_dir / f"{job_id}.safetensors"

    def save_checkpoint(self, job_id: str, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Write the checkpoint atomically: a crash at any moment leaves the old file or the
        new one. `meta` (JSON) travels in the safetensors header."""
        data = save(
            {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
            metadata={"format": CHECKPOINT_FORMAT, "meta": dumps(meta)},
        )
        write_atomic(self.checkpoint_path(job_id), data)

    def load_checkpoint(self, job_id: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        """(tensors, meta) of the job's checkpoint, or None when it has none or it is
        unreadable."""
        path = self.checkpoint_path(job_id)
        if not path.exists():
            return None
        try:
            tensors = load_file(path)
            with safe_open(path, framework="pt") as f:
                header = f.metadata() or {}
            if header.get("format") != CHECKPOINT_FORMAT:
                return None
            return tensors, json.loads(header.get("meta", "{}"))
        except Exception:  # a damaged file is no checkpoint; the job starts over
            return None

    def checkpoint_meta(self, job_id: str) -> dict | None:
        """The meta of the job's checkpoint, read from the header only (cheap)."""
        path = self.checkpoint_path(job_id)
        if not path.exists():
            return None
        try:
            with safe_open(path, framework="pt") as f:
                header = f.metadata() or {}
            if header.get("format") != CHECKPOINT_FORMAT:
                return None
            return json.loads(header.get("meta", "{}"))
        except Exception:
            return None

    def delete_checkpoint(self, job_id: str) -> None:
        self.checkpoint_path(job_id).unlink(missing_ok=True)

    def _remove_stale_temp_files(self) -> None:
        for tmp in self.checkpoint_dir.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves the old content or the new, never a mix:
    temp file in the same folder, fsync, rename over, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
