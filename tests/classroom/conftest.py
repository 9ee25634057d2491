"""Fixtures for the classroom tests: class-mode servers on loopback, students and a teacher.

`ClassRoom` wraps a live server: `join(name)` gives a student's token, `teacher()` a teacher
session, `create(token)` a small job; `ws(...)` opens a job's stream and `handshake(...)` sends
a raw websocket handshake with any Host and Origin (a real browser cannot forge them; a test can).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import LiveServer, start_server, stop_server

PASSWORD = "correct horse"
CODE = "ROOM42"
SPEC = {"dataset": {"name": "xor", "params": {"samples": 200}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": {"epochs": None}}


@dataclass
class ClassRoom:
    live: LiveServer

    @property
    def url(self) -> str:
        return self.live.url

    def http(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers, **kwargs)

    def join(self, name: str) -> str:
        with self.http() as c:
            r = c.post("/api/class/join", json={"code": CODE, "name": name})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def teacher(self) -> str:
        with self.http() as c:
            r = c.post("/api/class/teacher/login", json={"password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def create(self, token: str, **changes) -> dict:
        with self.http(token) as c:
            r = c.post("/api/jobs", json={**SPEC, **changes})
        assert r.status_code == 201, r.text
        return r.json()

    def ws(self, job_id: str, token: str | None = None, headers: dict | None = None):
        query = f"?token={token}" if token else ""
        return connect(f"{self.live.ws_url}/api/jobs/{job_id}/stream{query}",
                       additional_headers=headers or {}, open_timeout=10, close_timeout=2,
                       max_size=None)

    def stream_outcome(self, job_id: str, token: str | None = None,
                       headers: dict | None = None) -> str | int:
        """'hello' when the stream says hello, else the close code it ended with."""
        try:
            with self.ws(job_id, token, headers) as ws:
                while True:
                    message = ws.recv(timeout=15)
                    if isinstance(message, str) and json.loads(message)["type"] == "hello":
                        return "hello"
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006

    def handshake(self, path: str, headers: dict[str, str]) -> int:
        """The HTTP status a raw websocket handshake gets (101: accepted)."""
        return raw_handshake(self.live.port, path, headers)


def raw_handshake(port: int, path: str, headers: dict[str, str]) -> int:
    lines = [f"GET {path} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    headers = {"Host": f"127.0.0.1:{port}", **headers}
    lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def class_env(**extra: str) -> dict[str, str]:
    return {"PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_TEACHER_PASSWORD": PASSWORD,
            "PLAYGROUND_CLASS_CODE": CODE, **extra}


@contextlib.contextmanager
def roomy_class(data_dir: Path) -> Iterator[ClassRoom]:
    """A class-mode server without a request rate limit (tests make many calls quickly),
    stopped on leaving."""
    live = start_server(data_dir, env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    try:
        yield ClassRoom(live)
    finally:
        stop_server(live)


@pytest.fixture(scope="package")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassRoom]:
    """A class-mode server with roomy limits, shared by the access and origin tests."""
    with roomy_class(tmp_path_factory.mktemp("class") / "data") as made:
        yield made


@pytest.fixture()
def tmp_room(tmp_path: Path):
    """Start a class-mode server with the given extra env; stopped after the test."""
    started: list[LiveServer] = []

    def start(**env: str) -> ClassRoom:
        live = start_server(tmp_path / f"data{len(started)}", env=class_env(**env))
        started.append(live)
        return ClassRoom(live)

    yield start
    for live in started:
        stop_server(live)


CHROMIUM = "/usr/bin/chromium"
BROWSER_TESTS = [pytest.mark.browser,
                 pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no system Chromium")]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the teacher-page tests (Debian's; Playwright cannot fetch its own)."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()
