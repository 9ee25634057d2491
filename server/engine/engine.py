"""Engine: the training engine of one device, as the rest of the server sees it.

The event loop (the API, the stream hub) never touches a model: it calls the public methods
below, which queue a command on the worker (`server.engine.worker`: one thread, its queue and
futures; it knows no jobs) and return a `concurrent.futures.Future`. The worker thread runs
`Engine._run`: it takes the queued commands, runs those whose turn it is, trains one slice of
the next job, sends due frames and does the housekeeping; events go back to the event loop with
`loop.call_soon_threadsafe(on_event, event)`.

Where things are decided (pure) and where they happen:
- What is allowed in which status, and the Conflict sentences: `server.engine.lifecycle`.
- Which job trains next, for how many batches, its virtual clock, and which waiting command
  runs next (fair share, issue 12: a command is charged to the job it names):
  `server.engine.scheduler`.
- What a command does: `server.engine.commands`; a job's status changes only in
  `JobTable.set_status` (`server.engine.jobs`, which also trains slices and keeps house).
- Which frame is due: `server.engine.frames`; what a frame holds: `server.engine.snapshot`.
- Trainers are built and freed by `server.engine.trainers`; history and checkpoints are
  written by `server.engine.storage` (also the disk guard); model files are converted in
  other processes by `server.engine.exports`.

Commands and their answers (futures): `create`, `control` (pause, resume, step by batch or
epoch, stop, reset; an impossible one raises `Conflict` with a sentence for the user),
`patch`, `delete`, `subscribe`/`unsubscribe`, `export`; the glass box's `edit_weight` (paused
jobs only), `inspect` and `misclassified`; `JobNotFound` for an unknown id.
Reads without the worker: `progress(job_id)`, `progress_all()`, `pending_commands()`;
`watched(job_id)` notes that a client looked at a job (REST). A `step` writes no checkpoint
(the normal schedule does, for paused jobs too). A job that trains until stopped and that
nobody watched for `settings.unwatched_job_seconds` is paused (UNWATCHED).

Events (`server.engine.events`, dataclasses with `job_id` and `type`): `StatusEvent`
(status, epoch, step, error, stop_reason; status `deleted` once the job is gone),
`MetricsEvent` (the records of the epochs just completed), `SnapshotEvent` (a frame, only for
jobs with subscribers), `ErrorEvent` (the job failed; its status event follows).

What is not here: the training step (`server.train.trainer.Trainer`), storage
(`server.store.Store`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import torch

from server.engine.commands import Commands
from server.engine.events import Event
from server.engine.exports import ExportPool
from server.engine.families import Families
from server.engine.jobs import JobTable
from server.engine.lifecycle import ACTIONS, TERMINAL, Conflict, JobNotFound
from server.engine.scheduler import Scheduler
from server.engine.trainers import OUT_OF_MEMORY, Trainers, default_trainer_factory, pick_device
from server.engine.upkeep import UNWATCHED
from server.engine.worker import Command, EngineStopped, Worker
from server.store import Store
from server.train import kernel

if TYPE_CHECKING:
    from server.spec.job import JobSpec

_frozen = False  # the process's objects were frozen out of the garbage collector
# The garbage collector's thresholds once the engine runs (CPython's are 700, 10, 10). A class
# of families makes a few hundred thousand small containers a second (epoch records, their
# events); at 700 allocations a young collection ran hundreds of times a second and full ones
# every few seconds, each holding the interpreter lock. Measured with 30 jobs on 2 cores:
# 0.80 of the speed with the collector off; with these, within 3% of it. A trainer that goes
# is still collected at once on CUDA (server.engine.trainers): no GPU memory waits for it.
GC_THRESHOLDS = (50_000, 20, 100)

__all__ = ["ACTIONS", "OUT_OF_MEMORY", "TERMINAL", "UNWATCHED", "Conflict", "Engine",
           "EngineStopped", "JobNotFound", "default_trainer_factory"]

log = logging.getLogger("playground.engine")

# Commands that need not take a job out of its family: frames read the live weights.
SEES_LIVE_WEIGHTS = ("subscribe", "unsubscribe", "create")


class Engine:
    """The device's job table. Public methods are safe from any thread; only the worker
    thread runs torch and changes jobs."""

    def __init__(self, settings, store: Store, datasets, *,
                 trainer_factory: Callable[[dict, Any, torch.device], Any] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.datasets = datasets
        self.device = pick_device(settings.device)
        kernel.configure(settings)  # the families' C kernels: on or off, threads, cache
        self._worker = Worker(f"engine-{self.device}")
        self._scheduler = Scheduler(settings.time_slice_ms, settings.max_running_jobs)
        self._table = JobTable(settings, store, self._scheduler,
                               Trainers(self.device, store, datasets, trainer_factory))
        self._families = Families(getattr(settings, "families", True))
        self._table.families = self._families
        self._commands = Commands(self._table)
        self._jobs = self._table.jobs  # the job table (tests read it)
        self._exports = ExportPool(getattr(settings, "max_concurrent_exports", 2),
                                   getattr(settings, "max_queued_exports", 4))

    # -- lifecycle of the engine ------------------------------------------------------------

    def start(self, loop, on_event: Callable[[Event], None]) -> None:
        """Recover the jobs in the store (an interrupted job comes back paused at its last
        checkpoint) and start the worker thread."""
        self._table.loop, self._table.on_event = loop, on_event
        self._table.recover()
        self._worker.start(self._run)

    def stop(self, timeout: float = 30.0) -> None:
        """Checkpoint what trained since the last checkpoint and end the worker thread."""
        if self._worker.stop(timeout):
            self._exports.close()

    # -- commands (any thread) --------------------------------------------------------------

    def create(self, job_id: str, spec: JobSpec) -> Future:
        """Take a job the store already holds, with its validated spec (status queued, or
        paused when `spec.start` is false); resolves to its status dict."""
        return self._worker.submit("create", job_id, spec)

    def control(self, job_id: str, action: str, unit: str = "batch") -> Future:
        """pause, resume, step (`unit` "batch" or "epoch"), stop or reset; resolves to the
        status dict or raises JobNotFound / Conflict."""
        return self._worker.submit("control", job_id, action, unit)

    def patch(self, job_id: str, patch: dict) -> Future:
        """Apply a JobPatch (as JSON, unset fields left out); resolves to the new spec."""
        return self._worker.submit("patch", job_id, patch)

    def delete(self, job_id: str) -> Future:
        """Stop the job, free it and delete it with its history and files."""
        return self._worker.submit("delete", job_id)

    def subscribe(self, job_id: str, options: dict | None = None,
                  subscriber: Any = None) -> Future:
        """Send snapshot frames of this job; `options["hz"]` caps the rate (default
        settings.snapshot_hz, at most settings.max_snapshot_hz); the other options are handed
        to `Snapshots.frame` (server.engine.snapshot). Several subscribers share one frame at
        the fastest rate asked; the latest subscriber's options win. A first frame is sent at
        once."""
        return self._worker.submit("subscribe", job_id, dict(options or {}), subscriber)

    def unsubscribe(self, job_id: str, subscriber: Any = None) -> Future:
        return self._worker.submit("unsubscribe", job_id, subscriber)

    def export(self, job_id: str, format: str) -> Future:
        """The trained model as a file in `format` (a key of server.export.FORMATS); resolves to
        bytes, or raises ExportsBusy at once when every export place is taken. The worker only
        copies the weights; a converter process makes the file."""
        return self._exports.convert(format,
                                     lambda: self._worker.submit("export", job_id, format))

    # -- the glass box (issue 16) -----------------------------------------------------------

    def edit_weight(self, job_id: str, layer: int, name: str, index: list[int],
                    value: float) -> Future:
        """Set one weight or bias (`name` "weight", "bias", ... of layer `layer`, at `index`)
        of a paused job; resolves to `{"layer", "param", "index", "old", "value"}`, or raises
        Conflict (not paused) or SpecError (a bad layer, name or index, with the range)."""
        return self._checked("edit_weight", job_id, layer, name, list(index), float(value))

    def inspect(self, job_id: str, request: dict) -> Future:
        """The forward pass of one sample (`{"split", "index"}`, `{"point": [x, y]}` or
        `{"x": ...}`, optional `target`): every layer's values, the output, the loss, the input
        gradient (server.engine.inspect). Changes no training state."""
        return self._checked("inspect", job_id, dict(request))

    def misclassified(self, job_id: str, limit: int) -> Future:
        """The first `limit` test samples the model gets wrong now."""
        return self._checked("misclassified", job_id, int(limit))

    def _checked(self, name: str, job_id: str, *args: Any) -> Future:
        """A command whose answer may be an `Invalid` request: raised as a SpecError (422)
        here, so that the worker does not log a user's mistake as an engine failure."""
        from server.engine.inspect import Invalid
        from server.spec.errors import SpecError

        result: Future = Future()

        def done(work: Future) -> None:
            try:
                answer = work.result()
            except Exception as exc:  # JobNotFound, Conflict, EngineStopped
                result.set_exception(exc)
                return
            if isinstance(answer, Invalid):
                result.set_exception(SpecError(answer.loc, answer.msg))
            else:
                result.set_result(answer)

        self._worker.submit(name, job_id, *args).add_done_callback(done)
        return result

    def watched(self, job_id: str) -> None:
        """A client read the job (REST): it counts as watched (see _pause_unwatched)."""
        with self._table.lock:
            self._table.looked_at[job_id] = time.monotonic()

    # -- reads (any thread) -----------------------------------------------------------------

    def progress(self, job_id: str) -> dict | None:
        """`{"status", "epoch", "step"}` as the worker last left it, or None."""
        with self._table.lock:
            p = self._table.progress.get(job_id)
            return dict(p) if p else None

    def progress_all(self) -> dict[str, dict]:
        with self._table.lock:
            return {k: dict(v) for k, v in self._table.progress.items()}

    def families(self) -> dict:
        """The families training now (for /metrics): count, sizes, steps/s of each."""
        return self._families.stats()

    def pending_commands(self) -> int:
        """Commands waiting for the worker thread (for /metrics)."""
        return self._worker.queued() + self._scheduler.waiting()

    # -- the worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        if self.device.type == "cpu":
            # Two torch threads on a busy 2-core box made small models 18-35x slower.
            torch.set_num_threads(1)
        self._warm_up()
        while True:
            busy = self._table.running()
            commands, stopped = self._worker.take(block=not busy
                                                  and not self._scheduler.backlog)
            for command in commands:
                self._scheduler.add_command(command.key, command)
            if stopped:
                break
            self._run_commands()
            if self._worker.stopping:
                break
            try:
                self._families.regroup(self._jobs)
                job = self._scheduler.next_job(self._jobs)
                family = self._families.of(job) if job is not None else None
                with self._table.held():  # the slice's events and frames: one call
                    if family is not None:
                        self._table.run_family_slice(family)
                    elif job is not None:
                        self._table.run_slice(job)
                    self._table.send_frames()
                self._table.checkpoint_due()
                self._table.housekeeping()
            except Exception:  # a bug here must not stop every job: log it and go on
                log.exception("engine loop error")
                time.sleep(0.05)
        self._shutdown()

    def _warm_up(self) -> None:
        """Pay one-time costs now rather than in the first job: the first optimizer imports
        torch._dynamo (seconds on a busy machine); the families' C kernels are built (once per
        machine, then cached). Then what the process holds so far (torch's modules: hundreds of
        thousands of objects) is frozen out of the garbage collector, whose full collections
        would otherwise walk it all, 0.1 s each, several times a minute in a busy class, and
        the collector runs less often (GC_THRESHOLDS)."""
        try:
            weight = torch.zeros(1, device=self.device, requires_grad=True)
            torch.optim.SGD([weight], lr=0.1).step()
            if self.device.type == "cpu":
                kernel.library()
        except Exception:
            log.exception("engine warm-up failed")
        global _frozen
        if not _frozen:  # once a process (tests start many engines): what is garbage by now
            _frozen = True  # is collected first, the rest is kept out of later collections
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)

    def _run_commands(self) -> None:
        """Run the waiting commands whose turn it is (the scheduler's order), each charged to
        the job it names."""
        while (turn := self._scheduler.next_command(self._jobs)) is not None:
            key, command, floor = turn
            started = time.perf_counter()
            self._answer(command)
            self._scheduler.charge_command(key, self._jobs, time.perf_counter() - started,
                                           floor)

    def _answer(self, command: Command) -> None:
        if command.name not in SEES_LIVE_WEIGHTS:  # the job trains alone until regrouped
            self._families.detach(self._jobs.get(command.key))
        handler = getattr(self._commands, command.name)
        self._worker.answer(command, handler, quiet=(JobNotFound, Conflict))

    def _shutdown(self) -> None:
        self._table.shutdown()
        self._worker.refuse(self._scheduler.take_all())
