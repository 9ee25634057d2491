"""The events the engine sends to the event loop (`on_event(event)`), one dataclass each.

Every event has the `job_id` it is about and a `type` (a class constant): `StatusEvent`
("status": the job's status, epoch, step, error and stop_reason; status `deleted` once it is
gone; `diverged` when a divergence paused it), `MetricsEvent` ("metrics": the per-epoch
records just completed), `SnapshotEvent`
("snapshot": an encoded frame, only for jobs with subscribers) and `ErrorEvent` ("error": the
job failed; its status event follows). `to_json()` is a status or error event as the stream
sends it to clients (a JSON object, `type` first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class StatusEvent:
    job_id: str
    status: str  # queued, running, paused, completed, stopped, failed or deleted
    epoch: int
    step: int
    error: str | None = None
    stop_reason: str | None = None
    diverged: dict | None = None  # paused after a divergence: server.engine.rewind's diagnosis
    type: ClassVar[str] = "status"

    def to_json(self) -> dict:
        data = {"type": self.type, **asdict(self)}
        if data["diverged"] is None:  # only a job paused by a divergence carries it
            del data["diverged"]
        return data


@dataclass(frozen=True)
class MetricsEvent:
    job_id: str
    records: list[dict]  # one per completed epoch, every float finite or None
    type: ClassVar[str] = "metrics"


@dataclass(frozen=True)
class SnapshotEvent:
    job_id: str
    data: bytes  # server.engine.snapshot.Snapshots.frame's encoded frame
    type: ClassVar[str] = "snapshot"


@dataclass(frozen=True)
class ErrorEvent:
    job_id: str
    message: str  # the short sentence the failed job shows
    type: ClassVar[str] = "error"

    def to_json(self) -> dict:
        return {"type": self.type, **asdict(self)}


Event = StatusEvent | MetricsEvent | SnapshotEvent | ErrorEvent
