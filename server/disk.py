"""Disk limits: the free-space guard, the checkpoint quota's estimate, and 507 answers.

The guard: when the data directory's free space falls below `settings.min_free_disk_mb`, new
jobs and uploads are refused (507 Insufficient Storage, with `low_space`'s sentence) and the
engine pauses running jobs (its housekeeping asks `low_space` once a second), so that SQLite
and checkpoint writes never meet a full disk in normal use. Should a write fail anyway (the
disk filled between two checks), `install` turns SQLite's "database or disk is full" into a
507 instead of a 500 (the upload route catches ENOSPC itself), and the engine pauses the job
and keeps its history in memory (server/engine/storage.py).

`free_bytes` is the one place that asks the file system; tests monkeypatch it.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from server.config import Settings

log = logging.getLogger("playground.disk")

MB = 1024 * 1024
DISK_FULL = ("The server's disk is full: what you asked for could not be saved. Ask the "
             "teacher to free space (delete old jobs or uploads), then try again.")


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def low_space(settings: Settings, needed: int = 0) -> str | None:
    """The sentence to refuse or pause with when the data directory would have less than
    `min_free_disk_mb` free after writing `needed` more bytes; None when there is room."""
    minimum = settings.min_free_disk_mb * MB
    if minimum <= 0:
        return None
    try:
        free = free_bytes(settings.data_dir)
    except OSError:
        return None
    if free - needed >= minimum:
        return None
    return (f"The server's disk is almost full ({free // MB} MB free; it keeps at least "
            f"min_free_disk_mb={settings.min_free_disk_mb} MB free), so new jobs and uploads "
            "are refused and training is paused. Ask the teacher to free space (delete old "
            "jobs or uploads); then press play again.")


# Tensors a checkpoint holds per parameter: the weights and up to two optimizer slots
# (Adam's moments), and early stopping's copy of the best weights.
def checkpoint_estimate(parameters: int, early_stopping: bool) -> int:
    """About how many bytes a job's checkpoint takes (float32 tensors)."""
    copies = 3 + (1 if early_stopping else 0)
    return 4 * parameters * copies + 64 * 1024


def storage_refusal(settings: Settings, store, owner: str | None, parameters: int,
                    early_stopping: bool) -> tuple[int, str] | None:
    """(status, sentence) refusing a new job, or None: 507 while the disk is low or past the
    server's checkpoint storage; 413 past the checkpoints `owner` (a student) may keep."""
    low = low_space(settings)
    if low is not None:
        return 507, low
    estimate = checkpoint_estimate(parameters, early_stopping)
    total = settings.max_checkpoint_storage_total
    if total:
        used = store.checkpoint_bytes()
        if used + estimate > total:
            return 507, (f"The server's checkpoints take {used / MB:.0f} MB and this job's would "
                         f"take about {estimate / MB:.1f} MB more, past the {total / MB:.0f} MB "
                         "it keeps for them (max_checkpoint_storage_total); ask the teacher to "
                         "delete old jobs.")
    own = settings.max_checkpoint_storage_per_student
    if own and owner is not None:
        used = store.checkpoint_bytes(owner)
        if used + estimate > own:
            return 413, (f"Your jobs' checkpoints take {used / MB:.1f} MB and this job's would "
                         f"take about {estimate / MB:.1f} MB more, past the {own / MB:.0f} MB "
                         "each student may keep (max_checkpoint_storage_per_student); delete "
                         "one of your jobs or make the model smaller.")
    return None


def is_disk_full(exc: BaseException) -> bool:
    """A write refused for want of space: SQLite's SQLITE_FULL or ENOSPC/EDQUOT."""
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc).lower()
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def install(app: FastAPI) -> None:
    """Answer a request whose SQLite write failed for want of space with 507 and a sentence,
    not a 500. (Routes that write files catch ENOSPC themselves: `is_disk_full`.)"""

    async def full(request: Request, exc: Exception) -> JSONResponse:
        if request.scope["type"] != "http" or not is_disk_full(exc):
            raise exc
        log.warning("disk full on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=507, content={"detail": DISK_FULL})

    app.add_exception_handler(sqlite3.OperationalError, full)
