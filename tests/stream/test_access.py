"""Tokens and timeouts on a server that is not open: 4401, 4403, the right token, 4408."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import websockets

from tests.conftest import LiveServer, start_server, stop_server
from tests.stream.conftest import Client, connect, job_spec, run

TEACHER = {"Authorization": "Bearer teacher-secret"}  # jobs are made by the teacher here


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("closed-server"), env={
        "PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_CLIENT_TIMEOUT_SECONDS": "2",
        "PLAYGROUND_TEACHER_TOKEN": "teacher-secret"})
    yield live
    stop_server(live)


async def closed_with(server, job_id: str, token: str | None) -> tuple[int, str]:
    async with connect(server, job_id, token) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code, exc.rcvd.reason
    raise AssertionError("the socket stayed open")


def test_tokens_decide_who_may_watch(closed_server):
    with closed_server.client(headers=TEACHER) as http:
        r = http.post("/api/jobs", json=job_spec(start=False))
        assert r.status_code == 201, r.text
        job_id, token = r.json()["id"], r.json()["token"]

    async def main():
        code, reason = await closed_with(closed_server, job_id, None)
        assert code == 4401 and "?token=" in reason
        code, reason = await closed_with(closed_server, job_id, "wrong-token")
        assert code == 4403 and reason
        assert (await closed_with(closed_server, "nope", token))[0] == 4404
        for good in (token, "teacher-secret"):
            async with connect(closed_server, job_id, good) as ws:
                hello = await Client(ws).recv()
                assert hello["type"] == "hello" and hello["job_id"] == job_id

    run(main())


def test_a_client_that_never_acks_is_closed_with_4408(closed_server):
    with closed_server.client(headers=TEACHER) as http:
        r = http.post("/api/jobs", json=job_spec())
        job_id, token = r.json()["id"], r.json()["token"]

    async def main():
        async with connect(closed_server, job_id, token) as frozen_ws, \
                connect(closed_server, job_id, token) as ws:
            frozen, healthy = Client(frozen_ws, auto_ack=False), Client(ws)
            await frozen.next("snapshot")
            await healthy.next("snapshot")
            loop = asyncio.get_running_loop()
            start = loop.time()
            try:
                while True:
                    await frozen.recv(timeout=10)
            except websockets.ConnectionClosed as exc:
                assert exc.rcvd.code == 4408 and "ack" in exc.rcvd.reason
            assert loop.time() - start < 8
            before = len(healthy.frames)
            await healthy.next("snapshot")
            await healthy.next("snapshot")
            assert len(healthy.frames) >= before + 2  # the other client goes on

    run(main())
    with closed_server.client(headers=TEACHER) as http:
        http.delete(f"/api/jobs/{job_id}")
