"""What one stream client may send (issue 12): bounded memory for a client that sends bad
messages and never reads, a size cap (1009), a rate limit (error frames, then 1008), input
never echoed whole, non-standard or deeply nested JSON answered with an `error`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from server.config import Settings
from server.stream.hub import Hub
from tests.classroom.conftest import ClassRoom, class_env
from tests.conftest import start_server, stop_server
from tests.stream.conftest import Client, connect, job_spec, run, stream_url

BIG = 500_000  # bytes of one oversized message, as in the report


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def closed_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd else None


@pytest.fixture()
def classroom(tmp_path):
    """A class-mode server (no REST rate limit, so the stream's own limits are what hold)."""
    started = []

    def start(**env: str) -> ClassRoom:
        live = start_server(tmp_path / f"data{len(started)}",
                            env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0", **env))
        started.append(live)
        return ClassRoom(live)

    yield start
    for live in started:
        stop_server(live)


async def _flood(url: str, message: str, count: int, seconds: float) -> tuple[int, int | None]:
    """Send `message` up to `count` times without reading; (messages sent, close code)."""
    sent = 0
    # max_queue=None: the client library still reads the socket (and sees the close frame)
    # while this code reads nothing.
    async with websockets.connect(url, max_size=None, max_queue=None, open_timeout=10) as ws:
        try:
            deadline = time.monotonic() + seconds
            while sent < count and time.monotonic() < deadline:
                await ws.send(message)
                sent += 1
            await asyncio.wait_for(ws.wait_closed(), 0.5)
        except ConnectionClosed as exc:
            return sent, closed_code(exc)
        except TimeoutError:
            return sent, None
    return sent, None


def test_oversized_and_too_many_bad_messages_close_the_socket_and_memory_stays_flat(classroom):
    room = classroom()
    student = room.join("mallory")
    job = room.create(student)
    url = f"{room.live.ws_url}/api/jobs/{job['id']}/stream?token={student}"
    pid = room.live.process.pid
    before = rss_mb(pid)
    # 500 KB of bad JSON: over the 64 KiB cap, the socket is closed at the first one.
    big = '{"type": "control", "action": "' + "x" * BIG + '"}'
    sent, code = run(_flood(url, big, 2000, 10.0))
    assert code == 1009, (sent, code)
    assert sent < 50  # the server stopped reading at once; the client saw the close
    # Just under the cap and echo-bait, never read: refused past the rate, then closed (1008).
    bait = '{"type": "control", "action": "' + "x" * 60_000 + '"}'
    sent, code = run(_flood(url, bait, 2000, 15.0))
    assert code == 1008, (sent, code)
    assert sent < 2000
    after = rss_mb(pid)
    print(f"server RSS {before:.0f} MB -> {after:.0f} MB")
    assert after - before < 100, (before, after)
    # The student's stream works again after reconnecting.
    assert room.stream_outcome(job["id"], student) == "hello"


def test_a_client_that_never_reads_gets_short_errors_and_memory_stays_flat(classroom):
    """With the rate limit off, 2,000 echo-bait messages of 60 KB: each error is short and the
    waiting ones are bounded, so the server's memory does not follow the input."""
    room = classroom(PLAYGROUND_STREAM_MESSAGES_PER_SECOND="0",
                     PLAYGROUND_STREAM_MAX_VIOLATIONS="100000")
    student = room.join("eve")
    job = room.create(student, start=False)
    url = f"{room.live.ws_url}/api/jobs/{job['id']}/stream?token={student}"
    pid = room.live.process.pid
    bait = json.dumps({"type": "control", "action": "x" * 60_000})

    async def main():
        before = rss_mb(pid)
        # max_queue=1: the client library stops reading the socket too, as a frozen tab does.
        async with websockets.connect(url, max_size=None, max_queue=1) as ws:
            for _ in range(2000):
                await ws.send(bait)
            await ws.send(json.dumps({"type": "subscribe", "hz": 1, "id": "last"}))
            grown = rss_mb(pid) - before
            errors, longest = 0, 0
            while True:
                message = await asyncio.wait_for(ws.recv(), 20)
                if isinstance(message, bytes) or json.loads(message)["type"] == "hello":
                    continue
                longest = max(longest, len(message))
                body = json.loads(message)
                if body["type"] == "error":
                    errors += 1
                if body["type"] == "reply" and body["id"] == "last":
                    break
            return grown, errors, longest

    grown, errors, longest = run(main(), timeout=120)
    print(f"server RSS grew {grown:.0f} MB; {errors} errors, longest message {longest} chars")
    assert grown < 100, grown
    assert errors >= 1
    assert longest < 700  # nothing near the 60 KB input came back


def test_rate_limit_refuses_with_error_frames_then_closes_with_1008(server, jobs):
    job_id, _ = jobs(job_spec(start=False))

    async def main():
        # max_queue=None: the library reads every message at once (a reading client; one that
        # does not read may lose the tail once the server drops a rule-breaker's connection).
        async with websockets.connect(stream_url(server, job_id), max_size=2**24,
                                      max_queue=None) as ws:
            c = Client(ws, auto_ack=False)  # no sends after the close: only reads
            await c.recv()
            for i in range(400):
                try:
                    await c.send({"type": "subscribe", "hz": 2, "id": i})
                except ConnectionClosed:
                    break
            replies = refused = 0
            try:
                while True:
                    message = await c.recv(10)
                    if isinstance(message, dict) and message["type"] == "reply":
                        replies += 1
                    if isinstance(message, dict) and message["type"] == "error":
                        assert "too many messages" in message["message"]
                        refused += 1
            except ConnectionClosed as exc:
                return replies, refused, closed_code(exc), exc.rcvd.reason
        return replies, refused, None, None

    replies, refused, code, reason = run(main())
    assert code == 1008, (replies, refused, code)
    assert "Too many messages" in reason
    assert 100 <= replies < 200 and refused >= 1


@pytest.mark.parametrize("text", ['{"type": "subscribe", "id": NaN}',
                                  '{"type": "subscribe", "id": Infinity}',
                                  '{"type": "subscribe", "hz": -Infinity}',
                                  '{"type": "subscribe", "id": 1e400}',
                                  "[" * 5000 + "]" * 5000,
                                  '{"type": "subscribe", "id": ' + "[" * 40 + "]" * 40 + "}"])
def test_non_standard_or_deep_json_gets_an_error_and_the_socket_stays(server, jobs, text):
    job_id, _ = jobs(job_spec(start=False))

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            await c.send(text)
            error = await c.next("error")
            await c.send({"type": "subscribe", "hz": 3, "id": "after"})
            reply = await c.next("reply")
            return error, reply

    error, reply = run(main())
    assert error["id"] is None
    assert any(words in error["message"] for words in ("not a JSON value", "too large",
                                                       "nest at most 32", "id must be"))
    assert reply["id"] == "after" and reply["subscription"]["hz"] == 3.0


def test_input_is_never_echoed_whole(server, jobs):
    job_id, _ = jobs(job_spec(start=False))
    cases = [({"type": "control", "action": "x" * 10_000}, "control"),
             ({"type": "y" * 10_000}, "y" * 40 + "... (10000 characters)"),
             ({"type": "subscribe", "hz": "z" * 10_000}, "subscribe"),
             ({"type": "subscribe", "k" * 10_000: 1}, "subscribe"),
             ({"type": "set", "training": {"w" * 10_000: 1}}, "set"),
             ({"type": "subscribe", "id": "i" * 1000}, "subscribe")]

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.recv()
            out = []
            for body, request in cases:
                await c.send(body)
                out.append((await c.next("error"), request))
            return out

    for error, request in run(main()):
        assert len(json.dumps(error)) < 700, error
        assert error["request"] == request
    assert "id must be a number or a string of at most 100 characters" in error["message"]


def test_a_channel_that_is_not_pumped_holds_a_bounded_number_of_texts():
    hub = Hub(Settings(stream_max_queued_messages=50))

    async def main():
        channel = hub.register("j")
        for i in range(10_000):
            channel.push_text({"type": "error", "message": f"bad {i}", "request": None,
                               "id": None})
            if i % 100 == 0:
                channel.push_text({"type": "status", "status": "running", "epoch": i})
        assert len(channel.texts) == 50
        statuses = [m for m in channel.texts if m["type"] == "status"]
        assert statuses[-1]["epoch"] == 9900  # the newest status is always kept
        notice = channel.dropped_notice()
        assert notice["type"] == "error" and "were dropped" in notice["message"]
        assert channel.dropped_notice() is None

    asyncio.run(main())


def test_new_streams_past_the_connect_rate_are_closed_with_4429(tmp_path):
    live = start_server(tmp_path / "data", env={"PLAYGROUND_STREAM_CONNECTS_PER_SECOND": "0.05",
                                                "PLAYGROUND_STREAM_CONNECT_BURST": "3"})
    try:
        with live.client() as http:
            job_id = http.post("/api/jobs", json=job_spec(start=False)).json()["id"]

        async def outcome() -> tuple[object, float]:
            started = time.monotonic()
            try:
                async with connect(live, job_id) as ws:
                    return (await Client(ws).recv())["type"], time.monotonic() - started
            except ConnectionClosed as exc:
                return (closed_code(exc), exc.rcvd.reason), time.monotonic() - started

        async def main():
            return [await outcome() for _ in range(5)]

        results = run(main())
        assert [r[0] for r in results[:3]] == ["hello"] * 3
        for (code, reason), took in results[3:]:
            assert code == 4429 and reason.startswith("Too many new streams a second; wait")
            assert took >= 0.9  # held before the close: a loop cannot spin on refusals
    finally:
        stop_server(live)
