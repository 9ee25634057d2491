"""Hub: fans the engine's events out to the websocket clients, one slot and one credit each.

The engine thread hands events to `Hub.on_event` on the event loop (never blocking, never
awaiting). Each client has a `Channel`: a queue of small text messages (status, errors,
replies), the metric points not yet sent (coalesced into one `metrics` message at most every
`METRICS_INTERVAL` seconds, or at the client's own slower `metrics_hz`; a client may ask
for at most `max_points` points a message and only the metric names its `fields` lists:
`Subscription.shape`, the class wall's lighter metrics) and one slot for the newest snapshot
frame (a newer frame replaces an older one). `Channel.pump` sends them through two callables,
so the hub knows nothing of FastAPI: a frame goes only when the client has credit (it
acknowledged the previous frame) and its own rate allows; a client whose unacknowledged frame
is older than `settings.client_timeout_seconds` while another waits is closed with 4408. A
slow client only ever delays its own pump task: training and the other clients never wait.

Every per-client queue is bounded (issue 12): at most `settings.stream_max_queued_messages`
texts wait (past it replies and errors are dropped and counted in one later notice, and a new
status replaces the oldest waiting one), at most `MAX_PENDING_POINTS` metric points (the
oldest go; GET .../metrics has them all) and one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from server.stream.subscription import MAX_PENDING_POINTS, Subscription

SPREAD = 4  # a client with `max_points` m keeps at most SPREAD * m (+1) points between messages
MAX_TEXTS = 256  # default bound of a client's waiting text messages
CLOSE_TIMEOUT = 4408


class ClientGone(Exception):
    """The pump stopped: `code` and `reason` say why (a close code to send, if any)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class Channel:
    """One websocket client of one job: pending texts, metric points, the frame slot, credit."""

    job_id: str
    subscription: Subscription
    timeout: float
    texts: deque = field(default_factory=deque)
    points: list = field(default_factory=list)
    slot: bytes | None = None
    credit: bool = True
    sent_at: float = 0.0  # monotonic time the last frame went out
    metrics_at: float = 0.0  # monotonic time the last metrics message went out
    closed: tuple[int, str] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    min_epoch: float = float("-inf")  # metric points at or below it came in hello already
    frames_sent: int = 0
    frames_dropped: int = 0
    max_texts: int = MAX_TEXTS
    texts_dropped: int = 0  # replies and errors dropped since the last notice
    stride: int = 1  # with max_points: every stride-th point since the last message is kept
    seen: int = 0  # ... of the points that came since then
    extra: dict | None = None  # the newest point, kept beside them when off the stride

    def push_text(self, message: dict) -> None:
        """Queue a text message; the queue never holds more than `max_texts` (see module)."""
        if len(self.texts) >= self.max_texts:
            if message.get("type") != "status":
                self.texts_dropped += 1
                self.wake.set()
                return
            older = next((i for i, m in enumerate(self.texts) if m.get("type") == "status"), 0)
            if self.texts[older].get("type") != "status":
                self.texts_dropped += 1
            del self.texts[older]
        self.texts.append(message)
        self.wake.set()

    def dropped_notice(self) -> dict | None:
        """One `error` saying how many replies and errors were dropped, once, or None."""
        if not self.texts_dropped:
            return None
        n, self.texts_dropped = self.texts_dropped, 0
        return {"type": "error", "job_id": self.job_id, "request": None, "id": None,
                "message": f"{n} replies and errors were dropped because this client did not "
                           "read its messages in time"}

    def push_points(self, points: list[dict]) -> None:
        if not self.subscription.metrics:
            return
        if points and points[0].get("epoch", float("inf")) > self.min_epoch:
            fresh = points  # in epoch order: all are new (no copy per client and event)
        else:
            fresh = [p for p in points if p.get("epoch", float("inf")) > self.min_epoch]
        if not fresh:
            return
        waiting = bool(self.points)
        cap = self.subscription.max_points
        if cap is None:
            self.points.extend(fresh)
            if len(self.points) > MAX_PENDING_POINTS:
                del self.points[: len(self.points) - MAX_PENDING_POINTS]
        else:
            self._keep_spread(fresh, cap)
        if not waiting:  # else the pump knows already when the next message goes
            self.wake.set()

    def _keep_spread(self, fresh: list[dict], cap: int) -> None:
        """Keep every `stride`-th point that came since the last message, and the newest: the
        stride doubles whenever more than SPREAD * cap are kept, so that what waits stays
        evenly spread over the epochs and small (thirty wall tiles of a fast class would
        otherwise hold ten thousand records between two messages, which the garbage
        collector then walks again and again while training waits for it)."""
        points = self.points
        if points and points[-1] is self.extra:  # the newest, kept off the stride
            points.pop()
        stride = self.stride
        points.extend(fresh[(-self.seen) % stride::stride])
        self.seen += len(fresh)
        while len(points) > SPREAD * cap:
            points = points[::2]  # the kept points were every stride-th: now every 2 stride-th
            stride *= 2
        self.points, self.stride = points, stride
        self.extra = None
        if (self.seen - 1) % stride:
            self.extra = fresh[-1]
            points.append(self.extra)

    def take_points(self) -> list[dict]:
        """The waiting points as the next metrics message sends them (`Subscription.shape`);
        none wait after."""
        points, self.points = self.subscription.shape(self.points), []
        self.stride, self.seen, self.extra = 1, 0, None
        return points

    def push_frame(self, frame: bytes) -> None:
        if not self.subscription.snapshots:
            return
        if self.slot is not None:  # the pump knows already when this one may go
            self.frames_dropped += 1
            self.slot = frame
            return
        self.slot = frame
        self.wake.set()

    def ack(self) -> None:
        self.credit = True
        self.wake.set()

    def overdue(self) -> bool:
        """A frame waits and the previous one has gone unacknowledged for longer than allowed."""
        return (self.slot is not None and not self.credit
                and time.monotonic() - self.sent_at > self.timeout)

    def timeout_reason(self) -> str:
        return f"No ack for {self.timeout:g} s; reconnect to continue"

    def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
        self.wake.set()

    def frame_wait(self, now: float) -> float | None:
        """With a frame waiting: the seconds until it may go (at most 0: now, and the credit
        is taken), or None when the client is overdue (closed with 4408)."""
        if self.credit:
            wait = self.sent_at + 1.0 / self.subscription.hz - now
            if wait <= 0:
                self.credit = False
                self.sent_at = time.monotonic()
            return wait
        if self.overdue():
            self.close(CLOSE_TIMEOUT, self.timeout_reason())
            return None
        return self.timeout - (now - self.sent_at) + 0.01

    async def pump(self, send_text: Callable[[str], Awaitable[None]],
                   send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        """Send what is due until the channel closes; raises ClientGone with the close code."""
        while True:
            if self.closed is not None:
                raise ClientGone(*self.closed)
            now = time.monotonic()
            delay = 3600.0
            sent = bool(self.texts)  # after any send, look again: more may have come meanwhile
            while self.texts:
                await send_text(json.dumps(self.texts.popleft(), allow_nan=False, default=str))
            notice = self.dropped_notice()
            if notice is not None:
                await send_text(json.dumps(notice))
                sent = True
            if self.points:
                wait = self.metrics_at + self.subscription.metrics_interval() - now
                if wait <= 0:
                    points = self.take_points()
                    await send_text(json.dumps(
                        {"type": "metrics", "job_id": self.job_id, "points": points},
                        default=_json_default))
                    self.metrics_at = time.monotonic()
                    sent = True
                else:
                    delay = min(delay, wait)
            if self.slot is not None:
                wait = self.frame_wait(now)
                if wait is None:
                    continue
                if wait <= 0:
                    frame, self.slot = self.slot, None
                    await send_bytes(frame)
                    self.frames_sent += 1
                    sent = True
                else:
                    delay = min(delay, wait)
            if sent or self.texts or self.closed is not None:
                continue
            self.wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the event, and the pump would then outlive its socket.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.001)):
                    await self.wake.wait()


def _json_default(value: object) -> object:
    try:
        return float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)


def frame_layout(frame: bytes) -> list[dict]:
    """Name, dtype and shape of each array of a frame (reads only its JSON header)."""
    (n,) = struct.unpack_from("<I", frame, 0)
    header = json.loads(frame[4:4 + n])
    return [{"name": a["name"], "dtype": a["dtype"], "shape": a["shape"]}
            for a in header.get("arrays", [])]


class Hub:
    """Every job's watching clients; `on_event` is called on the event loop for engine events."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.channels: dict[str, set[Channel]] = {}
        self.latest: dict[str, bytes] = {}  # job_id -> newest frame, for a client that joins
        self._frame_waiters: dict[str, list[asyncio.Future]] = {}
        self.closing = False
        self.closed_frames = [0, 0]  # frames sent, dropped by clients gone (/metrics)

    def default_subscription(self) -> Subscription:
        return Subscription(hz=min(self.settings.snapshot_hz, self.settings.max_snapshot_hz))

    def register(self, job_id: str, subscription: Subscription | None = None) -> Channel:
        return self.attach(Channel(job_id, subscription or self.default_subscription(),
                                   self.settings.client_timeout_seconds,
                                   max_texts=self.max_texts()))

    def max_texts(self) -> int:
        return getattr(self.settings, "stream_max_queued_messages", MAX_TEXTS)

    def attach(self, channel: Channel) -> Channel:
        """Add a client made elsewhere (a multi stream's per-job port: server.stream.multi)."""
        self.channels.setdefault(channel.job_id, set()).add(channel)
        if channel.job_id in self.latest:
            channel.push_frame(self.latest[channel.job_id])
        return channel

    def unregister(self, channel: Channel) -> None:
        watchers = self.channels.get(channel.job_id)
        if watchers is not None:
            if channel in watchers:  # counted once, however often unregistered
                self.closed_frames[0] += channel.frames_sent
                self.closed_frames[1] += channel.frames_dropped
            watchers.discard(channel)
            if not watchers:
                del self.channels[channel.job_id]
                self.latest.pop(channel.job_id, None)

    def frame_counts(self) -> tuple[int, int]:
        """(frames sent, frames dropped) since start, every client counted (for /metrics)."""
        live = [c for watchers in self.channels.values() for c in watchers]
        return (self.closed_frames[0] + sum(c.frames_sent for c in live),
                self.closed_frames[1] + sum(c.frames_dropped for c in live))

    async def wait_frame(self, job_id: str, timeout: float) -> bytes | None:
        """The job's newest frame, waiting up to `timeout` seconds for a first one."""
        if job_id in self.latest:
            return self.latest[job_id]
        future = asyncio.get_running_loop().create_future()
        self._frame_waiters.setdefault(job_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._frame_waiters.get(job_id, [])
            if future in waiters:
                waiters.remove(future)

    def on_event(self, event) -> None:
        """An engine event (loop thread): status, metrics, snapshot or error for one job (the
        dataclasses of server.engine.events, read by their fields)."""
        job_id = event.job_id
        kind = event.type
        watchers = self.channels.get(job_id, ())
        if kind == "snapshot":
            frame = event.data
            if watchers:
                self.latest[job_id] = frame
            for future in self._frame_waiters.pop(job_id, []):
                if not future.done():
                    future.set_result(frame)
            for channel in watchers:
                channel.push_frame(frame)
        elif kind == "metrics":
            points = event.records
            for channel in watchers:
                channel.push_points(points)
        elif kind in ("status", "error"):
            message = event.to_json()
            if kind == "error":  # the job's own failure: it answers no client message
                message = {"request": None, "id": None, **message}
            for channel in watchers:
                if kind == "status" and event.epoch < channel.min_epoch:
                    channel.min_epoch = float("-inf")  # a reset: epochs count from 1 again
                if kind == "status" and channel.points and \
                        channel.points[-1].get("epoch", 0) > event.epoch:
                    # A reset or a rewind: the unsent points of the epochs it undid must not
                    # reach the client after this status (its curves start again from here).
                    channel.points = [p for p in channel.points
                                      if p.get("epoch", 0) <= event.epoch]
                channel.push_text(message)
                if kind == "status" and event.status == "deleted":
                    channel.close(4404, "Job not found")

    async def close(self) -> None:
        """Shut down: every client is closed with 1001."""
        self.closing = True
        for watchers in list(self.channels.values()):
            for channel in list(watchers):
                channel.close(1001, "Server shutting down")
        await asyncio.sleep(0)
