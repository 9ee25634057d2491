"""ClusterState: where the cluster's jobs are and what happens to them (issue 15).

The server-side half of `ClusterEngine` (server/cluster/engine.py, the public methods) that
runs in background threads: the actors (`_spawn` starts one in every free slot of the live
nodes, `_reconcile` every `RECONCILE_S` seconds: new or returning nodes, jobs that wait, the
server's disk), placement (`_choose`, `_place`: a parked job goes to an actor with its row, its
last checkpoint's bytes and its kept pictures), what the actors send (`_reply`, from each
member's pump thread: store writes applied in order, events to the hub, replayed epochs not
streamed twice) and faults (`_died`, `_rescue`: a dead actor's jobs go back to their last
checkpoint, shown queued with the `MOVED` notice, and are placed again; `fault_limit` deaths
while running fail the job with `KILLED_TOO_OFTEN`; with no actor alive they wait as queued).
Every job is on one actor (`where`) or parked on the server (`parked`: the status it gets when
placed). The tables change under `_lock`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from pydantic import ValidationError

from server import disk
from server.cluster import connect as cluster_connect
from server.cluster import placement
from server.cluster.members import Member, Pump, apply_write
from server.engine.events import ErrorEvent, MetricsEvent, StatusEvent
from server.engine.exports import ExportPool
from server.engine.lifecycle import TERMINAL, JobNotFound
from server.engine.scheduler import cost_key
from server.spec.job import JobSpec

log = logging.getLogger("playground.cluster")

RECONCILE_S = 2.0
READY_TIMEOUT_S = 180.0
RETRY_S = 60.0  # a slot where an actor could not start (no playground there?) waits this long
MOVED = ("moved: the machine training it stopped; it goes on from its last checkpoint "
         "(epoch {epoch}) on another one")
KILLED_TOO_OFTEN = ("training failed: this job stopped the machine training it {n} times; "
                    "it is not tried again")
ROW_FIELDS = ("status", "owner", "started_at", "error", "stop_reason", "name")


def _done(value: Any = None, error: Exception | None = None) -> Future:
    future: Future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


class ClusterState:
    """See the module docstring."""

    def __init__(self, settings, store, datasets) -> None:
        self.settings, self.store, self.datasets = settings, store, datasets
        self.device = "ray"
        self.fault_limit = settings.cluster_fault_limit
        self.members: dict[str, Member] = {}
        self.where: dict[str, Member] = {}
        self.parked: dict[str, str] = {}
        self.kills: dict[str, int] = {}
        self.forwarded: dict[str, int] = {}
        self.subs: dict[str, dict[str, dict]] = {}
        self.keys: dict[str, str] = {}
        self._progress: dict[str, dict] = {}
        self._looked: dict[str, float] = {}
        self._creating: set[tuple[str, int]] = set()
        self._failed: dict[tuple[str, int], float] = {}  # slot -> when an actor failed there
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.loop = self.on_event = None
        self._exports = ExportPool(settings.max_concurrent_exports, settings.max_queued_exports)

    def _recover(self) -> None:
        """As the in-process engine: a running or queued job comes back paused at its last
        checkpoint, its history after it deleted (server/engine/jobs.py `recover`)."""
        for row in self.store.list_jobs():
            status = row["status"]
            try:
                JobSpec.model_validate(row["spec"])
            except ValidationError:
                status = "failed"
                self.store.update_job(row["id"], status=status,
                                      error="the job could not be built: its spec is invalid")
            epoch, step = row["epoch"], row["step"]
            if status not in TERMINAL:
                epoch, step = self._rewind(row["id"])
                status = "paused"
                self.store.update_job(row["id"], status=status, epoch=epoch, step=step)
            self.parked[row["id"]] = status
            self._progress[row["id"]] = {"status": status, "epoch": epoch, "step": step}

    def _rewind(self, job_id: str) -> tuple[int, int]:
        done = (self.store.checkpoint_meta(job_id) or {}).get("engine", {})
        epoch, step = int(done.get("epoch", 0)), int(done.get("step", 0))
        self.store.truncate_history(job_id, epoch)
        return epoch, step

    # -- actors -----------------------------------------------------------------------------

    def _spawn(self) -> list[threading.Thread]:
        """Start an actor in every free slot of the live nodes; the threads that wait for
        them to be ready."""
        import ray

        try:
            slots = cluster_connect.slots(ray.nodes(), self.settings.cluster_cpus_per_actor)
        except Exception as exc:  # noqa: BLE001 - the cluster is gone for now
            log.warning("the cluster cannot list its nodes: %s", exc)
            return []
        waits = []
        now = time.monotonic()
        with self._lock:
            taken = {m.slot.key for m in self.members.values()} | self._creating
            for slot in slots:
                if slot.key in taken or now - self._failed.get(slot.key, -RETRY_S) < RETRY_S:
                    continue
                self._creating.add(slot.key)
                name, handle = cluster_connect.start_actor(slot, self.settings)
                thread = threading.Thread(target=self._await_ready, args=(slot, name, handle),
                                          name=f"ready-{name}", daemon=True)
                thread.start()
                waits.append(thread)
        return waits

    def _await_ready(self, slot, name: str, handle) -> None:
        import ray

        try:
            info = ray.get(handle.ready.remote(), timeout=READY_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001
            log.warning("actor %s did not start (tried again in %.0f s): %s", name, RETRY_S, exc)
            with self._lock:
                self._creating.discard(slot.key)
                self._failed[slot.key] = time.monotonic()
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
            return
        member = Member(slot, name, handle, info)
        member.on_summary = self._summary
        with self._lock:
            self._creating.discard(slot.key)
            if self._closing.is_set():
                return
            self.members[name] = member
        log.info("engine actor %s ready on %s (%s)", name, member.address, member.device)
        pump = Pump(member, self.store, self._reply, self._died, self._closing)
        pump.start()
        self._place_waiting()

    def _reconcile(self) -> None:
        while not self._closing.wait(RECONCILE_S):
            try:
                self._spawn()
                self._place_waiting()
                self._guard_disk()
            except Exception:
                log.exception("cluster reconcile failed")

    def _guard_disk(self) -> None:
        """The server's disk (where every history and checkpoint goes) is low: running and
        queued jobs pause with the sentence, on whichever actor they train (disk.py)."""
        low = disk.low_space(self.settings)
        if low is None:
            return
        with self._lock:
            active = [(j, m) for j, m in self.where.items()
                      if self._progress.get(j, {}).get("status") in ("running", "queued")]
            if active:
                log.warning("disk low: pausing %d job(s) on the cluster: %s", len(active), low)
            for job_id, member in active:
                member.call("hold", (job_id, low))

    # -- placement --------------------------------------------------------------------------

    def _choose(self, job_id: str, spec) -> Member | None:
        live = [m for m in self.members.values() if m.alive]
        if not live:
            return None
        key = self.keys.setdefault(job_id, cost_key(spec))
        views = [placement.View(m.name, int(m.report.get("active", 0)) + len(m.placed),
                                len(m.jobs),
                                [(self.keys.get(j, ""), c)
                                 for j, c in m.report.get("costs", {}).items()])
                 for m in live]
        name = placement.choose(views, key)
        member = self.members[name]
        member.placed[job_id] = placement.estimate(views, name, key)
        return member

    def _extra(self, job_id: str, spec, row: dict) -> dict:
        extra: dict = {"row": {k: row.get(k) for k in ROW_FIELDS}}
        try:
            uploaded = self.datasets.entry(spec.dataset.name).get("uploaded")
        except Exception:  # noqa: BLE001 - unknown set: the actor says so when it builds
            uploaded = False
        if uploaded:  # the upload's file is on the server only: its arrays go with the job
            extra["dataset"] = (spec.dataset.model_dump_json(), self.datasets.load(spec.dataset))
        return extra

    def _place(self, job_id: str, status: str) -> Future | None:
        """Put a parked job on an actor (lock held); None when no actor is alive."""
        row = self.store.get_job(job_id)
        if row is None:
            self.parked.pop(job_id, None)
            return _done(error=JobNotFound("Job not found"))
        try:
            spec = JobSpec.model_validate(row["spec"])
        except ValidationError:
            spec = JobSpec.model_construct(**row["spec"])
        member = self._choose(job_id, spec)
        if member is None:
            return None
        path = self.store.checkpoint_path(job_id)
        extra = self._extra(job_id, spec, row)
        extra["checkpoint"] = path.read_bytes() if path.exists() else None
        extra["timeline"] = self._kept_pictures(job_id)
        self.parked.pop(job_id, None)
        self.where[job_id] = member
        member.jobs.add(job_id)
        future = member.call("adopt", (job_id, spec, status), extra)
        for key, options in self.subs.get(job_id, {}).items():  # the streams go on
            member.call("subscribe", (job_id, options, key))
        return future

    def _kept_pictures(self, job_id: str) -> list:
        try:
            from server.timeline_store import TimelineStore
        except ImportError:  # a version without issue 16's timeline
            return []
        return TimelineStore.of(self.store).epochs(job_id)

    def _place_waiting(self) -> None:
        with self._lock:
            for job_id, status in list(self.parked.items()):
                if status in ("running", "queued") and self._place(job_id, "running") is None:
                    return

    # -- what the actors send (pump threads) ------------------------------------------------

    def _reply(self, member: Member, reply: dict) -> None:
        for item in reply["items"]:
            if item[0] == "write":
                _kind, method, args, kwargs = item
                if method == "checkpoint" and disk.low_space(self.settings,
                                                             needed=len(args[1])):
                    log.warning("checkpoint of job %s skipped: the disk is low", args[0])
                    continue  # the old one stays, as in-process (engine/storage.py)
                apply_write(self.store, method, args, kwargs)
                if method == "truncate_history":  # a reset: its epochs come again
                    with self._lock:
                        job_id, after = args
                        self.forwarded[job_id] = min(self.forwarded.get(job_id, -1), after)
            else:
                self._forward(item[1])
        member.advance(len(reply["items"]))  # answers waiting for these writes go out
        for frame in reply["frames"]:
            self._forward(frame)
        with self._lock:
            member.report = {k: v for k, v in reply.items() if k not in ("items", "frames")}
            for job_id, progress in reply["progress"].items():
                member.placed.pop(job_id, None)
                if self.where.get(job_id) is member:
                    # The status comes from the status events and the commands' answers, in
                    # order; this snapshot (taken when the actor answered the drain) may be
                    # older than an answer already seen, so it brings the epoch and step only.
                    known = self._progress.get(job_id, {}).get("status", progress["status"])
                    self._progress[job_id] = {**progress, "status": known}

    def _forward(self, event) -> None:
        if isinstance(event, MetricsEvent):
            with self._lock:
                last = self.forwarded.get(event.job_id, -1)
                records = [r for r in event.records if int(r.get("epoch", 0)) > last]
                if not records:
                    return
                self.forwarded[event.job_id] = int(records[-1].get("epoch", 0))
            if len(records) != len(event.records):
                event = MetricsEvent(event.job_id, records)
        elif isinstance(event, StatusEvent):
            self._status(event, post=False)
        self._post(event)

    def _status(self, event: StatusEvent, post: bool = True) -> None:
        with self._lock:
            if event.status == "deleted":
                self._progress.pop(event.job_id, None)
                member = self.where.pop(event.job_id, None)
                if member is not None:
                    member.jobs.discard(event.job_id)
                for table in (self.parked, self.kills, self.forwarded, self.subs, self.keys):
                    table.pop(event.job_id, None)
            else:
                self._progress[event.job_id] = {"status": event.status, "epoch": event.epoch,
                                                "step": event.step}
        if post:
            self._post(event)

    def _summary(self, summary: dict) -> None:
        """A command's answer ({"id", "status", "epoch", "step"}): the job's progress now."""
        with self._lock:
            if summary["id"] in self.where:
                self._progress[summary["id"]] = {k: summary[k] for k in ("status", "epoch",
                                                                          "step")}

    def _post(self, event) -> None:
        if self.loop is None or self.on_event is None:
            return
        try:
            self.loop.call_soon_threadsafe(self.on_event, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    # -- faults -----------------------------------------------------------------------------

    def _died(self, member: Member, reason: str) -> None:
        log.warning("engine actor %s on %s died (%s); its jobs move", member.name,
                    member.address, reason)
        member.release()  # answers that waited for its writes: nothing more comes
        with self._lock:
            self.members.pop(member.name, None)
            jobs = sorted(member.jobs)
            for job_id in jobs:
                if self.where.get(job_id) is member:
                    del self.where[job_id]
            member.jobs.clear()
            for job_id in jobs:
                self._rescue(job_id)
        self._place_waiting()

    def _rescue(self, job_id: str) -> None:
        """A job of a dead actor, back at its last checkpoint and parked (lock held)."""
        row = self.store.get_job(job_id)
        if row is None:
            return
        status = row["status"]
        if status in TERMINAL:
            self.parked[job_id] = status
            return
        if status == "running":
            self.kills[job_id] = self.kills.get(job_id, 0) + 1
        if self.kills.get(job_id, 0) >= self.fault_limit:
            message = KILLED_TOO_OFTEN.format(n=self.kills[job_id])
            epoch, step = self._rewind(job_id)
            self.store.update_job(job_id, status="failed", error=message, epoch=epoch,
                                  step=step, finished_at=time.time())
            self.parked[job_id] = "failed"
            self._post(ErrorEvent(job_id, message))
            self._status(StatusEvent(job_id, "failed", epoch, step, message))
            return
        epoch, step = self._rewind(job_id)
        notice = MOVED.format(epoch=epoch)
        shown = "queued" if status in ("running", "queued") else "paused"
        self.store.update_job(job_id, status=shown, epoch=epoch, step=step, stop_reason=notice)
        self.parked[job_id] = "running" if shown == "queued" else "paused"
        self._status(StatusEvent(job_id, shown, epoch, step, None, notice))
