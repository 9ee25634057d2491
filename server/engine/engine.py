"""Engine: the one worker thread per device that owns every torch object.

What is here: the worker thread, its command queue and the scheduler. The event loop (the API,
the stream hub) never touches a model: it calls the public methods below, which put a command on
a thread-safe queue and return a `concurrent.futures.Future`; the worker answers the future and
sends events back with `loop.call_soon_threadsafe(on_event, event)`.

Scheduling: runnable jobs are stepped in time slices of `settings.time_slice_ms` (shorter when
many run, so each gets a turn about every 100 ms); the next job is always the one that has used
the least device time. A job is charged its steps times the recent cost of a step of its shape
(CPU time of this thread on the CPU, wall time on CUDA, averaged over the jobs with the same
data, model and batch size), so equal jobs make equal progress even on a noisy machine, a
costly job pays for its cost, and a job started later joins at the others' clock: not starved,
no burst. Past `settings.max_running_jobs` a job waits as `queued`. A job's trainer is built
(or loaded from its checkpoint) when it first needs one and freed when a finished job has no
subscriber.

Commands and their answers (futures): `create`, `control` (pause, resume, step by batch or
epoch, stop, reset; an impossible one raises `Conflict` with a sentence for the user),
`patch`, `delete`, `subscribe`/`unsubscribe`, `export`; `JobNotFound` for an unknown id.
Reads without the worker: `progress(job_id)`, `progress_all()`, `pending_commands()`;
`watched(job_id)` notes that a client looked at a job (REST).

Commands share the worker fairly with training (issue 12): each command is charged (its wall
time) to the job it names, on the same clock as the job's training; a job that is not running
starts at the running jobs' clock. Waiting commands run least-charged job first, and while jobs
train, a job's commands wait once its clock is ahead of every running job's: a client flooding
one job with commands gets about one share of the worker, like one more training job. A
`step` does not write a checkpoint (the normal schedule does, for paused jobs too), and an
export only copies the weights here; `server.engine.exports` converts them in other processes.

Events (dicts, all with `job_id` and `type`):
- `{"type": "status", "job_id", "status", "epoch", "step", "error", "stop_reason"}`; `status`
  is one of queued, running, paused, completed, stopped, failed, or `deleted` once it is gone.
- `{"type": "metrics", "job_id", "records": [per-epoch dicts]}`: the epochs just completed.
- `{"type": "snapshot", "job_id", "data": bytes}`: a frame from `server.engine.snapshot.frame`,
  only for jobs with subscribers, at most at the subscribed rate.
- `{"type": "error", "job_id", "message"}`: the job failed (its status event follows).

What is not here: the training step (`server.train.trainer.Trainer`), what a frame holds
(`server.engine.snapshot`), storage (`server.store.Store`).
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from server.engine.disk_guard import DiskGuard
from server.engine.exports import ExportPool
from server.engine.history import stored_record
from server.export import FORMATS
from server.store import Store, finite

log = logging.getLogger("playground.engine")

TERMINAL = ("completed", "stopped", "failed")
ACTIONS = ("pause", "resume", "step", "stop", "reset")
WARMUP_SLICES = 2  # a job's first slices pay one-time costs: not counted in its step cost
COST_DECAY = 0.98  # per slice: a step's cost follows about the last 50 slices
ROTATION_S = 0.1  # with many jobs, slices shrink so each job gets a turn this often
MIN_SLICE_S = 0.002
UNWATCHED = "paused: nobody was watching it (the page was closed); press play to go on"
OUT_OF_MEMORY = (
    "out of memory: this model does not fit in the device's memory; "
    "try fewer or smaller layers or a smaller batch size"
)


class JobNotFound(Exception):
    """No job with this id (the API answers 404)."""


class Conflict(Exception):
    """The action is impossible in the job's state (the API answers 409 with the message)."""


class EngineStopped(Exception):
    """The engine is not running; commands cannot be answered."""


@dataclass
class _Job:
    id: str
    spec: dict  # the job spec as JSON, with any PATCH applied
    status: str
    seq: int  # creation order, for the queue
    epoch: int = 0
    step: int = 0
    trainer: Any = None
    dataset: Any = None
    charge: float = 0.0  # device seconds used: the scheduler's virtual clock
    slices: int = 0
    last_used: float = 0.0  # monotonic time its trainer was last needed
    cost_key: str = ""  # jobs with the same key share a step cost (_cost_key)
    seconds_per_batch: float = 0.0  # moving average, to size the next slice
    dirty: bool = False  # trained since the last checkpoint
    last_checkpoint: float = 0.0
    subscribers: dict[Any, dict] = field(default_factory=dict)
    frame_due: bool = False  # a subscriber should get a frame even if nothing trained
    trained_since_frame: bool = False
    last_frame: float = 0.0
    unwatched_since: float | None = None  # monotonic time its last subscriber left
    unwritten: list = field(default_factory=list)  # H5: history records a write failed for
    note: dict = field(default_factory=dict)  # H5: error/stop_reason its row could not take


def default_trainer_factory(spec: dict, dataset: Any, device: torch.device) -> Any:
    from server.spec.job import JobSpec
    from server.train.trainer import Trainer

    return Trainer(JobSpec.model_validate(spec), dataset, device)


def _is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Engine(DiskGuard):  # DiskGuard (H5): disk guard and durable history writes
    """The device thread. Public methods are safe from any thread; only the worker runs torch."""

    def __init__(self, settings, store: Store, datasets, *,
                 trainer_factory: Callable[[dict, Any, torch.device], Any] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.datasets = datasets
        self.device = self._pick_device(settings.device)
        self._trainer_factory = trainer_factory or default_trainer_factory
        self._commands: queue.Queue = queue.Queue()
        self._jobs: dict[str, _Job] = {}
        # shape of job -> [device seconds, steps], both decaying: the recent cost of a step
        self._step_costs: dict[str, list[float]] = {}
        self._seq = itertools.count()
        self._progress: dict[str, dict] = {}
        self._progress_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._loop = None
        self._on_event: Callable[[dict], None] | None = None
        self._frame_fn: Callable | None = None
        self._frame_import_failed = False
        self._last_housekeeping = 0.0
        self._wall_clock = self.device.type == "cuda"
        # Commands taken from the queue, per job id, waiting for their turn (_run_backlog),
        # and the command clock of jobs that are not running.
        self._backlog: dict[str, deque] = {}
        self._command_charge: dict[str, float] = {}
        self._looked_at: dict[str, float] = {}  # job id -> monotonic time of a REST read
        self._exports = ExportPool(getattr(settings, "max_concurrent_exports", 2),
                                   getattr(settings, "max_queued_exports", 4))

    @staticmethod
    def _pick_device(choice: str) -> torch.device:
        if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
            return torch.device("cuda:0")
        return torch.device("cpu")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, loop, on_event: Callable[[dict], None]) -> None:
        """Recover the jobs in the store (an interrupted job comes back paused at its last
        checkpoint) and start the worker thread."""
        self._loop = loop
        self._on_event = on_event
        self._recover()
        self._thread = threading.Thread(target=self._run, name=f"engine-{self.device}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Checkpoint what trained since the last checkpoint and end the worker thread."""
        if self._thread is None:
            return
        self._stopping = True
        self._commands.put(None)
        self._thread.join(timeout)
        self._thread = None
        self._exports.close()

    # -- commands (any thread) -----------------------------------------------------------

    def create(self, job_id: str, spec: dict) -> Future:
        """Take a job the store already holds (status queued, or paused when
        `spec["start"]` is false); resolves to its status dict."""
        return self._submit("create", job_id, spec)

    def control(self, job_id: str, action: str, unit: str = "batch") -> Future:
        """pause, resume, step (`unit` "batch" or "epoch"), stop or reset; resolves to the
        status dict or raises JobNotFound / Conflict."""
        return self._submit("control", job_id, action, unit)

    def patch(self, job_id: str, patch: dict) -> Future:
        """Apply a JobPatch (as JSON, unset fields left out); resolves to the new spec."""
        return self._submit("patch", job_id, patch)

    def delete(self, job_id: str) -> Future:
        """Stop the job, free it and delete it with its history and files."""
        return self._submit("delete", job_id)

    def subscribe(self, job_id: str, options: dict | None = None,
                  subscriber: Any = None) -> Future:
        """Send snapshot frames of this job; `options["hz"]` caps the rate (default
        settings.snapshot_hz, at most settings.max_snapshot_hz); the other options are handed
        to `snapshot.frame`. Several subscribers share one frame at the fastest rate asked;
        the latest subscriber's options win. A first frame is sent at once."""
        return self._submit("subscribe", job_id, dict(options or {}), subscriber)

    def unsubscribe(self, job_id: str, subscriber: Any = None) -> Future:
        return self._submit("unsubscribe", job_id, subscriber)

    def export(self, job_id: str, format: str) -> Future:
        """The trained model as a file in `format` (a key of server.export.FORMATS); resolves to
        bytes, or raises ExportsBusy at once when every export place is taken. The worker only
        copies the weights; a converter process makes the file."""
        result: Future = Future()
        try:
            self._exports.reserve()
        except Exception as exc:  # ExportsBusy
            result.set_exception(exc)
            return result

        def copied(work: Future) -> None:
            try:
                spec, shape, weights = work.result()
            except Exception as exc:  # JobNotFound, Conflict, EngineStopped
                self._exports.release()
                result.set_exception(exc)
                return
            self._exports.run(format, spec, shape, weights, result)

        self._submit("export", job_id, format).add_done_callback(copied)
        return result

    def watched(self, job_id: str) -> None:
        """A client read the job (REST): it counts as watched (see _pause_unwatched)."""
        with self._progress_lock:
            self._looked_at[job_id] = time.monotonic()

    def _submit(self, name: str, *args: Any) -> Future:
        future: Future = Future()
        if self._thread is None or self._stopping:
            future.set_exception(EngineStopped("The training engine is not running."))
            return future
        self._commands.put((name, args, future))
        return future

    # -- reads (any thread) --------------------------------------------------------------

    def progress(self, job_id: str) -> dict | None:
        """`{"status", "epoch", "step"}` as the worker last left it, or None."""
        with self._progress_lock:
            p = self._progress.get(job_id)
            return dict(p) if p else None

    def progress_all(self) -> dict[str, dict]:
        with self._progress_lock:
            return {k: dict(v) for k, v in self._progress.items()}

    def pending_commands(self) -> int:
        """Commands waiting for the worker thread (for /metrics)."""
        return self._commands.qsize() + sum(len(q) for q in list(self._backlog.values()))

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        if self.device.type == "cpu":
            # Two torch threads on a busy 2-core box made small models 18-35x slower.
            torch.set_num_threads(1)
        self._warm_up()
        while True:
            busy = any(j.status == "running" for j in self._jobs.values())
            if not self._drain(block=not busy):
                break
            try:
                job = self._next_job()
                if job is not None:
                    self._run_slice(job)
                self._send_frames()
                self._checkpoint_due()
                self._housekeeping()
            except Exception:  # a bug here must not stop every job: log it and go on
                log.exception("engine loop error")
                time.sleep(0.05)
        self._shutdown()

    def _warm_up(self) -> None:
        """Pay torch's one-time costs now rather than in the first job: the first optimizer
        imports torch._dynamo (seconds on a busy machine)."""
        try:
            weight = torch.zeros(1, device=self.device, requires_grad=True)
            torch.optim.SGD([weight], lr=0.1).step()
        except Exception:
            log.exception("engine warm-up failed")

    def _drain(self, block: bool) -> bool:
        """Take queued commands into the backlog and run those whose turn it is; False once
        stop() was called."""
        block = block and not self._backlog
        try:
            item = self._commands.get(timeout=0.1) if block else self._commands.get_nowait()
        except queue.Empty:
            item = ()
        while item != ():
            if item is None or self._stopping:
                if item is not None:
                    item[2].set_exception(EngineStopped("The training engine stopped."))
                return False
            key = str(item[1][0]) if item[1] else ""
            self._backlog.setdefault(key, deque()).append(item)
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                item = ()
        self._run_backlog()
        return not self._stopping

    def _account(self, key: str, floor: float) -> float:
        """The clock a job's commands are charged on: its training clock while it runs,
        else its command clock, never behind the running jobs' (`floor`)."""
        job = self._jobs.get(key)
        if job is not None and job.status == "running":
            return job.charge
        charge = max(self._command_charge.get(key, floor), floor)
        self._command_charge[key] = charge
        return charge

    def _run_backlog(self) -> None:
        """Run waiting commands, least-charged job first; while jobs train, a job whose clock
        is ahead of every running job's waits for the next turn (see the module docstring)."""
        training = any(j.status == "running" for j in self._jobs.values())
        while self._backlog:
            floor = self._min_charge()
            key = min(self._backlog, key=lambda k: self._account(k, floor))
            if training and self._account(key, floor) > floor:
                break
            queued = self._backlog[key]
            name, args, future = queued.popleft()
            if not queued:
                del self._backlog[key]
            started = time.perf_counter()
            self._run_command(name, args, future)
            cost = time.perf_counter() - started
            job = self._jobs.get(key)
            if job is not None and job.status == "running":
                job.charge += cost
            elif job is not None or key in self._backlog:
                self._command_charge[key] = self._command_charge.get(key, floor) + cost
            if key not in self._backlog and self._command_charge.get(key, 0.0) <= floor:
                self._command_charge.pop(key, None)  # no debt left: forget the account
            training = any(j.status == "running" for j in self._jobs.values())

    def _run_command(self, name: str, args: tuple, future: Future) -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(getattr(self, "_cmd_" + name)(*args))
            except (JobNotFound, Conflict) as exc:
                future.set_exception(exc)
            except Exception as exc:
                log.exception("engine command %s failed", name)
                future.set_exception(exc)

    def _shutdown(self) -> None:
        for job in list(self._jobs.values()):
            if job.trainer is not None and job.dirty and job.status != "failed":
                self._checkpoint(job)
        for waiting in self._backlog.values():
            for item in waiting:
                item[2].set_exception(EngineStopped("The training engine stopped."))
        self._backlog.clear()
        while True:  # answer what is left so that no caller waits forever
            try:
                item = self._commands.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[2].set_exception(EngineStopped("The training engine stopped."))

    # -- scheduling ----------------------------------------------------------------------

    def _next_job(self) -> _Job | None:
        running = [j for j in self._jobs.values() if j.status == "running"]
        if not running:
            return None
        return min(running, key=lambda j: (j.charge, j.seq))

    def _min_charge(self) -> float:
        charges = [j.charge for j in self._jobs.values() if j.status == "running"]
        return min(charges) if charges else 0.0  # charges only compare among running jobs

    def _clock(self) -> float:
        return time.perf_counter() if self._wall_clock else time.thread_time()

    def _run_slice(self, job: _Job) -> None:
        trainer = self._ensure_trainer(job)
        if trainer is None:
            return
        if trainer.finished:
            self._finish(job)
            return
        n = 1 if job.seconds_per_batch <= 0 else max(1, min(100_000, int(
            self._slice_seconds() / job.seconds_per_batch)))
        start_wall, start_clock = time.perf_counter(), self._clock()
        failure = None
        try:
            records = trainer.train_batches(n)
        except Exception as exc:
            failure = self._failure_message(job, exc)
        if failure is not None:
            # Out of the except block, so that no traceback frame keeps the trainer alive.
            del trainer
            self._fail(job, failure)
            return
        wall = time.perf_counter() - start_wall
        self._charge(job, self._clock() - start_clock, int(trainer.step) - job.step)
        per_batch = wall / n
        job.seconds_per_batch = (per_batch if job.seconds_per_batch <= 0
                                 else 0.7 * job.seconds_per_batch + 0.3 * per_batch)
        job.dirty = job.trained_since_frame = True
        self._record(job, records)
        if trainer.finished:
            self._finish(job)

    def _record(self, job: _Job, records: list[dict]) -> None:
        trainer = job.trainer
        job.epoch, job.step = int(trainer.epoch), int(trainer.step)
        records = [finite(dict(r)) for r in records]
        if records:
            stored = [stored_record(r, self.settings) for r in records]
            self._write_history(job, stored)  # H5: a failed write pauses it, keeps them
            self._emit({"type": "metrics", "job_id": job.id, "records": records})
        self._set_progress(job)

    def _finish(self, job: _Job) -> None:
        if job.unwritten:  # H5: it stays paused until its history is saved
            return
        reason = getattr(job.trainer, "stop_reason", None)
        self._checkpoint(job)
        self._set_status(job, "completed", stop_reason=reason, finished_at=time.time())
        self._release_if_idle(job)

    def _charge(self, job: _Job, seconds: float, steps: int) -> None:
        """Advance the job's clock by `steps` at the recent average cost per step of jobs of
        its shape (same data, model, batch size, loss and optimizer). One slice's time is
        noisy on a busy machine (caches, a neighbour on the core) and a job's first slices pay
        one-time costs (allocation, warm-up); an average shared by equal jobs is neither, so
        equal jobs get equal steps, while a costly job still pays for its cost."""
        job.slices += 1
        if not job.cost_key:
            job.cost_key = _cost_key(job.spec)
        cost = self._step_costs.setdefault(job.cost_key, [0.0, 0.0])
        if job.slices > WARMUP_SLICES:
            cost[0] = cost[0] * COST_DECAY + seconds
            cost[1] = cost[1] * COST_DECAY + steps
        if cost[1] > 0:
            job.charge += steps * cost[0] / cost[1]

    def _slice_seconds(self) -> float:
        """settings.time_slice_ms, shortened when many jobs run so that each gets a turn about
        every ROTATION_S (smooth progress and frames); never below MIN_SLICE_S."""
        running = sum(1 for j in self._jobs.values() if j.status == "running")
        configured = self.settings.time_slice_ms / 1000.0
        return min(configured, max(MIN_SLICE_S, ROTATION_S / max(1, running)))

    def _failure_message(self, job: _Job, exc: BaseException) -> str:
        """The short message a failed job shows (the traceback goes to the log)."""
        if type(exc).__name__ == "Diverged":
            message = _short(exc)
            records = getattr(exc, "records", None)
            if records and job.trainer is not None:
                self._record(job, records)
        elif _is_out_of_memory(exc):
            # Strings only in log records: a kept record must not keep the trainer alive.
            log.warning("job %s ran out of memory: %s", job.id, str(exc))
            message = OUT_OF_MEMORY
        else:
            log.error("job %s failed:\n%s", job.id, "".join(traceback.format_exception(exc)))
            message = "training failed: " + _short(exc)
        return message

    def _fail(self, job: _Job, message: str) -> None:
        self._free(job)
        self._emit({"type": "error", "job_id": job.id, "message": message})
        self._set_status(job, "failed", error=message, finished_at=time.time())

    def _free(self, job: _Job) -> None:
        had = job.trainer is not None
        job.trainer = None
        job.dataset = None
        job.dirty = False
        if had:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _release_if_idle(self, job: _Job) -> None:
        """Free the trainer of a finished job nobody watches (it reloads from its
        checkpoint)."""
        if job.status in TERMINAL and not job.subscribers:
            self._free(job)

    def _ensure_trainer(self, job: _Job) -> Any:
        """The job's trainer, built (and loaded from its checkpoint) on first use; None and
        the job failed if that is impossible."""
        job.last_used = time.monotonic()
        if job.trainer is not None:
            return job.trainer
        try:
            if job.dataset is None:
                job.dataset = self._load_dataset(job.spec)
            trainer = self._trainer_factory(job.spec, job.dataset, self.device)
            checkpoint = self.store.load_checkpoint(job.id)
            if checkpoint is not None:
                tensors, meta = checkpoint
                trainer.load_state(tensors, meta.get("trainer", {}))
        except Exception as exc:
            job.dataset = None
            if _is_out_of_memory(exc):
                message = OUT_OF_MEMORY
            else:
                log.error("job %s could not be built:\n%s", job.id,
                          "".join(traceback.format_exception(exc)))
                message = "the job could not be built: " + _short(exc)
            self._fail(job, message)
            return None
        job.trainer = trainer
        job.epoch, job.step = int(trainer.epoch), int(trainer.step)
        job.last_checkpoint = time.monotonic()
        self._set_progress(job)
        return trainer

    def _load_dataset(self, spec: dict) -> Any:
        from server.spec.job import DatasetSpec

        return self.datasets.load(DatasetSpec.model_validate(spec["dataset"]))

    def _promote(self) -> None:
        """Fill free running places with queued jobs, oldest first."""
        running = sum(1 for j in self._jobs.values() if j.status == "running")
        queued = sorted((j for j in self._jobs.values() if j.status == "queued"),
                        key=lambda j: j.seq)
        for job in queued[: max(0, self.settings.max_running_jobs - running)]:
            self._set_status(job, "running")

    def _start(self, job: _Job) -> None:
        """Make the job runnable: running if there is a place, else queued."""
        running = sum(1 for j in self._jobs.values() if j.status == "running")
        self._set_status(job, "running" if running < self.settings.max_running_jobs
                         else "queued")

    # -- state, events, checkpoints ------------------------------------------------------

    def _set_status(self, job: _Job, status: str, **fields: Any) -> None:
        was = job.status
        if status == "running" and was != "running":
            # Joining at the others' clock: neither starved for having run before, nor
            # given a burst for having waited.
            job.charge = self._min_charge()
            row = self.store.get_job(job.id)
            if row is not None and not row["started_at"]:
                fields["started_at"] = time.time()
            if not job.subscribers:  # the unwatched clock starts (_pause_unwatched)
                job.unwatched_since = time.monotonic()
        job.status = status
        if status != "failed":
            fields.setdefault("error", None)
        self.store.update_job(job.id, status=status, epoch=job.epoch, step=job.step, **fields)
        self._set_progress(job)
        self._emit({"type": "status", "job_id": job.id, "status": status, "epoch": job.epoch,
                    "step": job.step, "error": fields.get("error"),
                    "stop_reason": fields.get("stop_reason")})
        if was == "running" and status != "running":
            self._promote()

    def _set_progress(self, job: _Job) -> None:
        with self._progress_lock:
            self._progress[job.id] = {"status": job.status, "epoch": job.epoch,
                                      "step": job.step, **job.note}  # note: H5

    def _status(self, job: _Job) -> dict:
        return {"id": job.id, "status": job.status, "epoch": job.epoch, "step": job.step}

    def _emit(self, event: dict) -> None:
        if self._loop is None or self._on_event is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._on_event, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _checkpoint(self, job: _Job) -> None:
        trainer = job.trainer
        if trainer is None or self._checkpoint_blocked(job):  # H5: unsaved history, low disk
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

    def _housekeeping(self) -> None:
        """Once a second at most: free idle trainers, pause jobs nobody watches."""
        now = time.monotonic()
        if now - self._last_housekeeping < 1.0:
            return
        self._last_housekeeping = now
        self._trim_idle_trainers()
        self._pause_unwatched(now)
        self._guard_disk()  # H5: pause jobs before a full disk makes writes fail

    def _trim_idle_trainers(self) -> None:
        """Keep at most settings.max_running_jobs trainers of paused, unwatched jobs in memory;
        the least recently used others are checkpointed and freed (they reload on use)."""
        idle = [j for j in self._jobs.values()
                if j.trainer is not None and j.status == "paused" and not j.subscribers]
        extra = len(idle) - self.settings.max_running_jobs
        if extra <= 0:
            return
        for job in sorted(idle, key=lambda j: j.last_used)[:extra]:
            if job.dirty:
                self._checkpoint(job)
            if not job.dirty:  # a failed checkpoint keeps the trainer
                self._free(job)

    def _pause_unwatched(self, now: float) -> None:
        """Pause jobs that train until stopped and that nobody has watched for
        settings.unwatched_job_seconds: a browser tab killed without a goodbye, or a script
        that started one and went away, leaves such a job behind. Watching: a stream, or a
        REST read of the job or its metrics (`watched`); the clock starts when it runs."""
        limit = self.settings.unwatched_job_seconds
        if limit <= 0:
            return
        with self._progress_lock:
            looked_at = dict(self._looked_at)
            self._looked_at = {k: v for k, v in looked_at.items() if k in self._jobs}
        for job in list(self._jobs.values()):
            since = max(job.unwatched_since or now, looked_at.get(job.id, -1.0))
            if (job.status == "running" and job.unwatched_since is not None
                    and not job.subscribers and self._epochs(job) is None
                    and now - since >= limit):
                job.unwatched_since = None
                if job.dirty:
                    self._checkpoint(job)
                self._set_status(job, "paused", stop_reason=UNWATCHED)

    def _checkpoint_due(self) -> None:
        now = time.monotonic()
        for job in self._jobs.values():  # paused too: `step` leaves its checkpoint to this
            if (job.dirty and job.trainer is not None and job.status in ("running", "paused")
                    and now - job.last_checkpoint >= self.settings.checkpoint_seconds):
                self._checkpoint(job)

    def _send_frames(self) -> None:
        now = time.monotonic()
        for job in self._jobs.values():
            if not job.subscribers or job.status == "failed":
                continue
            hz = min(self.settings.max_snapshot_hz,
                     max(float(o.get("hz") or self.settings.snapshot_hz)
                         for o in job.subscribers.values()))
            if not (job.frame_due or (job.trained_since_frame
                                      and now - job.last_frame >= 1.0 / hz)):
                continue
            if not self._frame_budget_allows(now - job.last_frame) and (
                    not job.frame_due or job.last_frame > 0):
                # Frame work stays a small share of the worker (issue 5); a frame a new
                # subscriber asked for too, once the job has had one (clients reconnecting in
                # a loop must not buy a frame each, issue 12).
                continue
            frame = self._frame_function()
            if frame is None or self._ensure_trainer(job) is None:
                job.frame_due = False
                continue
            options = {k: v for k, v in list(job.subscribers.values())[-1].items() if k != "hz"}
            try:
                data = frame(job.trainer, job.dataset, options)
            except Exception:
                log.exception("snapshot of job %s failed", job.id)
                data = None
            job.frame_due = job.trained_since_frame = False
            job.last_frame = now
            if data is not None:
                self._emit({"type": "snapshot", "job_id": job.id, "data": data})

    # -- stream (issue 5): the frame budget, see server.engine.snapshot.FrameBudget --------

    def _frame_budget_allows(self, waited: float) -> bool:
        if self._frame_function() is None:
            return True
        from server.engine.snapshot import budget

        return budget.allows(waited)

    def _frame_function(self) -> Callable | None:
        if self._frame_fn is None and not self._frame_import_failed:
            try:
                from server.engine.snapshot import frame
            except Exception:
                log.warning("server.engine.snapshot.frame is not available: no snapshots")
                self._frame_import_failed = True
                return None
            self._frame_fn = frame
        return self._frame_fn

    def _recover(self) -> None:
        """Load every stored job; one that was running or queued comes back paused at its
        last checkpoint, with the history after that checkpoint deleted (it is replayed)."""
        for row in self.store.list_jobs():
            job = _Job(id=row["id"], spec=row["spec"], status=row["status"],
                       seq=next(self._seq), epoch=row["epoch"], step=row["step"])
            if job.status not in TERMINAL:
                meta = self.store.checkpoint_meta(job.id) or {}
                done = meta.get("engine", {})
                job.epoch, job.step = int(done.get("epoch", 0)), int(done.get("step", 0))
                self.store.truncate_history(job.id, job.epoch)
                job.status = "paused"
                self.store.update_job(job.id, status="paused", epoch=job.epoch, step=job.step)
            self._jobs[job.id] = job
            self._set_progress(job)

    # -- command handlers (worker thread) ------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound("Job not found")
        return job

    def _cmd_create(self, job_id: str, spec: dict) -> dict:
        row = self.store.get_job(job_id)
        job = _Job(id=job_id, spec=spec, status=row["status"] if row else "paused",
                   seq=next(self._seq))
        self._jobs[job_id] = job
        self._set_progress(job)
        if spec.get("start", True):
            self._start(job)
        else:
            self._set_status(job, "paused")
        return self._status(job)

    def _cmd_control(self, job_id: str, action: str, unit: str = "batch") -> dict:
        job = self._job(job_id)
        handler = getattr(self, "_action_" + action, None)
        if action not in ACTIONS or handler is None:
            raise Conflict(f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}")
        handler(job, unit) if action == "step" else handler(job)
        return self._status(job)

    def _action_pause(self, job: _Job) -> None:
        if job.status == "paused":
            return
        if job.status in TERMINAL:
            raise Conflict(f"This job has {_past(job.status)}; there is nothing to pause.")
        if job.dirty:
            self._checkpoint(job)
        self._set_status(job, "paused")

    def _action_resume(self, job: _Job) -> None:
        if job.status in ("running", "queued"):
            return
        if job.status in ("stopped", "failed"):
            raise Conflict(f"This job has {_past(job.status)}; reset it to train it again.")
        limit = self._epochs(job)
        if limit is not None and job.epoch >= limit:
            raise Conflict(
                f"This job has completed its {limit} epochs; raise its epochs with PATCH "
                "or reset it to train it again."
            )
        if job.status == "completed":
            trainer = self._ensure_trainer(job)
            if trainer is None:
                raise Conflict("This job could not be loaded again; reset it.")
            _set_trainer_epochs(trainer, limit)
            if trainer.finished:
                reason = getattr(trainer, "stop_reason", None) or "its stopping rule"
                raise Conflict(f"This job has completed ({str(reason).replace('_', ' ')}); "
                               "reset it to train it again.")
        self._storage_ready(job)  # H5: room on the disk, kept history saved
        self._start(job)

    def _action_step(self, job: _Job, unit: str) -> None:
        if job.status in TERMINAL:
            raise Conflict(f"This job has {_past(job.status)}; reset it to train it again.")
        self._storage_ready(job)  # H5: room on the disk, kept history saved
        if job.status != "paused":
            self._action_pause(job)
        trainer = self._ensure_trainer(job)
        if trainer is None:
            raise Conflict(f"This job has failed: {self.store.get_job(job.id)['error']}")
        if trainer.finished:
            self._finish(job)
            raise Conflict("This job has completed its epochs; raise its epochs with PATCH "
                           "or reset it to train it again.")
        failure = None
        try:
            records = trainer.train_epoch() if unit == "epoch" else trainer.train_batches(1)
        except Exception as exc:
            failure = self._failure_message(job, exc)
        if failure is not None:
            del trainer
            self._fail(job, failure)
            return
        job.dirty = job.trained_since_frame = True
        job.frame_due = bool(job.subscribers)
        self._record(job, records)  # no checkpoint per step: _checkpoint_due writes one
        if trainer.finished:
            self._finish(job)

    def _action_stop(self, job: _Job) -> None:
        if job.status == "stopped":
            return
        if job.status in ("completed", "failed"):
            raise Conflict(f"This job has already {_past(job.status)}.")
        self._flush_history(job)  # H5: no epoch dropped by stopping
        if job.dirty:
            self._checkpoint(job)
        self._set_status(job, "stopped", stop_reason="stopped by request",
                         finished_at=time.time())
        self._release_if_idle(job)

    def _action_reset(self, job: _Job) -> None:
        self._free(job)
        job.unwritten, job.note = [], {}  # H5: they belong to the run being reset
        self.store.delete_checkpoint(job.id)
        self.store.truncate_history(job.id, -1)
        job.epoch = job.step = 0
        job.seconds_per_batch = 0.0
        self.store.update_job(job.id, finished_at=None, stop_reason=None, metrics=None)
        job.frame_due = bool(job.subscribers)
        was_running = job.status in ("running", "queued")
        job.status = "paused"  # so that _start counts places without this job
        if was_running:
            self._start(job)
        else:
            self._set_status(job, "paused")

    def _cmd_patch(self, job_id: str, patch: dict) -> dict:
        job = self._job(job_id)
        training = patch.get("training") or {}
        spec = _merge(job.spec, {k: v for k, v in patch.items() if v is not None})
        from pydantic import ValidationError

        from server.spec.job import JobSpec

        try:  # the API validated the patch; this guards the sum
            JobSpec.model_validate(spec)
        except ValidationError as exc:
            raise Conflict("This change does not fit the job: "
                           + "; ".join(e["msg"] for e in exc.errors())) from None
        job.spec = spec
        job.cost_key = ""
        self.store.update_job(job.id, spec=spec, **({"name": patch["name"]}
                                                   if patch.get("name") is not None else {}))
        if job.status != "failed" and training:
            trainer = self._ensure_trainer(job)
            if trainer is not None:
                _apply_training_patch(trainer, training)
                # At once: a checkpoint from before the change would bring the old settings
                # back after a restart while the stored spec shows the new ones.
                self._checkpoint(job)
        return spec

    def _cmd_delete(self, job_id: str) -> None:
        job = self._job(job_id)
        was = job.status
        self._free(job)
        del self._jobs[job_id]
        self._command_charge.pop(job_id, None)
        with self._progress_lock:
            self._progress.pop(job_id, None)
            self._looked_at.pop(job_id, None)
        self.store.delete_job(job_id)
        self._emit({"type": "status", "job_id": job_id, "status": "deleted",
                    "epoch": job.epoch, "step": job.step, "error": None, "stop_reason": None})
        if was == "running":
            self._promote()

    def _cmd_subscribe(self, job_id: str, options: dict, subscriber: Any) -> None:
        job = self._job(job_id)
        job.subscribers.pop(subscriber, None)  # re-subscribing moves it last: its options win
        job.subscribers[subscriber] = options
        job.frame_due = True
        job.unwatched_since = None

    def _cmd_unsubscribe(self, job_id: str, subscriber: Any) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.subscribers.pop(subscriber, None)
        if not job.subscribers:
            job.unwatched_since = time.monotonic()
        self._release_if_idle(job)

    def _cmd_export(self, job_id: str, format: str) -> tuple[dict, Any, bytes]:
        """(spec, data shape, the model's weights as safetensors bytes): a CPU copy for the
        converter process (server.engine.exports)."""
        from safetensors.torch import save

        job = self._job(job_id)
        if format not in FORMATS:
            raise Conflict(f"unknown format {format!r}; expected one of: {', '.join(FORMATS)}")
        if job.status == "failed":
            raise Conflict("This job has failed; it has no model to download. Reset it and "
                           "train it again.")
        trainer = self._ensure_trainer(job)
        if trainer is None:
            raise Conflict("This job could not be loaded; it has no model to download.")
        weights = save({k: v.detach().to("cpu").contiguous()
                        for k, v in trainer.model.state_dict().items()})
        shape = getattr(trainer, "shape", None) or job.dataset.shape
        self._release_if_idle(job)
        return job.spec, shape, weights

    def _epochs(self, job: _Job) -> int | None:
        return (job.spec.get("training") or {}).get("epochs", 500)


def _cost_key(spec: dict) -> str:
    """What decides the cost of a step: jobs with the same key share one cost estimate."""
    training = spec.get("training") or {}
    return json.dumps([spec.get("dataset"), spec.get("model"), training.get("batch_size"),
                       training.get("loss"), (training.get("optimizer") or {}).get("name")],
                      sort_keys=True)


def _past(status: str) -> str:
    return {"completed": "completed", "stopped": "been stopped", "failed": "failed"}.get(
        status, status)


def _merge(base: dict, patch: dict) -> dict:
    """`base` with `patch` merged in, recursively for nested objects."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _apply_training_patch(trainer: Any, training: dict) -> None:
    optimizer = training.get("optimizer") or {}
    if optimizer.get("learning_rate") is not None:
        trainer.set_learning_rate(float(optimizer["learning_rate"]))
    if optimizer.get("momentum") is not None:
        if hasattr(trainer, "set_momentum"):
            trainer.set_momentum(float(optimizer["momentum"]))
        else:
            for group in trainer.optimizer.param_groups:
                if "momentum" in group:
                    group["momentum"] = float(optimizer["momentum"])
    if training.get("batch_size") is not None:
        trainer.set_batch_size(int(training["batch_size"]))
    if training.get("regularization") is not None:
        reg = training["regularization"]
        trainer.set_regularization(reg.get("kind", "none"), float(reg.get("rate", 0.0)))
    if "epochs" in training and training["epochs"] is not None:
        _set_trainer_epochs(trainer, int(training["epochs"]))


def _set_trainer_epochs(trainer: Any, epochs: int | None) -> None:
    if hasattr(trainer, "set_epochs"):
        trainer.set_epochs(epochs)
