"""Follow one job over its websocket, synchronously: `follow(...)` yields events.

After each `Snapshot` the consumer has handled (the generator is resumed), an ack is sent, as
the protocol wants (docs/STREAM.md: one frame in flight per client). The stream ends after the
job ends (a terminal status, then `linger` seconds for the last frame and points), when
`timeout` passes, or when the consumer stops iterating. A refused stream (unknown job, wrong
token) raises the ApiError of its close code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from playground import events
from playground.errors import Unreachable
from playground.frames import Snapshot

Event = events.Event


def follow(ws_url: str, job_id: str, *, snapshots: bool = True, hz: float | None = None,
           timeout: float | None = None, linger: float = 0.5,
           until_done: bool = True) -> Iterator[Event]:
    """Events of job `job_id` from `ws_url` (see the module docstring)."""
    try:
        ws = connect(ws_url, open_timeout=15, close_timeout=2, max_size=None,
                     user_agent_header="playground-client/1")
    except (OSError, InvalidURI, InvalidStatus, TimeoutError) as exc:
        raise Unreachable(ws_url.split("/api/")[0], str(exc) or type(exc).__name__) from None
    with ws:
        yield from _events(ws, job_id, snapshots, hz, timeout, linger, until_done)


def _events(ws, job_id: str, snapshots: bool, hz: float | None, timeout: float | None,
            linger: float, until_done: bool) -> Iterator[Event]:
    deadline = None if timeout is None else time.monotonic() + timeout
    ended_at = None
    while True:
        now = time.monotonic()
        if ended_at is not None and now - ended_at >= linger:
            return
        waits = [d - now for d in (deadline, ended_at and ended_at + linger) if d]
        if deadline is not None and now >= deadline:
            return
        try:
            message = ws.recv(timeout=max(0.0, min(waits)) if waits else None)
        except TimeoutError:
            continue
        except ConnectionClosed as exc:
            if ended_at is not None:
                return
            code = exc.rcvd.code if exc.rcvd else None
            reason = exc.rcvd.reason if exc.rcvd else None
            raise events.closed_error(code, reason, job_id) from None
        if isinstance(message, bytes):
            frame = Snapshot.from_bytes(message)
            if snapshots:
                yield frame
            ws.send(json.dumps({"type": "ack"}))
            continue
        event = events.parse(message)
        if event is None:
            continue
        if isinstance(event, events.Hello):
            subscription = {"type": "subscribe", "snapshots": snapshots}
            if hz is not None:
                subscription["hz"] = hz
            if not snapshots or hz is not None:
                ws.send(json.dumps(subscription))
        yield event
        if until_done and ended_at is None and events.terminal(event):
            ended_at = time.monotonic()
