"""ClusterEngine: the training engine when it runs on a Ray cluster (settings.ray_address).

It offers what `server.engine.Engine` offers (create, control, patch, delete, subscribe,
unsubscribe, export, edit_weight, inspect, misclassified, watched, progress, progress_all,
families, pending_commands, start, stop), so the API, the hub and the streams do not know
where training happens; and `cluster()` for /metrics and the teacher page. Every command goes
to its job's actor in order (server/cluster/members.py); a parked job (paused, finished, or
waiting for the cluster) is placed first; with no actor alive, a delete is done here and the
other commands are refused with `CLUSTER_GONE`. Where jobs are, placement, what the actors
send and faults: `ClusterState` (server/cluster/state.py).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from server.cluster import connect as cluster_connect
from server.cluster.state import READY_TIMEOUT_S, ClusterState, _done
from server.engine.events import StatusEvent
from server.engine.lifecycle import Conflict, JobNotFound
from server.spec.job import JobSpec

log = logging.getLogger("playground.cluster")

CLUSTER_GONE = ("The training cluster has no machine running now; the job waits until one "
                "is back. Try again in a moment.")


class ClusterEngine(ClusterState):
    """See the module docstring."""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, loop, on_event) -> None:
        """Connect (ClusterUnreachable if it cannot), park the stored jobs, start the actors
        (waiting up to READY_TIMEOUT_S for them) and the reconciler."""
        cluster_connect.connect(self.settings.ray_address)
        self.loop, self.on_event = loop, on_event
        self._recover()
        waits = self._spawn()
        for thread in waits:
            thread.join(READY_TIMEOUT_S)
        if not self.members:
            log.warning("no engine actor could start on the cluster; jobs wait as queued")
        reconciler = threading.Thread(target=self._reconcile, name="cluster-reconciler",
                                      daemon=True)
        reconciler.start()
        self._threads.append(reconciler)

    def stop(self, timeout: float = 30.0) -> None:
        """The actors checkpoint what trained; their last writes are applied; they end."""
        import ray

        self._closing.set()
        for thread in self._threads:
            thread.join(2.0)
        for member in list(self.members.values()):
            try:
                ray.get(member.handle.stop.remote(), timeout=timeout)
                self._reply(member, ray.get(member.handle.drain.remote(0.0), timeout=timeout))
            except Exception as exc:  # noqa: BLE001 - a dead one has nothing left to say
                log.warning("actor %s did not stop cleanly: %s", member.name, exc)
            member.release()
            try:
                ray.kill(member.handle, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._exports.close()
        ray.shutdown()

    # -- commands ---------------------------------------------------------------------------

    def create(self, job_id: str, spec: JobSpec) -> Future:
        row = self.store.get_job(job_id) or {}
        with self._lock:
            member = self._choose(job_id, spec)
            if member is None:
                status = "queued" if spec.start else "paused"
                self.parked[job_id] = "running" if spec.start else "paused"
                self.store.update_job(job_id, status=status)
                self._status(StatusEvent(job_id, status, 0, 0))
                return _done({"id": job_id, "status": status, "epoch": 0, "step": 0})
            self.where[job_id] = member
            member.jobs.add(job_id)
            return member.call("create", (job_id, spec), self._extra(job_id, spec, row))

    def _route(self, job_id: str, name: str, *args: Any) -> Future:
        with self._lock:
            member = self.where.get(job_id)
            if member is None:
                if job_id not in self.parked:
                    return _done(error=JobNotFound("Job not found"))
                if name == "unsubscribe":
                    return _done(None)
                placed = self._place(job_id, self.parked[job_id])
                if placed is None:  # no actor alive
                    if name == "delete":
                        return self._delete_here(job_id)
                    if name == "subscribe":
                        return _done(None)
                    return _done(error=Conflict(CLUSTER_GONE))
                member = self.where[job_id]
            return member.call(name, args)

    def control(self, job_id: str, action: str, unit: str = "batch") -> Future:
        return self._route(job_id, "control", job_id, action, unit)

    def patch(self, job_id: str, patch: dict) -> Future:
        return self._route(job_id, "patch", job_id, patch)

    def delete(self, job_id: str) -> Future:
        return self._route(job_id, "delete", job_id)

    def _delete_here(self, job_id: str) -> Future:
        row = self.store.get_job(job_id) or {}
        self.store.delete_job(job_id)
        self.parked.pop(job_id, None)
        self._status(StatusEvent(job_id, "deleted", row.get("epoch", 0), row.get("step", 0)))
        return _done(None)

    def subscribe(self, job_id: str, options: dict | None = None,
                  subscriber: Any = None) -> Future:
        key, options = f"sub-{id(subscriber)}", dict(options or {})
        with self._lock:
            if job_id in self.where or job_id in self.parked:
                self.subs.setdefault(job_id, {})[key] = options
        return self._route(job_id, "subscribe", job_id, options, key)

    def unsubscribe(self, job_id: str, subscriber: Any = None) -> Future:
        key = f"sub-{id(subscriber)}"
        with self._lock:
            self.subs.get(job_id, {}).pop(key, None)
        return self._route(job_id, "unsubscribe", job_id, key)

    def export(self, job_id: str, format: str) -> Future:
        """As Engine.export: the actor copies the weights, a converter process here makes
        the file."""
        return self._exports.convert(format,
                                     lambda: self._route(job_id, "export", job_id, format))

    def edit_weight(self, job_id: str, layer: int, name: str, index: list[int],
                    value: float) -> Future:
        return self._route(job_id, "edit_weight", job_id, layer, name, list(index),
                           float(value))

    def inspect(self, job_id: str, request: dict) -> Future:
        return self._route(job_id, "inspect", job_id, dict(request))

    def misclassified(self, job_id: str, limit: int) -> Future:
        return self._route(job_id, "misclassified", job_id, int(limit))

    def watched(self, job_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            member = self.where.get(job_id)
            if member is None or now - self._looked.get(job_id, -10.0) < 2.0:
                return
            self._looked[job_id] = now
        try:
            member.handle.watched.remote(job_id)
        except Exception:  # noqa: BLE001 - a dead actor: its job moves anyway
            pass

    # -- reads ------------------------------------------------------------------------------

    def progress(self, job_id: str) -> dict | None:
        with self._lock:
            p = self._progress.get(job_id)
            return dict(p) if p else None

    def progress_all(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self._progress.items()}

    def families(self) -> dict:
        out = {"count": 0, "sizes": [], "steps_per_second": []}
        for member in list(self.members.values()):
            stats = member.report.get("families") or {}
            out["count"] += int(stats.get("count", 0))
            out["sizes"] += list(stats.get("sizes", []))
            out["steps_per_second"] += list(stats.get("steps_per_second", []))
        return out

    def pending_commands(self) -> int:
        return sum(int(m.report.get("pending", 0)) + m.in_flight
                   for m in list(self.members.values()))

    def cluster(self) -> dict:
        """For /metrics and the teacher page: each live actor (node, address, device, jobs,
        running jobs, steps/s, load) and the jobs waiting for one."""
        with self._lock:
            actors = [m.view() for m in self.members.values()]
            waiting = sum(1 for s in self.parked.values() if s in ("running", "queued"))
        return {"actors": sorted(actors, key=lambda a: (a["address"], a["actor"])),
                "waiting": waiting}
