"""The engine's job table and every change made to a job: where a job's status changes.

`JobTable` holds the jobs of one device (`jobs`: id -> `server.engine.job.Job`) and applies
what the other parts decide: `set_status` is the one place a job's status changes (store row,
progress, status event, promotion of queued jobs into free places); `run_slice` trains the job
the scheduler chose and charges it; `send_frames` sends the frames `Frames` says are due;
`checkpoint_due` and `housekeeping` (once a second: free idle trainers, pause jobs nobody
watches, pause jobs before a full disk) keep the rest in order; `recover` loads the stored jobs
at start (an interrupted job comes back paused at its last checkpoint). Those last three are
the table's `Upkeep` part (server/engine/upkeep.py).

Only the worker thread calls it, except `progress` (a dict other threads read under `lock`)
and `looked_at` (REST reads, under `lock`).
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from server.engine.events import ErrorEvent, Event, MetricsEvent, SnapshotEvent, StatusEvent
from server.engine.frames import Frames
from server.engine.job import Job
from server.engine.lifecycle import TERMINAL, JobNotFound
from server.engine.rewind import Rewinds
from server.engine.scheduler import Scheduler
from server.engine.storage import Storage
from server.engine.trainers import BuildFailed, Trainers, failure
from server.engine.upkeep import Upkeep
from server.json_text import finite
from server.timeline import Timeline
from server.train.protocol import Diverged

log = logging.getLogger("playground.engine")
GUARD_RECORDS = 2000  # records written between two looks at the free disk space


class JobTable(Upkeep):
    """The jobs and the effects applied to them (worker thread)."""

    def __init__(self, settings, store, scheduler: Scheduler, trainers: Trainers) -> None:
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.trainers = trainers
        self.frames = Frames(settings)
        self.storage = Storage(store, settings)
        self.timeline = Timeline(store)  # issue 16: pictures kept with the history
        self.jobs: dict[str, Job] = {}
        self.seq = itertools.count()
        self.progress: dict[str, dict] = {}  # read by other threads, under `lock`
        self.looked_at: dict[str, float] = {}  # job id -> monotonic time of a REST read
        self.lock = threading.Lock()
        self.loop = None
        self.on_event: Callable[[Event], None] | None = None
        self._held: list[Event] | None = None  # events waiting for the end of `held`
        self._since_guard = 0  # records written since the disk was last looked at
        self._last_housekeeping = 0.0
        self._wall_clock = trainers.device.type == "cuda"
        self.families = None  # server.engine.families.Families, set by the engine
        self.rewinds = Rewinds(self)  # a divergence pauses at the last good state (issue 16)

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound("Job not found")
        return job

    def remove(self, job: Job) -> None:
        """Forget a job (delete): its trainer, progress and command clock go."""
        self.trainers.free(job)
        del self.jobs[job.id]
        self.scheduler.forget(job.id)
        self.rewinds.forget(job.id)
        with self.lock:
            self.progress.pop(job.id, None)
            self.looked_at.pop(job.id, None)

    def running(self) -> bool:
        return any(j.status == "running" for j in self.jobs.values())

    def shutdown(self) -> None:
        """Checkpoint what trained since the last checkpoint."""
        self.timeline.drain(self.jobs, busy=False)  # the pictures still to draw (issue 16)
        for job in list(self.jobs.values()):
            if job.trainer is not None and job.dirty and job.status != "failed":
                self.checkpoint(job)

    # -- training ---------------------------------------------------------------------------

    def _clock(self) -> float:
        return time.perf_counter() if self._wall_clock else time.thread_time()

    def run_slice(self, job: Job) -> None:
        trainer = self.ensure_trainer(job)
        if trainer is None:
            return
        if trainer.finished:
            self.finish(job)
            return
        units = self.families.units(self.jobs) if self.families is not None else None
        n = self.timeline.limit(trainer, self.scheduler.batches(job, self.jobs, units))
        start_wall, start_clock = time.perf_counter(), self._clock()
        records, message = self.train(job, trainer.train_batches, n)
        if message is not None:
            # Out of the except block, so that no traceback frame keeps the trainer alive.
            del trainer
            self.fail(job, message)
            return
        self.scheduler.charge(job, self._clock() - start_clock, int(trainer.step) - job.step,
                              self.owner_share(job))
        self.scheduler.timed(job, time.perf_counter() - start_wall, n)
        job.dirty = job.trained_since_frame = True
        self.record(job, records)
        if trainer.finished:
            self.finish(job)

    def run_family_slice(self, family) -> None:
        """One slice of a family: every member trains the same number of steps; each is
        charged its share of the time; a member that fails or finishes leaves the family."""
        members = self.families.members(family, self.jobs)
        n = self.scheduler.batches(family, self.jobs, self.families.units(self.jobs),
                                   shared=len(members) > 1)
        n = self.timeline.limit_family([j.trainer for j in members], n)
        wait = self.frames.slice_seconds(members, time.monotonic())  # frames keep their rate
        if wait is not None and family.seconds_per_batch > 0:
            n = max(1, min(n, int(wait / family.seconds_per_batch)))
        for job in members:
            self.timeline.initial(job)  # epoch 0 of a member that has not trained yet
        start_wall, start_clock = time.perf_counter(), self._clock()
        try:
            results = family.train(n)
        except Exception as exc:  # a bug in the family: every member trains alone again
            log.exception("family slice failed; its jobs train alone")
            self.families.release_all()
            del exc
            return
        share = (self._clock() - start_clock) / max(1, len(members))
        owners = self.owner_counts()
        self.scheduler.timed(family, time.perf_counter() - start_wall, n)
        done = []
        for job in members:
            trainer = job.trainer
            records, error = results.get(trainer, ([], None))
            self.scheduler.charge_share(job, share * owners.get(job.owner, 1))
            job.dirty = job.trained_since_frame = True
            if error is not None and self.rewinds.pause_or_fail(job, error):
                continue
            if error is not None:
                message, kept = failure(job.id, error)
                if kept:
                    self.record(job, kept)
                del trainer
                self.fail(job, message)
                continue
            done.append((job, records))
        if members:
            low = min(j.charge for j in members)
            for job in members:
                job.family_charge = low
        self.record_many(done)
        for job, _records in done:
            if job.trainer is not None and job.trainer.finished:
                self.finish(job)

    def owner_counts(self) -> dict[str, int]:
        """Running jobs per owner: each owner's jobs share one owner's part of the device."""
        counts: dict[str, int] = {}
        for job in self.jobs.values():
            if job.status == "running":
                counts[job.owner] = counts.get(job.owner, 0) + 1
        return counts

    def owner_share(self, job: Job) -> int:
        return self.owner_counts().get(job.owner, 1)

    def train(self, job: Job, call: Callable[..., list[dict]],
              *args: Any) -> tuple[list[dict], str | None]:
        """(the records of a training call, None) or ([], the message of its failure); the
        epochs a diverging call did complete are recorded."""
        self.timeline.initial(job)  # epoch 0 of a run that has not trained yet
        try:
            return call(*args), None
        except Exception as exc:
            if isinstance(exc, Diverged) and self.rewinds.pause_or_fail(job, exc):
                return [], None  # paused at its last good state (server.engine.rewind)
            message, records = failure(job.id, exc)
        if records and job.trainer is not None:
            self.record(job, records)
        return [], message

    def record(self, job: Job, records: list[dict]) -> None:
        trainer = job.trainer
        job.epoch, job.step = int(trainer.epoch), int(trainer.step)
        records = [finite(dict(r)) for r in records]
        if records:
            pause = self.storage.write_history(job, records)
            if pause is not None:  # the records are kept: nothing is lost
                self.pause_for_storage(job, pause, error=True)
            self.emit(MetricsEvent(job.id, records))
            self.timeline.after(job, records)
        self.set_progress(job)

    def record_many(self, items: list[tuple[Job, list[dict]]]) -> None:
        """`record` for a family's members: their histories in one transaction."""
        written = []
        for job, records in items:
            job.epoch, job.step = int(job.trainer.epoch), int(job.trainer.step)
            if records:  # a family's records are finite already (family_eval)
                written.append((job, records))
        pauses = self.storage.write_histories(written) if written else {}
        self._since_guard += sum(len(records) for _job, records in written)
        for job, records in written:
            if pauses.get(job.id) is not None:  # the records are kept: nothing is lost
                self.pause_for_storage(job, pauses[job.id], error=True)
            self.emit(MetricsEvent(job.id, records))
            self.timeline.after(job, records)
        for job, _records in items:
            self.set_progress(job)
        # A family writes thousands of records a second: the disk is looked at again after
        # every ~2,000 of them (about 1 MB), not only at the once-a-second housekeeping.
        if self._since_guard >= GUARD_RECORDS:
            self._since_guard = 0
            self._guard_disk()

    def finish(self, job: Job) -> None:
        if job.unwritten:  # it stays paused until its history is saved
            return
        reason = job.trainer.stop_reason if job.trainer is not None else None
        self.checkpoint(job)
        self.set_status(job, "completed", stop_reason=reason, finished_at=time.time())
        self.release_if_idle(job)

    def fail(self, job: Job, message: str) -> None:
        self.trainers.free(job)
        self.emit(ErrorEvent(job.id, message))
        self.set_status(job, "failed", error=message, finished_at=time.time())

    def release_if_idle(self, job: Job) -> None:
        """Free the trainer of a finished job nobody watches (it reloads from its
        checkpoint)."""
        if job.status in TERMINAL and not job.subscribers:
            self.trainers.free(job)

    def ensure_trainer(self, job: Job) -> Any:
        """The job's trainer, built (and loaded from its checkpoint) on first use; None and
        the job failed if that is impossible."""
        job.last_used = time.monotonic()
        if job.trainer is not None:
            return job.trainer
        try:
            trainer = self.trainers.load(job)
        except BuildFailed as exc:
            self.fail(job, str(exc))
            return None
        job.last_checkpoint = time.monotonic()
        self.set_progress(job)
        return trainer

    def send_frames(self) -> None:
        self.timeline.drain(self.jobs, busy=self.running())  # noted at epoch ends (issue 16)
        now = time.monotonic()

        def ready():  # due jobs, their trainers loaded
            for job in self.frames.due(self.jobs, now):
                if self.ensure_trainer(job) is None:
                    job.frame_due = False
                    continue
                yield job

        # A family's members get theirs from one batched pass (server.engine.family_frames).
        for job, data in self.frames.build_many(ready(), now, self.jobs):
            if data is not None:
                self.emit(SnapshotEvent(job.id, data))

    # -- status, progress, events: where a job's status changes -----------------------------

    def set_status(self, job: Job, status: str, **fields: Any) -> None:
        was = job.status
        if status == "running" and was != "running":
            # Joining at the others' clock: neither starved for having run before, nor
            # given a burst for having waited.
            job.charge = self.scheduler.min_charge(self.jobs)
            row = self.store.get_job(job.id)
            if row is not None and not row["started_at"]:
                fields["started_at"] = time.time()
            if not job.subscribers:  # the unwatched clock starts (_pause_unwatched)
                job.unwatched_since = time.monotonic()
        job.status = status
        if status != "failed":
            fields.setdefault("error", None)
        self.store.update_job(job.id, status=status, epoch=job.epoch, step=job.step, **fields)
        self.set_progress(job)
        self.emit(StatusEvent(job.id, status, job.epoch, job.step, fields.get("error"),
                              fields.get("stop_reason"), job.note.get("diverged")))
        if was == "running" and status != "running":
            self.promote()

    def start(self, job: Job) -> None:
        """Make the job runnable: running if there is a place, else queued."""
        self.set_status(job, self.scheduler.start_status(self.jobs))

    def promote(self) -> None:
        """Fill free running places with queued jobs, oldest first."""
        for job in self.scheduler.to_promote(self.jobs):
            self.set_status(job, "running")

    def pause_for_storage(self, job: Job, message: str, error: bool) -> None:
        """Pause `job` showing `message`; if its row cannot be written either, the engine's
        own state (progress, status events) still says paused, with the message."""
        fields = {"stop_reason": message, **({"error": message} if error else {})}
        try:
            self.set_status(job, "paused", **fields)
            return
        except sqlite3.Error as exc:
            log.error("job %s: status could not be saved: %s", job.id, exc)
        job.status = "paused"
        job.note = {"error": fields.get("error"), "stop_reason": message}
        self.set_progress(job)
        self.emit(StatusEvent(job.id, "paused", job.epoch, job.step, fields.get("error"),
                              message))

    def set_progress(self, job: Job) -> None:
        with self.lock:
            self.progress[job.id] = job.progress()

    def emit(self, event: Event) -> None:
        if self.loop is None or self.on_event is None:
            return
        if self._held is not None:
            self._held.append(event)
            return
        try:
            self.loop.call_soon_threadsafe(self.on_event, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    @contextmanager
    def held(self) -> Iterator[None]:
        """Events emitted inside go to the event loop in one call at the end, in order: a
        family's slice emits a metrics event per member and a frame per watched member, and
        each call wakes the event loop, which then takes the interpreter lock from training."""
        if self._held is not None:
            yield
            return
        self._held = []
        try:
            yield
        finally:
            events, self._held = self._held, None
            if events and self.loop is not None and self.on_event is not None:
                try:
                    self.loop.call_soon_threadsafe(self._deliver, events)
                except RuntimeError:
                    pass

    def _deliver(self, events: list[Event]) -> None:
        """On the event loop: each held event, in order (one failing does not stop the rest,
        as separate calls would not)."""
        for event in events:
            try:
                self.on_event(event)
            except Exception:
                log.exception("event handler failed")
