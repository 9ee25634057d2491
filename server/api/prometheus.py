"""`GET /metrics`: the server's state in Prometheus' text format, for operators.

Read-only: job counts by state (store), training steps and their rate (the engine's progress,
compared between two scrapes), stream clients and frames (hub), open websockets and refused
requests (the classroom checks, app.state.guard), commands waiting for the engine. Who may
read it: settings.metrics_access (in class mode, by default, the teacher only).
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from server import __version__
from server.api.classroom.refusals import REASONS
from server.api.deps import SettingsDep, TokenDep, is_teacher
from server.config import Settings
from server.store import STATUSES

router = APIRouter(tags=["operators"])


class StepRate:
    """Training steps between two samples of the engine's per-job progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, int] = {}
        self._at: float | None = None  # time of the previous sample
        self.total = 0  # steps seen since start: a counter (reset or deleted jobs never subtract)
        self.rate = 0.0

    def sample(self, progress: dict[str, dict], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        steps = {job_id: int(p.get("step") or 0) for job_id, p in progress.items()}
        with self._lock:
            if self._at is None:
                self.total = sum(steps.values())
            else:
                done = sum(max(0, n - self._steps[j]) if j in self._steps
                           else n  # a job first seen since the last sample: all new
                           for j, n in steps.items())
                self.total += done
                self.rate = done / max(now - self._at, 1e-6)
            self._steps, self._at = steps, now


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(state) -> str:
    """The exposition text for an app's state (store, engine, hub, guard)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, value, labels) for labels, value in samples)

    device = str(getattr(state.engine, "device", "cpu"))
    metric("playground_info", "gauge", "Version and training device.",
           [({"version": __version__, "device": device}, 1)])
    counts = state.store.count_by_status()
    metric("playground_jobs", "gauge", "Jobs by state.",
           [({"state": s}, counts.get(s, 0)) for s in STATUSES])
    metric("playground_queue_length", "gauge", "Jobs waiting for a place to train (queued).",
           [(None, counts.get("queued", 0))])
    pending = getattr(state.engine, "pending_commands", lambda: 0)()
    metric("playground_engine_commands_pending", "gauge",
           "Commands waiting for the engine thread.", [(None, pending)])

    rate: StepRate = state.step_rate
    rate.sample(state.engine.progress_all())
    metric("playground_training_steps_total", "counter", "Training steps (batches) done.",
           [(None, rate.total)])
    metric("playground_steps_per_second", "gauge",
           "Training steps a second, all jobs, since the previous scrape.", [(None, rate.rate)])

    families = getattr(state.engine, "families", lambda: None)() or {
        "count": 0, "sizes": [], "steps_per_second": []}
    metric("playground_families", "gauge",
           "Families: groups of jobs that train together as one tensor program.",
           [(None, families["count"])])
    metric("playground_family_jobs", "gauge", "Jobs in each family.",
           [({"family": str(i)}, n) for i, n in enumerate(families["sizes"])])
    metric("playground_family_steps_per_second", "gauge",
           "Steps a second of each family, all its jobs together, since it was formed.",
           [({"family": str(i)}, r) for i, r in enumerate(families["steps_per_second"])])

    cluster = getattr(state.engine, "cluster", None)
    if cluster is not None:  # issue 15: training on a Ray cluster (server/cluster/)
        _cluster_metrics(metric, cluster())

    hub = state.hub
    clients = sum(len(w) for w in hub.channels.values())
    metric("playground_stream_clients", "gauge", "Websocket clients following a job.",
           [(None, clients)])
    sent, dropped = hub.frame_counts() if hasattr(hub, "frame_counts") else (0, 0)
    metric("playground_frames_sent_total", "counter", "Snapshot frames sent to clients.",
           [(None, sent)])
    metric("playground_frames_dropped_total", "counter",
           "Snapshot frames replaced by a newer one before a slow client took them.",
           [(None, dropped)])

    guard = getattr(state, "guard", None)
    metric("playground_websockets_open", "gauge", "Open websockets (all kinds).",
           [(None, guard.sockets_open if guard else clients)])
    refused = dict(guard.refused) if guard else {}
    metric("playground_requests_refused_total", "counter",
           "Requests refused before any route: host, origin, rate, body, join, jobs, streams, "
           "token.",
           [({"reason": r}, refused.get(r, 0))
            for r in REASONS])
    return "\n".join(out) + "\n"


def _cluster_metrics(metric, cluster: dict) -> None:
    """Each engine actor of the Ray cluster: its node, its jobs, its steps/s, its load."""
    actors = cluster["actors"]

    def labels(a: dict) -> dict:
        return {"actor": a["actor"], "node": a["node"][:12], "address": a["address"],
                "device": a["device"]}

    metric("playground_cluster_actors", "gauge", "Engine actors training on the Ray cluster.",
           [(None, len(actors))])
    metric("playground_cluster_jobs_waiting", "gauge",
           "Jobs waiting for an engine actor (none is alive).", [(None, cluster["waiting"])])
    metric("playground_cluster_actor_jobs", "gauge", "Jobs held by each engine actor.",
           [(labels(a), a["jobs"]) for a in actors])
    metric("playground_cluster_actor_running", "gauge",
           "Running and queued jobs of each engine actor.",
           [(labels(a), a["active"]) for a in actors])
    metric("playground_cluster_actor_steps_per_second", "gauge",
           "Training steps a second of each engine actor.",
           [(labels(a), a["steps_per_second"]) for a in actors])
    metric("playground_cluster_actor_load", "gauge",
           "Measured load of each engine actor: seconds per step of its active jobs, summed.",
           [(labels(a), a["load"]) for a in actors])


METRICS_OFF = "Metrics are off on this server (PLAYGROUND_METRICS_ACCESS)."
METRICS_TEACHER = ("Metrics are for the teacher on this server: send the teacher's token "
                   "(Authorization: Bearer ...) or sign in on the teacher page.")


def metrics_refusal(settings: Settings, token: str | None) -> HTTPException | None:
    """Why this caller may not read /metrics (settings.metrics_access), or None."""
    access = settings.metrics_access
    if access == "auto":
        access = "open" if settings.is_open else "teacher"
    if access == "off":
        return HTTPException(404, METRICS_OFF)
    if access == "teacher" and not is_teacher(settings, token):
        return HTTPException(401 if token is None else 403, METRICS_TEACHER)
    return None


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request, settings: SettingsDep, token: TokenDep) -> PlainTextResponse:
    refusal = metrics_refusal(settings, token)
    if refusal is not None:
        raise refusal
    state = request.app.state
    if not hasattr(state, "step_rate"):
        state.step_rate = StepRate()
    return PlainTextResponse(render(state), media_type="text/plain; version=0.0.4")
