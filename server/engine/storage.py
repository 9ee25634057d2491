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
  `history_detail_every`-th epoch), and only the epochs `history_keeps` keeps: every one of
  the first `history_full_epochs`, then one in 10, past ten times as many one in 100, and so on
  (a run of a million epochs stores about 28,000; the job's latest metrics are still those of
  its last epoch). A write SQLite refuses (disk full, I/O error) keeps the
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


def history_keeps(epoch: int, full: int) -> bool:
    """Whether the stored history keeps `epoch`: every one up to `full` (0: every one,
    always); up to 10 x `full` the multiples of 10; up to 100 x `full` those of 100; ..."""
    if full <= 0 or epoch <= full:
        return True
    stride, limit = 10, full * 10
    while epoch > limit:
        stride, limit = stride * 10, limit * 10
    return epoch % stride == 0


def kept(records: list[dict], settings) -> tuple[list[dict], dict]:
    """(the records the store keeps, compact; the job fields that go with them: the latest
    metrics and epoch when the last record is not kept)."""
    full = getattr(settings, "history_full_epochs", 0)
    stored = [stored_record(r, settings) for r in records
              if history_keeps(int(r.get("epoch") or 0), full)]
    last = records[-1] if records else None
    if last is not None and (not stored or stored[-1].get("epoch") != last.get("epoch")):
        return stored, {"metrics": last, "epoch": int(last["epoch"])}
    return stored, {}


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
        batch = []
        for job, records in items:
            stored, latest = kept(records, self.settings)
            batch.append((job.id, [*job.unwritten, *stored], {"step": job.step, **latest}))
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
        stored, latest = kept(records, self.settings)
        pending = [*job.unwritten, *stored]
        try:
            self.store.add_metrics(job.id, pending, step=job.step, **latest)
        except sqlite3.Error as exc:
            if not pending:  # only the latest metrics of epochs the history skips
                log.warning("job %s: latest metrics not saved (%s)", job.id, exc)
                return None
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
