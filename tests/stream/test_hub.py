"""The hub without sockets: slot replacement, credit, pacing, coalesced metrics, timeouts."""

from __future__ import annotations

import asyncio
import json

import pytest

from server.config import Settings
from server.engine.events import MetricsEvent, SnapshotEvent, StatusEvent
from server.stream.hub import ClientGone, Hub
from server.stream.subscription import Subscription


class Recorder:
    """A fake socket: records what the pump sends; `delay` makes it slow, `frozen` never sends."""

    def __init__(self, delay: float = 0.0, frozen: bool = False) -> None:
        self.texts: list[dict] = []
        self.frames: list[bytes] = []
        self.delay, self.frozen = delay, frozen

    async def send_text(self, text: str) -> None:
        self.texts.append(json.loads(text))

    async def send_bytes(self, data: bytes) -> None:
        if self.frozen:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        self.frames.append(data)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def snapshot(job: str, n: int) -> SnapshotEvent:
    return SnapshotEvent(job, n.to_bytes(4, "little"))


def test_newest_frame_replaces_older_and_next_waits_for_ack():
    async def main():
        hub = Hub(Settings(snapshot_hz=60, max_snapshot_hz=60))
        ch = hub.register("a", Subscription(hz=60))
        sock = Recorder()
        pump = asyncio.create_task(ch.pump(sock.send_text, sock.send_bytes))
        hub.on_event(snapshot("a", 1))
        await asyncio.sleep(0.05)
        for n in (2, 3, 4):
            hub.on_event(snapshot("a", n))
        await asyncio.sleep(0.1)
        assert [int.from_bytes(f, "little") for f in sock.frames] == [1]  # no credit yet
        ch.ack()
        await asyncio.sleep(0.1)
        assert [int.from_bytes(f, "little") for f in sock.frames] == [1, 4]
        assert ch.frames_dropped == 2
        pump.cancel()
    run(main())


def test_client_rate_limits_frames():
    async def main():
        hub = Hub(Settings())
        ch = hub.register("a", Subscription(hz=5))
        sock = Recorder()
        pump = asyncio.create_task(ch.pump(sock.send_text, sock.send_bytes))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(50):  # up to 100 frames a second, acknowledged at once
            hub.on_event(snapshot("a", n))
            ch.ack()
            await asyncio.sleep(0.01)
        elapsed = loop.time() - start
        assert 2 <= len(sock.frames) <= elapsed * 5 + 1  # 5 Hz, however slow the machine
        pump.cancel()
    run(main())


def test_metrics_are_coalesced_and_complete():
    async def main():
        hub = Hub(Settings())
        ch = hub.register("a")
        sock = Recorder()
        pump = asyncio.create_task(ch.pump(sock.send_text, sock.send_bytes))
        for epoch in range(1, 201):
            hub.on_event(MetricsEvent("a", [{"epoch": epoch}]))
            if epoch % 20 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.25)
        messages = [t for t in sock.texts if t["type"] == "metrics"]
        epochs = [p["epoch"] for m in messages for p in m["points"]]
        assert epochs == list(range(1, 201))
        assert len(messages) <= 6
        pump.cancel()
    run(main())


def test_points_already_in_hello_are_not_repeated():
    async def main():
        hub = Hub(Settings())
        ch = hub.register("a")
        ch.min_epoch = 3
        hub.on_event(MetricsEvent("a", [{"epoch": 3}, {"epoch": 4}]))
        assert [p["epoch"] for p in ch.points] == [4]
    run(main())


def test_frozen_client_does_not_stall_another_and_times_out():
    async def main():
        hub = Hub(Settings(client_timeout_seconds=0.5, snapshot_hz=60, max_snapshot_hz=60))
        frozen, healthy = hub.register("a"), hub.register("a")
        frozen.subscription.hz = healthy.subscription.hz = 60
        fs, hs = Recorder(), Recorder()
        pumps = [asyncio.create_task(frozen.pump(fs.send_text, fs.send_bytes)),
                 asyncio.create_task(healthy.pump(hs.send_text, hs.send_bytes))]
        for n in range(40):
            hub.on_event(snapshot("a", n))
            await asyncio.sleep(0.02)
            if healthy.credit is False:
                healthy.ack()
        assert len(hs.frames) >= 20
        assert len(fs.frames) == 1  # it never acknowledged
        with pytest.raises(ClientGone) as gone:
            await pumps[0]
        assert gone.value.code == 4408
        pumps[1].cancel()
    run(main())


def test_status_passes_through_and_deleted_job_closes_with_4404():
    async def main():
        hub = Hub(Settings())
        ch = hub.register("a")
        other = hub.register("b")
        sock = Recorder()
        pump = asyncio.create_task(ch.pump(sock.send_text, sock.send_bytes))
        hub.on_event(StatusEvent("a", "paused", epoch=1, step=10))
        await asyncio.sleep(0.02)
        assert sock.texts[-1]["status"] == "paused"
        assert not other.texts
        hub.on_event(StatusEvent("a", "deleted", epoch=1, step=10))
        with pytest.raises(ClientGone) as gone:
            await pump
        assert gone.value.code == 4404
    run(main())


def test_joining_client_gets_the_latest_frame_and_close_says_1001():
    async def main():
        hub = Hub(Settings())
        first = hub.register("a")
        hub.on_event(snapshot("a", 9))
        assert await hub.wait_frame("a", 0.1) == (9).to_bytes(4, "little")
        late = hub.register("a")
        assert late.slot == (9).to_bytes(4, "little") and first.slot is not None
        assert await hub.wait_frame("zzz", 0.05) is None
        await hub.close()
        assert late.closed == (1001, "Server shutting down")
    run(main())


def test_frame_budget_holds_frames_past_its_share_but_never_starves_a_job():
    from server.engine.snapshot import FrameBudget

    budget = FrameBudget(share=0.1, window=1.0, starve_seconds=2.0)
    assert budget.allows()
    budget.spend(0.05)
    assert budget.allows()
    budget.spend(0.06)  # 110 ms of frames in the last second: over 10%
    assert not budget.allows()
    assert budget.allows(waited=2.5)  # a job that waited long gets its frame anyway
