"""The job table's upkeep: checkpoints, housekeeping and recovery at start.

`Upkeep` is a part of `server.engine.jobs.JobTable` (a mixin, kept apart to keep the table
readable): `checkpoint` (a family member's optimizer state first), `checkpoint_due` (every
`checkpoint_seconds`), `housekeeping` (once a second: free idle trainers, pause jobs nobody
watches, pause jobs before a full disk) and `recover` (the stored jobs at start: an
interrupted job comes back paused at its last checkpoint, its history after it deleted). It
uses the table's `jobs`, `store`, `storage`, `trainers`, `settings`, `lock`, `looked_at`,
`set_status`, `set_progress` and `pause_for_storage`.
"""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from server.engine import lifecycle
from server.engine.job import Job
from server.engine.lifecycle import TERMINAL
from server.engine.trainers import idle_to_free, short
from server.spec.job import JobSpec

log = logging.getLogger("playground.engine")
UNWATCHED = "paused: nobody was watching it (the page was closed); press play to go on"


class Upkeep:
    """Checkpoints, housekeeping and recovery of the job table (worker thread)."""

    def checkpoint(self, job: Job) -> None:
        if self.families is not None:
            self.families.sync(job)  # a family member's optimizer state into its trainer
        self.storage.checkpoint(job)

    def checkpoint_due(self) -> None:
        now = time.monotonic()
        for job in self.jobs.values():  # paused too: `step` leaves its checkpoint to this
            if (job.dirty and job.trainer is not None and job.status in ("running", "paused")
                    and now - job.last_checkpoint >= self.settings.checkpoint_seconds):
                self.checkpoint(job)

    def housekeeping(self) -> None:
        """Once a second at most: free idle trainers, pause jobs nobody watches, pause jobs
        before a full disk makes writes fail."""
        now = time.monotonic()
        if now - self._last_housekeeping < 1.0:
            return
        self._last_housekeeping = now
        for job in idle_to_free(self.jobs, self.settings.max_running_jobs):
            if job.dirty:
                self.checkpoint(job)
            if not job.dirty:  # a failed checkpoint keeps the trainer
                self.trainers.free(job)
        self._pause_unwatched(now)
        self._guard_disk()

    def _pause_unwatched(self, now: float) -> None:
        """Pause jobs that train until stopped and that nobody has watched for
        settings.unwatched_job_seconds: a browser tab killed without a goodbye, or a script
        that started one and went away, leaves such a job behind. Watching: a stream, or a
        REST read of the job or its metrics (`watched`); the clock starts when it runs."""
        limit = self.settings.unwatched_job_seconds
        if limit <= 0:
            return
        with self.lock:
            looked_at = dict(self.looked_at)
            self.looked_at = {k: v for k, v in looked_at.items() if k in self.jobs}
        for job in list(self.jobs.values()):
            since = max(job.unwatched_since or now, looked_at.get(job.id, -1.0))
            if (job.status == "running" and job.unwatched_since is not None
                    and not job.subscribers and lifecycle.epochs(job.spec) is None
                    and now - since >= limit):
                job.unwatched_since = None
                if job.dirty:
                    self.checkpoint(job)
                self.set_status(job, "paused", stop_reason=UNWATCHED)

    def _guard_disk(self) -> None:
        """While the disk is low, running and queued jobs pause (storage.Storage.low_space)."""
        active = [j for j in self.jobs.values() if j.status in ("running", "queued")]
        if not active:
            return
        low = self.storage.low_space()
        if low is None:
            return
        log.warning("disk low: pausing %d job(s): %s", len(active), low)
        for job in active:
            self.pause_for_storage(job, low, error=False)

    def recover(self) -> None:
        """Load every stored job; one that was running or queued comes back paused at its
        last checkpoint, with the history after that checkpoint deleted (it is replayed)."""
        for row in self.store.list_jobs():
            try:
                spec, broken = JobSpec.model_validate(row["spec"]), None
            except ValidationError as exc:  # stored by another version: shown, deletable
                spec = JobSpec.model_construct(**row["spec"])
                broken = "the job could not be built: " + short(exc)
            job = Job(id=row["id"], spec=spec, status=row["status"], seq=next(self.seq),
                      epoch=row["epoch"], step=row["step"], owner=str(row["owner"]))
            if broken is not None:
                job.status = "failed"
                self.store.update_job(job.id, status="failed", error=broken)
            elif job.status not in TERMINAL:
                meta = self.store.checkpoint_meta(job.id) or {}
                done = meta.get("engine", {})
                job.epoch, job.step = int(done.get("epoch", 0)), int(done.get("step", 0))
                self.store.truncate_history(job.id, job.epoch)
                job.status = "paused"
                self.store.update_job(job.id, status="paused", epoch=job.epoch, step=job.step)
            self.jobs[job.id] = job
            self.set_progress(job)
