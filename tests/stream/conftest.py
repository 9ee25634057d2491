"""Helpers for the stream tests: jobs made over REST, a websocket client that sorts messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import websockets

from server.stream import wire

XOR = {"dataset": {"name": "xor", "params": {"samples": 200}},
       "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                            {"type": "dense", "units": 3, "activation": "tanh"}]},
       "training": {"epochs": None}}


def job_spec(start: bool = True, **training) -> dict:
    spec = json.loads(json.dumps(XOR))
    spec["training"].update(training)
    spec["start"] = start
    return spec


@pytest.fixture()
def jobs(server) -> Iterator:
    """`jobs(spec) -> (id, token)`; every job made is deleted after the test (the per-caller
    limit of running jobs would stop later tests otherwise)."""
    made: list[str] = []
    with server.client() as http:
        def create(spec: dict | None = None) -> tuple[str, str]:
            r = http.post("/api/jobs", json=spec or job_spec())
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
            return r.json()["id"], r.json()["token"]
        yield create
        for job_id in made:
            http.delete(f"/api/jobs/{job_id}")


class Client:
    """A websocket client of one job's stream; `next(type)` waits for a message of that type,
    acknowledging every snapshot unless `auto_ack` is off. A binary message is a `BINARY`
    (`next("snapshot")`), decoded by `decode`."""

    BINARY = "snapshot"

    def __init__(self, ws, auto_ack: bool = True) -> None:
        self.ws = ws
        self.auto_ack = auto_ack
        self.log: list[dict] = []  # every text message, in order
        self.unread: list[dict] = []  # text messages no `next` has returned yet
        self.frames: list[tuple[dict, dict]] = []  # decoded snapshots
        self.arrival: list[float] = []

    async def recv(self, timeout: float = 10.0):
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(message, bytes):
            decoded = self.decode(message)
            if self.auto_ack:
                await self.ws.send(json.dumps({"type": "ack"}))
            return decoded
        body = json.loads(message)
        self.log.append(body)
        self.unread.append(body)
        return body

    def decode(self, message: bytes) -> tuple[dict, dict]:
        header, arrays = wire.decode(message)
        self.frames.append((header, arrays))
        self.arrival.append(time.time())
        return header, arrays

    async def next(self, kind: str, timeout: float = 15.0, where=lambda m: True):
        for message in self.unread:
            if message["type"] == kind and where(message):
                self.unread.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                message = await self.recv(left)
            except TimeoutError:
                raise TimeoutError(f"no {kind} message in {timeout} s; the last texts were "
                                   f"{self.log[-5:]}") from None
            if kind == self.BINARY and not isinstance(message, dict) and where(message):
                return message
            if isinstance(message, dict) and message["type"] == kind and where(message):
                self.unread.remove(message)
                return message

    async def send(self, body: dict | str) -> None:
        await self.ws.send(body if isinstance(body, str) else json.dumps(body))

    def points(self) -> list[dict]:
        return [p for m in self.log if m["type"] == "metrics" for p in m["points"]]


def stream_url(server, job_id: str, token: str | None = None) -> str:
    url = f"{server.ws_url}/api/jobs/{job_id}/stream"
    return url + (f"?token={token}" if token else "")


def connect(server, job_id: str, token: str | None = None):
    return websockets.connect(stream_url(server, job_id, token), max_size=2**24)


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))
