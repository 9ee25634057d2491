"""The engine's writes to the store: history kept compact and never lost, checkpoints, and the
disk guard (issue 12: pause before writes can fail, never lose an epoch when one fails anyway).

`Storage` decides and writes; it never changes a job's status. Where a job must pause it
returns the sentence, and the engine pauses it (`Engine._pause_for_storage`):

- `low_space()` (housekeeping, once a second): while the data directory has less than
  `settings.min_free_disk_mb` free, the sentence that running and queued jobs pause with (as
  their `stop_reason`); resuming or stepping is refused (`ready`, Conflict, 409) until there is
  room.
- `write_history(job, records)`: records as the store keeps them (`stored_record`: the first
  `history_detail_epochs` epochs whole, past them the confusion matrices only every
  `history_detail_every`-th epoch). A write SQLite refuses (disk full, I/O error) keeps the
  records in `job.unwritten` and returns the sentence the job pauses with (as its `error` and
  `stop_reason`); they are written first when the job resumes, steps or stops (`flush`, or
  those actions are refused while they still cannot be), so the history never has a gap.
- `checkpoint(job)`: writes one, unless the job holds unwritten records (after a crash it
  replays from a checkpoint no later than its last written epoch) or the write would take the
  disk below the minimum (the old one stays; the trainer stays in memory).

What is not here: the limits themselves and the 507 answers (server/disk.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from server import disk
from server.engine.lifecycle import Conflict

log = logging.getLogger("playground.engine")

DETAIL_SUFFIX = "_confusion_matrix"
HISTORY_UNWRITTEN = (
    "paused: its training history could not be saved ({error}); epochs {first} to {last} are "
    "kept and will be saved when it goes on. Free disk space (delete old jobs or uploads), "
    "then press play."
)
STILL_UNWRITTEN = ("This job's last epochs still cannot be saved ({error}); free disk space, "
                   "then try again.")


DETAIL_KEYS = tuple(f"{split}{DETAIL_SUFFIX}" for split in ("train", "validation", "test"))


def stored_record(record: dict, settings) -> dict:
    """`record` as the store keeps it (see the module docstring)."""
    epoch = int(record.get("epoch") or 0)
    keep_all = getattr(settings, "history_detail_epochs", 1000)
    every = getattr(settings, "history_detail_every", 10)
    if epoch <= keep_all or epoch % every == 0:
        return record
    if not any(key in record for key in DETAIL_KEYS):
        return record
    kept = dict(record)  # a family writes thousands a second: a copy and three pops
    for key in DETAIL_KEYS:
        kept.pop(key, None)
    return kept


class Storage:
    """History, checkpoints and the free-space guard over `store` (worker thread only)."""

    def __init__(self, store, settings) -> None:
        self.store = store
        self.settings = settings

    def low_space(self) -> str | None:
        return disk.low_space(self.settings)

    def ready(self, job: Any) -> None:
        """Before a job trains again: room on the disk and its history saved, else Conflict."""
        low = disk.low_space(self.settings)
        if low is not None:
            raise Conflict(low)
        self.flush(job)

    def flush(self, job: Any) -> None:
        """Write the records a failed write kept; Conflict when it fails again."""
        if not job.unwritten:
            job.note = {}
            return
        try:
            self.store.add_metrics(job.id, job.unwritten, step=job.step)
        except sqlite3.Error as exc:
            raise Conflict(STILL_UNWRITTEN.format(error=exc)) from None
        log.info("job %s: %d kept epoch(s) saved", job.id, len(job.unwritten))
        job.unwritten = []
        job.note = {}

    def write_histories(self, items: list[tuple[Any, list[dict]]]) -> dict[str, str | None]:
        """`write_history` for several jobs in one transaction; if SQLite refuses it, each
        job is written (or its records kept) on its own. {job id: pause sentence or None}."""
        batch, pending_of = [], {}
        for job, records in items:
            pending = [*job.unwritten, *(stored_record(r, self.settings) for r in records)]
            pending_of[job.id] = pending
            batch.append((job.id, pending, {"step": job.step}))
        try:
            self.store.add_metrics_many(batch)
        except sqlite3.Error:
            return {job.id: self.write_history(job, records) for job, records in items}
        for job, _records in items:
            job.unwritten = []
        return {job.id: None for job, _records in items}

    def write_history(self, job: Any, records: list[dict]) -> str | None:
        """Write `records` (kept compact) after any kept earlier; when SQLite refuses, keep
        them and return the sentence the job pauses with."""
        stored = [stored_record(r, self.settings) for r in records]
        pending = [*job.unwritten, *stored]
        try:
            self.store.add_metrics(job.id, pending, step=job.step)
        except sqlite3.Error as exc:
            job.unwritten = pending
            log.error("job %s: history write failed (%s); %d epoch(s) kept in memory",
                      job.id, exc, len(pending))
            return HISTORY_UNWRITTEN.format(error=exc, first=pending[0]["epoch"],
                                            last=pending[-1]["epoch"])
        job.unwritten = []
        return None

    def checkpoint(self, job: Any) -> None:
        """Save the job's trainer state (see the module docstring for when it is skipped)."""
        trainer = job.trainer
        if trainer is None or self._blocked(job):
            return
        try:
            meta = {"engine": {"epoch": int(trainer.epoch), "step": int(trainer.step)},
                    "trainer": trainer.state_meta()}
            self.store.save_checkpoint(job.id, trainer.state_tensors(), meta)
        except Exception:
            log.exception("checkpoint of job %s failed", job.id)
            return
        job.dirty = False
        job.last_checkpoint = time.monotonic()
        self.store.update_job(job.id, epoch=job.epoch, step=job.step)

    def _blocked(self, job: Any) -> bool:
        blocked = bool(job.unwritten)
        if not blocked:
            try:
                size = self.store.checkpoint_path(job.id).stat().st_size
            except OSError:
                size = 0
            low = disk.low_space(self.settings, needed=size)
            if low is not None:
                log.warning("checkpoint of job %s skipped: %s", job.id, low)
                blocked = True
        if blocked:  # the next try waits its checkpoint_seconds, not the next loop
            job.last_checkpoint = time.monotonic()
        return blocked
