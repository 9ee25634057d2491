"""Routes await the engine without holding a threadpool thread, and errors.py's one table
renders the domain errors for REST and the stream (issue 13)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from server.api import errors
from server.config import Settings
from server.engine.engine import Conflict, JobNotFound
from server.main import create_app
from tests.engine.common import xor_spec

REQUESTS = 6
THREADS = 2


def _set_threads(total: int) -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = total


def test_requests_waiting_on_a_busy_engine_leave_threads_for_the_others(tmp_path, monkeypatch):
    with TestClient(create_app(Settings(data_dir=tmp_path)),
                    base_url="http://127.0.0.1") as client:
        job = client.post("/api/jobs", json={**xor_spec(), "start": False}).json()
        pending: list[Future] = []
        lock = threading.Lock()

        def busy_control(job_id, action, unit="batch"):  # an engine that has not answered yet
            future: Future = Future()
            with lock:
                pending.append(future)
            return future

        monkeypatch.setattr(client.app.state.engine, "control", busy_control)
        client.portal.call(_set_threads, THREADS)
        try:
            answers: list[int] = []
            waiting = [threading.Thread(target=lambda: answers.append(client.post(
                f"/api/jobs/{job['id']}/control", json={"action": "step"}).status_code))
                for _ in range(REQUESTS)]
            for thread in waiting:
                thread.start()
            deadline = time.monotonic() + 20
            while len(pending) < REQUESTS and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(pending) == REQUESTS  # every request reached the engine: none queued
            listed: list[int] = []
            reader = threading.Thread(target=lambda: listed.append(
                client.get("/api/jobs").status_code))
            reader.start()
            reader.join(timeout=10)
            assert listed == [200]  # a thread was free while six requests waited
            for future in pending:
                future.set_result(None)
            for thread in waiting:
                thread.join(timeout=20)
            assert answers == [200] * REQUESTS
        finally:
            client.portal.call(_set_threads, 40)


def test_engine_answer_times_out_without_cancelling_the_command():
    async def main():
        future: Future = Future()
        with pytest.raises(errors.EngineSlow):
            await errors.engine_answer(future, timeout=0.05)
        assert not future.cancelled()  # the engine still runs it
        answered: Future = Future()
        threading.Timer(0.05, answered.set_result, ("done",)).start()
        assert await errors.engine_answer(answered, timeout=5) == "done"
        failed: Future = Future()
        failed.set_exception(Conflict("The job is already stopped."))
        with pytest.raises(Conflict):
            await errors.engine_answer(failed)

    asyncio.run(main())


def test_one_table_gives_the_status_the_body_and_the_close_code():
    cases = [
        (JobNotFound("abc"), 404, "Job not found", 4404, "Job not found"),
        (errors.TokenNeeded(), 403, errors.TOKEN_NEEDED, 4401, errors.STREAM_TOKEN_NEEDED),
        (errors.NotYours(), 403, errors.NOT_YOURS, 4403, errors.NOT_YOURS),
        (Conflict("Already stopped."), 409, "Already stopped.", 4409, "Already stopped."),
        (errors.EngineSlow(), 503, errors.ENGINE_BUSY, 1013, errors.ENGINE_BUSY),
    ]
    for exc, status, detail, code, reason in cases:
        http = errors.http_error(exc)
        assert (http.status_code, http.detail) == (status, detail)
        assert errors.close_for(exc) == (code, reason)
