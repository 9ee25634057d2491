"""The outbox of an engine actor: what its engine wrote and sent, waiting for the server.

Two parts, both filled by the actor's engine thread and emptied by `take` (the server's
`drain` call):
- `items`, in order: store writes (`("write", method, args, kwargs)`) and events other than
  frames (`("event", event)`). Never dropped: a job's history and status must reach the
  server whole and in order (a metrics event comes after the write of its records).
- `frames`: the latest snapshot frame of each job. A frame replaces the one not yet taken, so
  a slow link or a slow server gets fewer, newer frames and never makes the actor wait (the
  stream's own pacing then applies on the server, server/stream/hub.py).
`appended` counts the items ever queued: a command's answer carries it, and the server hands
the answer on once it has applied that many (server/cluster/members.py `Member.after`).
When the items pass `max_items` (a server that has not drained for a long time) the frames are
dropped first and no new frame is kept until the server drains again.
"""

from __future__ import annotations

import threading
from typing import Any

from server.engine.events import SnapshotEvent


class Outbox:
    def __init__(self, max_items: int = 20_000) -> None:
        self.max_items = max_items
        self.items: list[tuple] = []
        self.frames: dict[str, SnapshotEvent] = {}
        self.dropped_frames = 0
        self.appended = 0  # items ever queued (not frames): a command's answer carries it
        self._ready = threading.Condition()

    def write(self, method: str, *args: Any, **kwargs: Any) -> None:
        with self._ready:
            self.items.append(("write", method, args, kwargs))
            self.appended += 1
            self._pressure()
            self._ready.notify_all()

    def event(self, event: Any) -> None:
        with self._ready:
            if isinstance(event, SnapshotEvent):
                if len(self.items) >= self.max_items:
                    self.dropped_frames += 1
                    return
                self.frames[event.job_id] = event
            else:
                self.items.append(("event", event))
                self.appended += 1
                self._pressure()
            self._ready.notify_all()

    def _pressure(self) -> None:
        if len(self.items) >= self.max_items and self.frames:
            self.dropped_frames += len(self.frames)
            self.frames.clear()

    def take(self, wait: float, limit: int = 5000) -> tuple[list[tuple], list[SnapshotEvent]]:
        """(up to `limit` items in order, the frames waiting); waits up to `wait` seconds for
        something to come. Frames come after the items taken with them."""
        with self._ready:
            if not self.items and not self.frames and wait > 0:
                self._ready.wait(wait)
            items, self.items = self.items[:limit], self.items[limit:]
            frames = list(self.frames.values())
            self.frames = {}
            return items, frames

    def __len__(self) -> int:
        with self._ready:
            return len(self.items) + len(self.frames)
