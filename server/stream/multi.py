"""The multi-job stream's channel (`/api/streams`, docs/STREAM.md "The multi-job stream").

One websocket watches many jobs: `MultiChannel` is that socket's side of the hub. It holds
one `Port` per job, a `Channel` of its own registered in `Hub.channels`, so `Hub.on_event`
reaches it unchanged: a port keeps the job's waiting metric points (`min_epoch`, the reset and
rewind cuts and the bound of the hub apply per job) and its one frame slot, and hands its texts
(status, the job's error) to the socket's one queue once the job's `hello` is queued (until
then they wait in the port, so hello comes first). A deleted job's status goes out and the job
leaves the set; the socket stays open.

`MultiChannel` is a `Channel` too (its texts queue, its bound and dropped notice, `ack`, the
close) with one credit for the whole socket. Its pump sends the waiting texts, one
`metrics_batch` (every job with new points, shaped by the subscription) at most every
metrics interval, and one binary bundle (`wire.encode_bundle`: the newest frame of every job
that has one) at most `hz` a second and only with credit; a bundle unacknowledged for
`client_timeout_seconds` while another waits closes the socket with 4408, as the job stream.
A port wakes the pump only when the pump is not already waiting for that batch, tick or ack.
What the engine is asked for goes through two callables (`watch(port)`, `unwatch(port)`), so
nothing here knows about the engine or FastAPI.

The subscription is the socket's, but a job listed in `without` (the subscribe's
`without_snapshots`: a wall tile that shows only a loss curve) gets it with snapshots off: the
engine builds no frames for it here, its slot stays empty, it never appears in a bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from server.stream.hub import Channel, ClientGone, Hub, _json_default
from server.stream.subscription import Subscription
from server.stream.wire import encode_bundle

MAX_STREAM_JOBS = 200  # jobs one multi stream may watch at once
ENGINE_FIELDS = ("snapshots", "hz", "detail")  # what the engine is told of (stream._resubscribe)


class Prepared(dict):
    """A text message already encoded (a big hello: encoded off the event loop); the dict
    keeps its `type` and `job_id` for the queue's bounds."""

    def __init__(self, text: str, **keys: object) -> None:
        super().__init__(keys)
        self.text = text


@dataclass(eq=False)
class Port(Channel):
    """One job of a multi stream, in `Hub.channels` like a job stream's channel."""

    owner: Any = None  # the MultiChannel
    ready: bool = False  # its hello is queued: its texts, points and frames may go

    # The owner's pump is woken only when it is not already waiting for the next batch or
    # tick, or for an ack: thirty jobs' events are not thirty wake-ups of the event loop
    # (whose work competes with training for the GIL).
    def push_points(self, points: list[dict]) -> None:
        super().push_points(points)
        if self.points and not self.owner.points_waiting:
            self.owner.wake.set()

    def push_frame(self, frame: bytes) -> None:
        super().push_frame(frame)
        if self.slot is not None and self.owner.credit and not self.owner.frames_waiting:
            self.owner.wake.set()

    def push_text(self, message: dict) -> None:
        if self.ready:
            self.owner.push_text(message)
        else:
            super().push_text(message)  # waits for the hello, in the port's own bounded queue

    def close(self, code: int, reason: str) -> None:
        if code == 4404:  # deleted: its status is queued already; the job leaves the set
            self.slot, self.points = None, []
            if not self.ready:  # no hello will come: the client still hears of the deletion
                self.ready = True
                while self.texts:
                    self.owner.push_text(self.texts.popleft())
            self.owner.gone.append(self)
            self.owner.wake.set()
        else:
            self.owner.close(code, reason)


@dataclass(eq=False)
class MultiChannel(Channel):
    """One multi stream: the ports, the shared texts queue, one credit (see the module)."""

    hub: Hub | None = None
    watch: Callable[[Port], None] = lambda port: None  # ask the engine for the job's frames
    unwatch: Callable[[Port], None] = lambda port: None
    ports: dict[str, Port] = field(default_factory=dict)  # job id -> port, in the set's order
    gone: list[Port] = field(default_factory=list)  # deleted: to leave the set
    without: set[str] = field(default_factory=set)  # jobs of the set that get no snapshots
    points_waiting: bool = False  # the pump sleeps until the next metrics_batch is due
    frames_waiting: bool = False  # the pump sleeps until the next tick (or ack)
    bundles_sent: int = 0

    def push_text(self, message: dict) -> None:
        """As `Channel.push_text`, but a status past the bound replaces a waiting status of
        its own job first."""
        if len(self.texts) >= self.max_texts and message.get("type") == "status":
            same = next((i for i, m in enumerate(self.texts) if m.get("type") == "status"
                         and m.get("job_id") == message.get("job_id")), None)
            if same is not None:
                del self.texts[same]
        super().push_text(message)

    def add(self, job_id: str) -> Port:
        """A new job in the set: its port is registered and the engine asked for frames (none
        for a job in `without`: its port has snapshots off, which `watch` passes on)."""
        port = Port(job_id, self.subscription_of(job_id), self.timeout,
                    max_texts=self.max_texts, owner=self)
        self.ports[job_id] = port
        self.hub.attach(port)
        self.watch(port)
        return port

    def subscription_of(self, job_id: str) -> Subscription:
        """The socket's subscription, with snapshots off for a job in `without`."""
        if job_id in self.without and self.subscription.snapshots:
            return replace(self.subscription, snapshots=False)
        return self.subscription

    def tune(self, port: Port) -> None:
        """The port takes its subscription now (after a change of the socket's or of
        `without`): the engine hears of it when what it serves changed; a port without
        snapshots keeps no frame."""
        old, port.subscription = port.subscription, self.subscription_of(port.job_id)
        if not port.subscription.snapshots:
            port.slot = None
        if any(getattr(old, k) != getattr(port.subscription, k) for k in ENGINE_FIELDS):
            self.watch(port)

    def drop(self, job_id: str, purge: bool = True) -> None:
        """A job leaves the set: unregistered, unwatched, its waiting texts dropped (`purge`)."""
        port = self.ports.pop(job_id, None)
        if port is None:
            return
        self.without.discard(job_id)
        self.hub.unregister(port)
        self.unwatch(port)
        if purge:
            self.texts = type(self.texts)(m for m in self.texts if m.get("job_id") != job_id)

    def drop_all(self) -> None:
        for job_id in list(self.ports):
            self.drop(job_id, purge=False)

    def resubscribe(self) -> None:
        """The subscription or `without` changed: every port gets its own (`tune`)."""
        for port in self.ports.values():
            self.tune(port)

    def greeted(self, port: Port, hello: Prepared) -> None:
        """The job's hello is ready: it goes next, then what waited in the port."""
        if self.ports.get(port.job_id) is not port or port.ready:
            return  # it left the set meanwhile, or was deleted
        self.texts.append(hello)  # not bounded: one per job in the set at most
        waiting, port.texts = port.texts, type(port.texts)()
        port.ready = True
        for message in waiting:
            self.push_text(message)
        self.wake.set()

    def overdue(self) -> bool:
        return (not self.credit and time.monotonic() - self.sent_at > self.timeout
                and any(p.slot is not None for p in self.ports.values() if p.ready))

    def _leave_deleted(self) -> None:
        while self.gone:
            port = self.gone.pop()
            if self.ports.get(port.job_id) is port:
                self.drop(port.job_id, purge=False)

    async def pump(self, send_text: Callable[[str], Awaitable[None]],
                   send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        """Send what is due until the channel closes; raises ClientGone with the close code."""
        while True:
            if self.closed is not None:
                raise ClientGone(*self.closed)
            self._leave_deleted()
            now = time.monotonic()
            delay = 3600.0
            sent = bool(self.texts)
            while self.texts:
                message = self.texts.popleft()
                await send_text(message.text if isinstance(message, Prepared) else
                                json.dumps(message, allow_nan=False, default=str))
            notice = self.dropped_notice()
            if notice is not None:
                await send_text(json.dumps(notice))
                sent = True
            ready = [p for p in self.ports.values() if p.ready]
            self.points_waiting = any(p.points for p in ready)
            if self.points_waiting:
                wait = self.metrics_at + self.subscription.metrics_interval() - now
                if wait <= 0:
                    batch = {}
                    for port in ready:
                        if port.points:
                            batch[port.job_id] = port.take_points()
                    await send_text(json.dumps({"type": "metrics_batch", "jobs": batch},
                                               default=_json_default))
                    self.metrics_at = time.monotonic()
                    sent = True
                else:
                    delay = min(delay, wait)
            waiting = [p for p in ready if p.slot is not None]
            self.frames_waiting = bool(waiting)
            if waiting:
                wait = self.frame_wait(now)
                if wait is None:
                    continue
                if wait <= 0:
                    frames = []
                    for port in waiting:
                        frames.append(port.slot)
                        port.slot = None
                        port.frames_sent += 1
                    await send_bytes(encode_bundle(frames))
                    self.bundles_sent += 1
                    sent = True
                else:
                    delay = min(delay, wait)
            if sent or self.texts or self.gone or self.closed is not None:
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see Channel.pump
                async with asyncio.timeout(max(delay, 0.001)):
                    await self.wake.wait()
