"""The engine's side of the disk limits (issue 12): pause before writes can fail, and never
lose an epoch when one fails anyway.

`DiskGuard` is a mixin of `Engine` (it uses the engine's `store`, `settings`, `_jobs`,
`_set_status`, `_set_progress`, `_emit`; `_Job.unwritten` and `_Job.note`, which
`_set_progress` adds to the job's progress); its methods run in the worker thread:

- `_guard_disk()` (housekeeping, once a second): while the data directory has less than
  `settings.min_free_disk_mb` free, running and queued jobs are paused with the reason as
  their `stop_reason`; resuming or stepping is refused (Conflict, 409) until there is room.
- `_write_history(job, records)`: a history write SQLite refuses (disk full, I/O error) pauses
  the job with the error as its `error` and `stop_reason`, and keeps the records in
  `job.unwritten`; they are written first when the job resumes, steps or stops (or those
  actions are refused while they still cannot be), so the history never has a gap. While a
  job holds unwritten records no checkpoint is written: after a crash it replays from a
  checkpoint no later than its last written epoch.
- `_checkpoint_blocked(job)`: also skips a checkpoint that would take the disk below the
  minimum (the old one stays; the trainer stays in memory).

What is not here: the limits themselves and the 507 answers (server/disk.py).
"""

from __future__ import annotations

import logging
import sqlite3
import time

from server import disk

log = logging.getLogger("playground.engine")

HISTORY_UNWRITTEN = (
    "paused: its training history could not be saved ({error}); epochs {first} to {last} are "
    "kept and will be saved when it goes on. Free disk space (delete old jobs or uploads), "
    "then press play."
)
STILL_UNWRITTEN = ("This job's last epochs still cannot be saved ({error}); free disk space, "
                   "then try again.")


class DiskGuard:
    """Mixin of Engine: the free-space guard and durable history writes."""

    def _guard_disk(self) -> None:
        active = [j for j in self._jobs.values() if j.status in ("running", "queued")]
        if not active:
            return
        low = disk.low_space(self.settings)
        if low is None:
            return
        log.warning("disk low: pausing %d job(s): %s", len(active), low)
        for job in active:
            self._pause_for_storage(job, low, error=False)

    def _storage_ready(self, job) -> None:
        """Before a job trains again: room on the disk and its history saved, else Conflict."""
        from server.engine.engine import Conflict

        low = disk.low_space(self.settings)
        if low is not None:
            raise Conflict(low)
        self._flush_history(job)

    def _flush_history(self, job) -> None:
        """Write the records a failed write kept; Conflict when it fails again."""
        from server.engine.engine import Conflict

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

    def _write_history(self, job, records: list[dict]) -> bool:
        """Write `records` after any kept earlier; False (job paused, records kept) when
        SQLite refuses."""
        pending = [*job.unwritten, *records]
        try:
            self.store.add_metrics(job.id, pending, step=job.step)
        except sqlite3.Error as exc:
            job.unwritten = pending
            log.error("job %s: history write failed (%s); %d epoch(s) kept in memory",
                      job.id, exc, len(pending))
            message = HISTORY_UNWRITTEN.format(error=exc, first=pending[0]["epoch"],
                                               last=pending[-1]["epoch"])
            self._pause_for_storage(job, message, error=True)
            return False
        job.unwritten = []
        return True

    def _checkpoint_blocked(self, job) -> bool:
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

    def _pause_for_storage(self, job, message: str, error: bool) -> None:
        """Pause `job` showing `message`; if its row cannot be written either, the engine's
        own state (progress, status events) still says paused, with the message."""
        fields = {"stop_reason": message, **({"error": message} if error else {})}
        try:
            self._set_status(job, "paused", **fields)
            return
        except sqlite3.Error as exc:
            log.error("job %s: status could not be saved: %s", job.id, exc)
        job.status = "paused"
        job.note = {"error": fields.get("error"), "stop_reason": message}
        self._set_progress(job)
        self._emit({"type": "status", "job_id": job.id, "status": "paused", "epoch": job.epoch,
                    "step": job.step, "error": fields.get("error"), "stop_reason": message})
