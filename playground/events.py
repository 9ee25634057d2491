"""The stream's text messages as typed events (docs/STREAM.md), and its end rules.

`job.stream()` yields `Hello` once, then `Metrics` (new epoch records), `Status` (a status
change), `Snapshot` (playground.frames: decoded arrays) and `Error`/`Reply` as they come.
`parse` turns one text frame into its event; `closed_error` turns a close code into the
exception a script should see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playground.errors import ApiError, PlaygroundError, error_for
from playground.frames import Snapshot

TERMINAL = ("completed", "stopped", "failed", "deleted")


@dataclass
class Hello:
    """The first message: spec, status, the history so far, what will be drawn."""

    message: dict[str, Any]
    type: str = "hello"

    @property
    def status(self) -> dict[str, Any]:
        return self.message.get("status") or {}

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return self.message.get("metrics") or []

    @property
    def spec(self) -> dict[str, Any]:
        return self.message.get("spec") or {}

    @property
    def kind(self) -> str | None:
        return self.message.get("kind")


@dataclass
class Metrics:
    """Epoch records since the previous `metrics` message (epoch, step, losses, metrics)."""

    points: list[dict[str, Any]] = field(default_factory=list)
    type: str = "metrics"


@dataclass
class Status:
    """The job's status changed: `status`, `epoch`, `step`, `error` (why it failed)."""

    message: dict[str, Any]
    type: str = "status"

    @property
    def status(self) -> str:
        return self.message.get("status", "")

    @property
    def epoch(self) -> int | None:
        return self.message.get("epoch")

    @property
    def error(self) -> str | None:
        return self.message.get("error")


@dataclass
class Error:
    """The server refused a message, or the job failed (`request` None)."""

    message: str
    request: str | None = None
    id: Any = None
    type: str = "error"


@dataclass
class Reply:
    """A control, set or subscribe message was applied."""

    message: dict[str, Any]
    type: str = "reply"


Event = Hello | Metrics | Status | Snapshot | Error | Reply


def parse(text: str) -> Event | None:
    """The event of one text frame; None for a message type this client does not know."""
    msg = json.loads(text)
    kind = msg.get("type")
    if kind == "hello":
        return Hello(msg)
    if kind == "metrics":
        return Metrics(list(msg.get("points") or []))
    if kind == "status":
        return Status(msg)
    if kind == "error":
        return Error(str(msg.get("message", "")), msg.get("request"), msg.get("id"))
    if kind == "reply":
        return Reply(msg)
    return None  # types may be added within protocol 1


def closed_error(code: int | None, reason: str | None, job_id: str) -> PlaygroundError:
    """The exception for a stream that the server closed before the job ended."""
    if code in (4401, 4403, 4404, 4429):
        detail = reason or ("Job not found" if code == 4404 else "refused")
        return error_for(code, detail, "WS", f"/api/jobs/{job_id}/stream")
    return ApiError(code or 1006, reason or "The stream closed", "WS", f"/api/jobs/{job_id}/stream")


def terminal(event: Event) -> bool:
    """Whether this event says the job has ended."""
    if isinstance(event, Hello):
        return event.status.get("status") in TERMINAL or _diverged(event.status)
    return isinstance(event, Status) and (event.status in TERMINAL or _diverged(event.message))


def _diverged(status: dict) -> bool:
    """A job that diverged pauses at its last good state: for a follower it has ended."""
    return status.get("status") == "paused" and status.get("stop_reason") == "diverged"
