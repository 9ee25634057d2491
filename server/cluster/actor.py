"""EngineActor: one Ray actor on a cluster node, running a real `server.engine.Engine`.

Its engine is the in-process one (time slices, families, frames, checkpoints), over an
`ActorStore` (server/cluster/actor_store.py) instead of SQLite, and its events go to the
`Outbox` instead of an event loop. The server calls (every method returns plain data):
- `ready()`: where it runs (node id, address, device, pid).
- `call(seq, name, args, extra)`: one engine command. `seq` is the server's order for this
  actor: Ray may start the methods of a concurrent actor out of order, so each call waits for
  its turn before it queues its command on the engine (the engine then keeps that order, as
  in-process). The actor is an asyncio actor: a call waiting for its turn or for the engine's
  answer holds no thread, so neither a burst of commands nor a slow one can hold up `drain`.
  Answers `("ok", value, mark)` or `("err", kind, detail, mark)` (`describe`): the engine's
  exceptions are rebuilt on the server (server/cluster/members.py `rebuild`), never pickled;
  `mark` is the outbox count when it answered, so the server hands the answer on only after it
  applied the writes the command made.
  Besides the engine's commands: `adopt` (take a job the server already knows, with its
  row, its last checkpoint's bytes and the status it should have) and `export` (the model's
  weights for the server's converter processes).
- `watched(job_id)`: a REST read of the job (no order needed).
- `drain(wait)`: what the outbox holds plus the actor's figures (`stats`).
- `stop()`: the engine checkpoints what trained and stops; the server drains once more.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from server.cluster.actor_store import ActorStore, install_timeline
from server.cluster.outbox import Outbox
from server.engine.commands import Commands
from server.engine.job import Job
from server.engine.lifecycle import TERMINAL


class _Direct:
    """Stands for the event loop the engine posts its events to: in an actor they go straight
    to the outbox (from the engine thread; the outbox is thread-safe)."""

    @staticmethod
    def call_soon_threadsafe(callback, *args) -> None:
        callback(*args)


class ActorCommands(Commands):
    """The engine's commands plus `adopt` and `hold`."""

    def adopt(self, job_id: str, spec, status: str) -> dict:
        """A job the server placed here (a restart, a dead actor's job, a job that waited for
        the cluster): at its last checkpoint, made runnable if it should run."""
        table = self.table
        row = table.store.get_job(job_id) or {}
        meta = table.store.checkpoint_meta(job_id) or {}
        done = meta.get("engine", {})
        job = Job(id=job_id, spec=spec, status="paused", seq=next(table.seq),
                  epoch=int(done.get("epoch", 0)), step=int(done.get("step", 0)),
                  owner=str(row.get("owner") or ""))
        table.jobs[job_id] = job
        if status in ("running", "queued"):
            table.start(job)
        else:  # the server's row already says so
            job.status = status if status in TERMINAL or status == "paused" else "paused"
            table.set_progress(job)
        return job.summary()


    def hold(self, job_id: str, message: str) -> None:
        """The server's disk is low (its store is where this job's history goes): a running or
        queued job pauses with `message`, as the in-process engine's disk guard does."""
        job = self.table.jobs.get(job_id)
        if job is not None and job.status in ("running", "queued"):
            if job.dirty:
                self.table.checkpoint(job)
            self.table.pause_for_storage(job, message, error=False)


class ActorDatasets:
    """The data sets an actor's engine loads: built-in ones are made on the node (the same spec
    gives the same arrays, bit for bit); an upload's arrays come from the server with the
    job (its file lives on the server only)."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.shipped: dict[str, Any] = {}

    def load(self, spec) -> Any:
        key = spec.model_dump_json()
        if key in self.shipped:
            return self.shipped[key]
        return self.registry.load(spec)


def describe(exc: BaseException) -> tuple:
    """An exception as plain data: (kind, detail)."""
    from server.engine.lifecycle import Conflict, JobNotFound
    from server.engine.worker import EngineStopped
    from server.spec.errors import SpecError

    if isinstance(exc, SpecError):
        return "SpecError", exc.errors
    for kind in (JobNotFound, Conflict, EngineStopped):
        if isinstance(exc, kind):
            return kind.__name__, str(exc)
    return "Error", f"{type(exc).__name__}: {exc}"


def job_cost(job, families) -> float | None:
    """Measured seconds per training step of `job` (its family's, shared by its members)."""
    family = families.of(job) if families is not None else None
    if family is not None and getattr(family, "seconds_per_batch", 0) > 0:
        return family.seconds_per_batch / max(1, getattr(family, "k", 1))
    return job.seconds_per_batch if job.seconds_per_batch > 0 else None


class EngineActor:
    """See the module docstring. Ray makes it remote (server/cluster/connect.py)."""

    def __init__(self, settings, name: str) -> None:
        import ray

        from server.data.registry import DataRegistry
        from server.engine.engine import Engine

        scratch = Path(tempfile.mkdtemp(prefix="playground-actor-"))
        (scratch / "checkpoints").mkdir()
        self.name = name
        self.settings = settings.model_copy(update={"data_dir": scratch})
        self.outbox = Outbox()
        self.store = ActorStore(self.outbox, scratch / "checkpoints")
        self.timeline = install_timeline(self.store)  # before the engine asks for it
        self.datasets = ActorDatasets(DataRegistry(scratch / "uploads", self.settings))
        self.engine = Engine(self.settings, self.store, self.datasets)
        self.engine._commands = ActorCommands(self.engine._table)  # `adopt` besides the rest
        self.engine.start(_Direct(), self.outbox.event)
        self._order = asyncio.Condition()
        self._next = 0
        self._steps = (time.monotonic(), 0)
        self._rate = 0.0
        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.address = ray.util.get_node_ip_address()

    def ready(self) -> dict:
        return {"name": self.name, "node_id": self.node_id, "address": self.address,
                "device": str(self.engine.device), "pid": os.getpid()}

    # -- commands ---------------------------------------------------------------------------

    async def call(self, seq: int, name: str, args: tuple, extra: dict | None = None) -> tuple:
        async with self._order:
            await self._order.wait_for(lambda: self._next == seq)
            try:
                future, failed = self._submit(name, args, extra or {}), None
            except Exception as exc:
                future, failed = None, exc
            finally:
                self._next += 1
                self._order.notify_all()
        if future is None:
            return ("err", *describe(failed), self.outbox.appended)
        try:  # no thread waits here: an actor answers thousands of calls at once
            value = await asyncio.wrap_future(future)
        except Exception as exc:
            return ("err", *describe(exc), self.outbox.appended)
        return ("ok", value, self.outbox.appended)  # the writes it made are before this mark

    def _submit(self, name: str, args: tuple, extra: dict):
        engine = self.engine
        if extra.get("dataset") is not None:
            spec_json, dataset = extra["dataset"]
            self.datasets.shipped[spec_json] = dataset
        if name in ("create", "adopt"):
            self.store.adopt(args[0], extra.get("row") or {}, extra.get("checkpoint"))
            if self.timeline is not None:
                self.timeline.adopt(args[0], extra.get("timeline") or [])
        if name in ("adopt", "hold"):
            return engine._worker.submit(name, *args)
        if name == "export":  # the weights; the server's converter processes make the file
            return engine._worker.submit("export", *args)
        if name == "subscribe":
            job_id, options, key = args
            return engine.subscribe(job_id, options, key)
        if name == "delete":
            future = engine.delete(args[0])
            future.add_done_callback(lambda _f: self.store.forget(args[0]))
            return future
        return getattr(engine, name)(*args)

    def watched(self, job_id: str) -> None:
        self.engine.watched(job_id)

    # -- what the server drains -------------------------------------------------------------

    async def drain(self, wait: float = 0.25) -> dict:
        items, frames = await asyncio.get_running_loop().run_in_executor(
            None, self.outbox.take, wait)
        return {"items": items, "frames": frames, **self.stats()}

    def stats(self) -> dict:
        """Progress of every job here, its measured load (the sum of the measured seconds per
        step of its running and queued jobs: what placement compares), steps/s, families."""
        engine = self.engine
        progress = engine.progress_all()
        for _ in range(3):  # read from another thread than the engine's: retry a changed dict
            try:
                jobs = list(engine._jobs.values())
                break
            except RuntimeError:
                jobs = []
        families = engine._families
        costs: dict[str, float] = {}
        active = [j for j in jobs if j.status in ("running", "queued")]
        for job in active:
            cost = job_cost(job, families)
            if cost is not None:
                costs[job.id] = cost
        typical = statistics.median(costs.values()) if costs else None
        load = sum(costs.get(j.id, typical or 0.0) for j in active)
        now, steps = time.monotonic(), sum(int(p.get("step", 0)) for p in progress.values())
        then, before = self._steps
        if now - then >= 1.0:
            self._rate = max(0.0, (steps - before) / (now - then))
            self._steps = (now, steps)
        return {"progress": progress, "load": load, "costs": costs,
                "active": len(active), "steps_per_second": round(self._rate, 1),
                "families": engine.families(), "pending": engine.pending_commands(),
                "dropped_frames": self.outbox.dropped_frames}

    async def stop(self) -> bool:
        await asyncio.get_running_loop().run_in_executor(None, self.engine.stop)
        return True
