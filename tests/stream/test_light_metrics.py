"""The class wall's lighter stream (issue 14): a subscription's `fields`, `metrics_hz` and
`max_points` (server/stream/hub.py, docs/STREAM.md), and its `tile` detail.

First the hub alone: which points and names a message keeps, how often messages go, what
the replies show; then through a running server with a real websocket client: a tile's
subscription is answered, its metrics messages hold only what it asked for, newest epoch
included, and bad values are refused with a sentence while the socket stays open; a `tile`
subscription gets the boundary on the coarser grid.
"""

from __future__ import annotations

import asyncio

import pytest

from server.config import Settings
from server.engine.events import MetricsEvent
from server.engine.snapshot import BOUNDARY, TILE_BOUNDARY
from server.stream.hub import SPREAD, Channel, Hub
from server.stream.subscription import (
    ALWAYS_SENT,
    MAX_FIELDS,
    MAX_PENDING_POINTS,
    Subscription,
    metric_fields,
    metrics_rate,
    points_cap,
)
from tests.stream.conftest import Client, connect, run
from tests.stream.test_hub import Recorder

TILE = {"detail": "tile", "fields": ["train_loss", "test_loss", "train_accuracy",
                                         "test_accuracy", "test_r2"],
        "metrics_hz": 2, "max_points": 8}


def point(epoch: int) -> dict:
    return {"epoch": epoch, "step": 20 * epoch, "train_loss": 1.0 / epoch, "test_loss": 2.0,
            "train_auc": 0.5, "learning_rate": 0.03, "train_confusion": [[1, 2], [3, 4]]}


def test_shape_keeps_evenly_spread_points_the_newest_included():
    sub = Subscription(max_points=4)
    points = [point(e) for e in range(1, 11)]  # epochs 1..10
    assert [p["epoch"] for p in sub.shape(points)] == [1, 4, 7, 10]
    assert [p["epoch"] for p in Subscription(max_points=1).shape(points)] == [10]
    assert sub.shape(points[:3]) == points[:3]  # fewer than the cap: all, untouched
    assert Subscription().shape(points) == points


def test_shape_keeps_only_the_fields_asked_for_and_epoch_and_step():
    sub = Subscription(fields=metric_fields(["train_loss", "test_r2"]))
    assert sub.shape([point(3)]) == [{"epoch": 3, "step": 60, "train_loss": 1.0 / 3}]
    assert ALWAYS_SENT == {"epoch", "step"}


def test_options_are_checked_with_a_sentence():
    assert metric_fields(None) is None
    assert metric_fields([]) == ALWAYS_SENT
    for bad in ("train_loss", [1], [""], ["x" * 65], ["f"] * (MAX_FIELDS + 1)):
        with pytest.raises(ValueError, match="fields must be null or a list"):
            metric_fields(bad)
    assert metrics_rate(2) == 2.0 and metrics_rate(50) == 10.0 and metrics_rate(None) is None
    for bad in (0, -1, True, "2"):
        with pytest.raises(ValueError, match="metrics_hz must be null or a number above 0"):
            metrics_rate(bad)
    assert points_cap(8) == 8 and points_cap(None) is None
    for bad in (0, 2.5, True, MAX_PENDING_POINTS + 1):
        with pytest.raises(ValueError, match="max_points must be null or a whole number"):
            points_cap(bad)


def test_replies_show_the_new_options_only_once_set():
    assert Subscription().as_dict() == {"snapshots": True, "hz": 10.0, "metrics": True,
                                        "detail": "full"}
    sub = Subscription(fields=metric_fields(["test_loss"]), metrics_hz=2.0, max_points=8)
    assert sub.as_dict() == {"snapshots": True, "hz": 10.0, "metrics": True,
                             "detail": "full", "fields": ["epoch", "step", "test_loss"],
                             "metrics_hz": 2.0, "max_points": 8}


def test_a_light_client_gets_few_small_messages_and_a_full_one_everything():
    async def main():
        hub = Hub(Settings())
        light = hub.register("a", Subscription(fields=metric_fields(["train_loss"]),
                                               metrics_hz=4.0, max_points=3))
        full = hub.register("a")
        socks = {light: Recorder(), full: Recorder()}
        pumps = [asyncio.create_task(c.pump(s.send_text, s.send_bytes))
                 for c, s in socks.items()]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for epoch in range(1, 101):  # 200 epochs a second for half a second
            hub.on_event(MetricsEvent("a", [point(epoch)]))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.4)  # the last message of each
        elapsed = loop.time() - start
        messages = [t for t in socks[light].texts if t["type"] == "metrics"]
        assert 2 <= len(messages) <= elapsed * 4 + 1
        for m in messages:
            assert 1 <= len(m["points"]) <= 3
            assert all(set(p) == {"epoch", "step", "train_loss"} for p in m["points"])
        epochs = [p["epoch"] for m in messages for p in m["points"]]
        assert epochs == sorted(epochs) and epochs[-1] == 100
        everything = [p for t in socks[full].texts if t["type"] == "metrics"
                      for p in t["points"]]
        assert [p["epoch"] for p in everything] == list(range(1, 101))
        assert everything[0] == point(1)
        for pump in pumps:
            pump.cancel()
    run(main())


def test_a_wall_tile_subscription_over_a_real_socket(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()  # hello
            await c.send({"type": "subscribe", "hz": 8, **TILE, "id": "tile"})
            reply = await c.next("reply", where=lambda m: m["id"] == "tile")
            assert reply["subscription"] == {
                "snapshots": True, "hz": 8.0, "metrics": True, "detail": "tile",
                "fields": sorted(TILE["fields"] + ["epoch", "step"]), "metrics_hz": 2.0,
                "max_points": 8}
            header, arrays = await c.next("snapshot", where=lambda f: f[0].get("detail")
                                          == "tile", timeout=30)
            assert list(arrays) == ["output.boundary"]
            after = len(c.log)
            loop = asyncio.get_running_loop()
            start = loop.time()
            while loop.time() - start < 2.0:
                await c.recv(5)
            elapsed = loop.time() - start
            messages = [m for m in c.log[after:] if m["type"] == "metrics"]
            assert 2 <= len(messages) <= elapsed * 2 + 2
            for m in messages:
                assert 1 <= len(m["points"]) <= 8
                for p in m["points"]:
                    assert set(p) <= set(TILE["fields"]) | {"epoch", "step"}
                    assert {"epoch", "step", "train_loss", "train_accuracy"} <= set(p)
            # Back to everything: null lifts each option.
            await c.send({"type": "subscribe", "fields": None, "metrics_hz": None,
                          "max_points": None, "id": "all"})
            reply = await c.next("reply", where=lambda m: m["id"] == "all")
            assert set(reply["subscription"]) == {"snapshots", "hz", "metrics", "detail"}
            full = await c.next("metrics", where=lambda m: "train_auc" in m["points"][-1])
            assert full["points"]

    run(main())


def test_bad_light_options_are_refused_and_the_socket_stays_open(server, jobs):
    job_id, _ = jobs()
    bad = [({"fields": "train_loss"}, "fields must be null or a list"),
           ({"metrics_hz": 0}, "metrics_hz must be null or a number above 0"),
           ({"max_points": 0.5}, "max_points must be null or a whole number"),
           ({"max_point": 3}, "unknown fields")]

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            for body, words in bad:
                await c.send({"type": "subscribe", **body})
                error = await c.next("error")
                assert error["request"] == "subscribe" and words in error["message"], error
            await c.send({"type": "subscribe", "max_points": 2, "id": "ok"})
            reply = await c.next("reply", where=lambda m: m["id"] == "ok")
            assert reply["subscription"]["max_points"] == 2

    run(main())


def test_a_tile_subscription_gets_the_coarser_boundary(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "subscribe", "detail": "tile", "id": "t"})
            reply = await c.next("reply", where=lambda m: m["id"] == "t")
            assert reply["subscription"]["detail"] == "tile"
            header, arrays = await c.next("snapshot", where=lambda f: f[0].get("detail")
                                          == "tile", timeout=30)
            assert list(arrays) == ["output.boundary"]
            assert arrays["output.boundary"].shape == (1, TILE_BOUNDARY, TILE_BOUNDARY)
            await c.send({"type": "subscribe", "detail": "boundary", "id": "b"})
            header, arrays = await c.next("snapshot", where=lambda f: f[0].get("detail")
                                          == "boundary", timeout=30)
            assert arrays["output.boundary"].shape == (1, BOUNDARY, BOUNDARY)

    run(main())


@pytest.mark.parametrize("sizes", [[1] * 300, [7] * 50, [100, 3, 250, 1, 46], [1000]])
def test_a_capped_client_keeps_few_points_evenly_spread_and_the_newest(sizes):
    """With max_points m, what waits between two messages stays at most SPREAD * m + 1
    points: every stride-th point that came (the stride doubling as they come) and the
    newest; the message then picks m of them evenly, the newest last."""
    channel = Channel("j", Subscription(max_points=8), 30.0)
    epoch = 0
    for size in sizes:
        channel.push_points([{"epoch": epoch + i + 1, "step": 0} for i in range(size)])
        epoch += size
        kept = [p["epoch"] for p in channel.points]
        assert len(kept) <= SPREAD * 8 + 1
        assert kept[-1] == epoch  # the newest always waits
        on_stride = kept if (epoch - 1) % channel.stride == 0 else kept[:-1]
        assert on_stride == list(range(1, epoch + 1, channel.stride))
    stride = channel.stride
    sent = [p["epoch"] for p in channel.take_points()]
    assert len(sent) == min(8, epoch) and sent[-1] == epoch
    inner = [b - a for a, b in zip(sent[:-2], sent[1:-1], strict=True)]  # newest left out
    assert all(g % stride == 0 for g in inner)
    assert max(inner) - min(inner) <= stride  # evenly spread, to within one stride
    assert channel.points == [] and (channel.stride, channel.seen, channel.extra) == (1, 0, None)
    channel.push_points([{"epoch": epoch + 1, "step": 0}])  # counting starts again after it
    assert [p["epoch"] for p in channel.points] == [epoch + 1]


def test_an_uncapped_client_keeps_every_point_up_to_the_bound():
    channel = Channel("j", Subscription(), 30.0)
    channel.push_points([{"epoch": i + 1} for i in range(MAX_PENDING_POINTS + 5)])
    assert [p["epoch"] for p in channel.points] == list(range(6, MAX_PENDING_POINTS + 6))
