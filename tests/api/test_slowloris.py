"""Slow clients cannot hold the server (issue 12, item 8): a live server on loopback closes
connections whose headers or body do not arrive in time (408), caps connections (503 past the
cap) and still answers a normal request once the slow ones are gone."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.conftest import start_server, stop_server

HEADER_S = 2.0
BODY_S = 3.0


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("slow"), env={
        "PLAYGROUND_HEADER_TIMEOUT_SECONDS": str(HEADER_S),
        "PLAYGROUND_BODY_TIMEOUT_SECONDS": str(BODY_S),
        "PLAYGROUND_KEEP_ALIVE_SECONDS": "1",
        "PLAYGROUND_MAX_CONNECTIONS": "200",
    })
    yield server
    stop_server(server)


def half_open(port: int, n: int, text: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(text)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing (b"" for nothing), or None if still open."""
    s.settimeout(within)
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
        return got
    except TimeoutError:
        return None
    except ConnectionResetError:
        return got


def test_half_open_connections_are_closed_and_the_server_still_answers(live):
    started = time.monotonic()
    socks = half_open(live.port, 240, b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    try:
        # Past the cap (200 connections) a request is refused with 503, not queued for ever.
        r = httpx.get(live.url + "/api/health", timeout=10)
        assert r.status_code == 503, r.text
        outcomes = [closed_by_server(s, within=HEADER_S + 5) for s in socks]
        elapsed = time.monotonic() - started
        assert outcomes.count(None) == 0, f"{outcomes.count(None)} of 240 still open"
        assert all(o.startswith(b"HTTP/1.1 408 ") for o in outcomes), set(outcomes)
        assert elapsed < HEADER_S + 6, elapsed
        r = httpx.get(live.url + "/api/health", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
    finally:
        for s in socks:
            s.close()


def test_a_connection_that_sends_nothing_is_closed(live):
    (s,) = half_open(live.port, 1, b"")
    try:
        assert closed_by_server(s, within=HEADER_S + 5) is not None
    finally:
        s.close()


def test_a_body_that_never_ends_gets_408(live):
    (s,) = half_open(live.port, 1, b"POST /api/models/check HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"dat")
    try:
        started = time.monotonic()
        got = closed_by_server(s, within=BODY_S + 5)
        assert got is not None and got.startswith(b"HTTP/1.1 408 "), got
        assert BODY_S - 0.5 < time.monotonic() - started < BODY_S + 4
    finally:
        s.close()


def test_slow_but_steady_headers_are_still_cut_off(live):
    """One header byte a second keeps a connection busy but never completes: the deadline is
    for the whole head, not for silence."""
    s = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    try:
        started = time.monotonic()
        closed = False
        for byte in b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: aaaaaaaaaaaaaaaa":
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.25)
            if time.monotonic() - started > HEADER_S + 3:
                break
        assert closed or closed_by_server(s, within=2) is not None
        assert time.monotonic() - started < HEADER_S + 4
    finally:
        s.close()


def test_normal_requests_and_keep_alive_are_unaffected(live):
    with httpx.Client(base_url=live.url, timeout=10) as c:
        for _ in range(3):
            assert c.get("/api/health").status_code == 200
            time.sleep(0.3)  # kept alive between requests, under keep_alive_seconds
        big = c.post("/api/models/check", json={
            "dataset": {"name": "xor"}, "model": {"layers": [{"type": "dense", "units": 4}]}})
        assert big.status_code == 200, big.text


def test_a_head_growing_past_max_header_bytes_gets_400(live):
    """Header bytes buffered without an end (max_header_bytes, 16384) are refused at once,
    before the header deadline: a slow client cannot make the server hold megabytes."""
    (s,) = half_open(live.port, 1, b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                     + b"a" * 20000)
    try:
        got = closed_by_server(s, within=HEADER_S / 2)
        assert got is not None and got.startswith(b"HTTP/1.1 400 "), got
    finally:
        s.close()
