"""The stream as a client sees it: uvicorn on loopback, a real websocket client (docs/STREAM.md)."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from server.engine import snapshot
from server.stream import wire
from tests.stream.conftest import Client, connect, job_spec, run

STATUSES = {"queued", "running", "paused", "completed", "stopped", "failed"}


def check_hello(hello: dict, job_id: str) -> None:
    assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["job_id"] == job_id
    assert hello["spec"]["dataset"]["name"] == "xor"
    assert hello["status"]["status"] in STATUSES
    assert isinstance(hello["status"]["epoch"], int) and isinstance(hello["status"]["step"], int)
    assert isinstance(hello["metrics"], list)
    assert hello["kind"] == "points2d" and hello["task"] == "classification"
    assert hello["num_classes"] == 2
    data = hello["data"]
    assert len(data["points_train"]) == len(data["labels_train"]) > 0
    assert len(data["points_train"][0]) == 2
    assert data["grid"] == {"x": [-6.0, 6.0], "y": [-6.0, 6.0], "thumbnail": 20,
                            "boundary": snapshot.BOUNDARY}
    for meta in hello["arrays"]:
        assert set(meta) == {"name", "dtype", "shape"}
    assert hello["subscription"] == {"snapshots": True, "hz": 10.0, "metrics": True,
                                     "detail": "full"}
    assert hello["limits"]["max_snapshot_hz"] == 30.0


def check_metrics(message: dict, job_id: str) -> None:
    assert set(message) == {"type", "job_id", "points"} and message["job_id"] == job_id
    assert message["points"]
    for point in message["points"]:
        for key in ("epoch", "step", "learning_rate", "train_loss", "test_loss"):
            assert key in point, (key, point)


def check_status(message: dict, job_id: str) -> None:
    assert message["job_id"] == job_id and message["status"] in STATUSES
    assert {"epoch", "step", "error"} <= set(message)


def check_snapshot(header: dict, arrays: dict, job_id: str) -> None:
    assert header["type"] == "snapshot" and header["protocol"] == 1
    assert header["job_id"] == job_id and header["kind"] == "points2d"
    for key, kind in (("seq", int), ("epoch", int), ("step", int), ("learning_rate", float),
                      ("time", float)):
        assert isinstance(header[key], kind), key
    for meta in header["arrays"]:
        assert meta["dtype"] in ("float32", "int32", "uint8")
        assert meta["offset"] % 8 == 0
        assert list(arrays[meta["name"]].shape) == meta["shape"]
        if meta["dtype"] == "uint8":
            assert len(meta["min"]) == len(meta["max"]) == meta["shape"][0]


def test_every_message_type_matches_its_schema(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            hello = await c.recv()
            check_hello(hello, job_id)
            check_metrics(await c.next("metrics"), job_id)
            header, arrays = await c.next("snapshot")
            check_snapshot(header, arrays, job_id)
            if hello["arrays"]:
                assert hello["arrays"] == [{k: m[k] for k in ("name", "dtype", "shape")}
                                           for m in header["arrays"]]
            await c.send({"type": "control", "action": "pause", "id": "p1"})
            reply = await c.next("reply", where=lambda m: m["request"] == "control")
            assert reply == {"type": "reply", "job_id": job_id, "request": "control", "id": "p1",
                             "ok": True, "action": "pause"}
            check_status(await c.next("status", where=lambda m: m["status"] == "paused"), job_id)
            await c.send({"type": "nonsense", "id": 5})
            error = await c.next("error")
            assert set(error) == {"type", "job_id", "message", "request", "id"}
            assert error["request"] == "nonsense" and error["id"] == 5
            assert "expected one of: ack, control, set, subscribe" in error["message"]
            await c.send({"type": "subscribe", "hz": 100})
            reply = await c.next("reply", where=lambda m: m["request"] == "subscribe")
            assert reply["subscription"] == {"snapshots": True, "hz": 30.0, "metrics": True,
                                             "detail": "full"}

    run(main())


def test_heatmaps_decode_to_advertised_shapes_and_change_as_training_proceeds(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            first, arrays = await c.next("snapshot")
            later, later_arrays = await c.next(
                "snapshot", where=lambda f: f[0]["epoch"] >= first["epoch"] + 20, timeout=30)
            for header, a in ((first, arrays), (later, later_arrays)):
                assert a["input.heatmap"].shape == (2, 20, 20)
                assert a["layer0.heatmap"].shape == (4, 20, 20)
                assert a["layer1.heatmap"].shape == (3, 20, 20)
                assert a["layer2.heatmap"].shape == (1, 20, 20)
                assert a["output.boundary"].shape == (1, snapshot.BOUNDARY, snapshot.BOUNDARY)
                assert a["layer0.weight"].shape == (4, 2) and a["layer0.bias"].shape == (4,)
                assert a["layer0.weight_hist"].sum() == 4 * 2 + 4
                boundary = wire.values(header, a, "output.boundary")
                assert 0.0 <= boundary.min() and boundary.max() <= 1.0  # sigmoid probabilities
            assert later["step"] > first["step"] and later["seq"] > first["seq"]
            before = wire.values(first, arrays, "output.boundary")
            after = wire.values(later, later_arrays, "output.boundary")
            assert np.abs(after - before).max() > 0.01
            assert not np.array_equal(arrays["layer0.weight"], later_arrays["layer0.weight"])
            # x1 over the grid: grows along a row, is constant down a column (row 0 = top)
            x1 = wire.values(first, arrays, "input.heatmap")[0]
            assert x1[0, -1] > x1[0, 0] and np.allclose(x1[:, 3], x1[0, 3], atol=0.05)

    run(main())


def test_a_boundary_subscription_gets_frames_with_only_the_output_map(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            await c.send({"type": "subscribe", "detail": "boundary", "id": 1})
            reply = await c.next("reply", where=lambda m: m["request"] == "subscribe")
            assert reply["subscription"]["detail"] == "boundary"
            header, arrays = await c.next("snapshot", where=lambda f: f[0].get("detail")
                                          == "boundary", timeout=30)
            await c.send({"type": "ack"})
            assert set(arrays) == {"output.boundary"}
            assert arrays["output.boundary"].shape == (1, snapshot.BOUNDARY, snapshot.BOUNDARY)
            await c.send({"type": "subscribe", "detail": "nothing"})
            error = await c.next("error")
            assert "detail must be one of: full, boundary" in error["message"]

    run(main())


def test_controls_and_set_work_over_the_socket(server, jobs):
    job_id, _ = jobs(job_spec(start=False))

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            hello = await c.recv()
            assert hello["status"]["status"] == "paused"
            await c.send({"type": "control", "action": "step"})
            await c.next("reply", where=lambda m: m["request"] == "control")
            frame, _ = await c.next("snapshot", where=lambda f: f[0]["step"] >= 1)
            assert frame["step"] == 1
            await c.send({"type": "set", "training": {"optimizer": {"learning_rate": 0.2}},
                          "id": 9})
            reply = await c.next("reply", where=lambda m: m["request"] == "set")
            assert reply["ok"] is True and reply["id"] == 9
            await c.send({"type": "control", "action": "resume"})
            await c.next("status", where=lambda m: m["status"] == "running")
            header, _ = await c.next("snapshot", where=lambda f: f[0]["step"] > 1)
            assert header["learning_rate"] == 0.2
            await c.next("metrics", where=lambda m: m["points"][-1]["learning_rate"] == 0.2)
            await c.send({"type": "set", "training": {"optimizer": {"learning_rate": -1}}})
            error = await c.next("error")
            assert error["request"] == "set" and "learning_rate" in error["message"]
            await c.send({"type": "control", "action": "stop"})
            await c.next("status", where=lambda m: m["status"] == "stopped")
            await c.send({"type": "control", "action": "resume", "id": 2})
            error = await c.next("error")  # the engine's reason comes back as an error frame
            assert error["id"] == 2 and "reset it" in error["message"]
            await c.send({"type": "control", "action": "reset"})
            status = await c.next("status", where=lambda m: m["status"] == "paused")
            assert status["epoch"] == 0 and status["step"] == 0
            # Three epochs this time: a fast job trains more than the 2,000 points a client's
            # channel keeps between two messages, and the oldest (epoch 1) would be dropped.
            await c.send({"type": "set", "training": {"epochs": 3}, "id": 10})
            reply = await c.next("reply", where=lambda m: m.get("id") == 10)
            assert reply["ok"] is True
            await c.send({"type": "control", "action": "resume"})
            # after a reset the curves start again from epoch 1
            metrics = await c.next("metrics", where=lambda m: m["points"][0]["epoch"] == 1)
            assert [p["epoch"] for p in metrics["points"]][:2] in ([1], [1, 2])

    run(main())
    with server.client() as http:
        job = http.get(f"/api/jobs/{job_id}").json()
        assert job["spec"]["training"]["optimizer"]["learning_rate"] == 0.2


def test_a_frozen_client_does_not_stall_a_healthy_one(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as frozen_ws, connect(server, job_id) as ws:
            frozen = Client(frozen_ws, auto_ack=False)
            await frozen.recv()
            await frozen.next("snapshot")  # it got one frame and will never acknowledge it
            healthy = Client(ws)
            await healthy.recv()
            await healthy.next("snapshot")
            start = asyncio.get_running_loop().time()
            while asyncio.get_running_loop().time() - start < 3.0:
                await healthy.recv()
            steps = [h["step"] for h, _ in healthy.frames]
            assert len(healthy.frames) >= 8  # 10 Hz asked; a loaded machine may give fewer
            assert steps == sorted(steps) and steps[-1] > steps[0]
            gaps = np.diff(healthy.arrival[1:])
            assert gaps.max() < 1.5
            assert len(frozen.frames) == 1

    run(main())


def test_reconnect_gets_the_full_history_then_continues(server, jobs):
    # Epochs of 1,000 one-sample batches: a family trains the small default job so fast
    # (tens of thousands of epochs a second) that a client's waiting points would pass
    # MAX_PENDING_POINTS between two messages, and the oldest would be dropped.
    spec = job_spec(batch_size=1)
    spec["dataset"]["params"]["samples"] = 2000
    job_id, _ = jobs(spec)

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            hello = await c.recv()
            await c.next("metrics", where=lambda m: m["points"][-1]["epoch"] >= 5)
            seen = hello["metrics"] + c.points()
            assert [p["epoch"] for p in seen] == list(range(1, len(seen) + 1))
        async with connect(server, job_id) as ws:
            c = Client(ws)
            hello = await c.recv()
            history = hello["metrics"]
            assert [p["epoch"] for p in history] == list(range(1, len(history) + 1))
            assert len(history) >= len(seen)
            assert history[: len(seen)] == seen
            await c.next("metrics", where=lambda m: m["points"][-1]["epoch"] >= len(history) + 3)
            everything = history + c.points()
            assert [p["epoch"] for p in everything] == list(range(1, len(everything) + 1))
            # a reset starts the curves again, also for a client that came with a history
            await c.send({"type": "control", "action": "reset"})
            await c.next("status", where=lambda m: m["epoch"] == 0)
            metrics = await c.next("metrics", where=lambda m: m["points"][0]["epoch"] == 1)
            assert metrics["points"][0]["step"] > 0

    run(main())


def test_bad_messages_get_error_frames_and_the_socket_stays_open(server, jobs):
    job_id, _ = jobs(job_spec(start=False))
    bad = [
        ("not json", None, "not JSON"),
        ("[1, 2]", None, "JSON object"),
        ({"type": "control", "action": "explode"}, "control", "pause, resume, step, stop, reset"),
        ({"type": "control"}, "control", "action"),
        ({"type": "subscribe", "hz": -1}, "subscribe", "above 0"),
        ({"type": "subscribe", "hz": "fast"}, "subscribe", "above 0"),
        ({"type": "subscribe", "colour": "red"}, "subscribe", "unknown fields"),
        ({"type": "subscribe", "snapshots": "yes"}, "subscribe", "true or false"),
        ({"type": "set", "training": {"optimiser": {}}}, "set", "optimiser"),
        ({"type": "set", "training": {"batch_size": 0}}, "set", "batch_size"),
        ({"id": 3}, None, "unknown message type None"),
    ]

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            for body, request, words in bad:
                await c.send(body)
                error = await c.next("error")
                assert error["request"] == request, (body, error)
                assert words in error["message"], (body, error)
            await ws.send(b"\x00\x01")
            error = await c.next("error")
            assert "binary" in error["message"]
            await c.send({"type": "subscribe", "hz": 2, "id": "ok"})
            reply = await c.next("reply")
            assert reply["id"] == "ok" and reply["subscription"]["hz"] == 2.0

    run(main())


def test_unknown_job_closes_with_4404(server):
    async def main():
        async with connect(server, "no-such-job") as ws:
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except Exception as exc:  # websockets.ConnectionClosed
                return exc.rcvd.code, exc.rcvd.reason
        raise AssertionError("the socket stayed open")

    assert run(main()) == (4404, "Job not found")


def test_message_order_has_hello_first(server, jobs):
    job_id, _ = jobs()

    async def main():
        async with connect(server, job_id) as ws:
            first = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(first, str) and json.loads(first)["type"] == "hello"

    run(main())


def test_server_shutdown_closes_streams_and_does_not_hang(fresh_server):
    import signal
    import time

    import websockets

    with fresh_server.client() as http:
        job_id = http.post("/api/jobs", json=job_spec()).json()["id"]

    async def main():
        async with connect(fresh_server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            await c.next("snapshot")
            fresh_server.process.send_signal(signal.SIGTERM)
            try:
                while True:
                    await c.recv(timeout=15)
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

    start = time.monotonic()
    assert run(main()) in (1001, 1012)  # uvicorn says 1012 (restart) before the hub can
    fresh_server.process.wait(timeout=20)
    assert time.monotonic() - start < 20


def test_a_diverging_job_sends_a_paused_status_that_says_why(server, jobs):
    """Issue 16: a divergence pauses the job at its last good state (no error message)."""
    spec = {"dataset": {"name": "plane"},
            "model": {"layers": [{"type": "dense", "units": 8, "activation": "relu"}]},
            "training": {"epochs": None, "optimizer": {"name": "sgd", "learning_rate": 100.0}}}
    job_id, _ = jobs(spec)

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            hello = await c.recv()
            if hello["status"]["stop_reason"] != "diverged":
                status = await c.next("status", timeout=30,
                                      where=lambda m: m["status"] == "paused")
                assert status["stop_reason"] == "diverged"
                assert status["diverged"]["message"] == status["error"]
                assert status["error"].startswith("diverged: loss became ")
            else:
                assert hello["status"]["status"] == "paused"
                assert "diverged" in hello["status"]["error"]

    run(main())
