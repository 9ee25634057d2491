"""Async twins of the client, for asyncio programs and notebooks that run several jobs at once:

    async with AsyncPlayground() as pg:
        jobs = [await pg.submit(spec) for spec in specs]
        finals = await asyncio.gather(*(job.wait() for job in jobs))
        async for event in jobs[0].stream(): ...

`AsyncPlayground`: submit, job, jobs, health, sweep, sweeps, open_sweep (`AsyncSweep`,
playground/sweeps.py). `AsyncJob`: refresh, wait, metrics, control
(pause, resume, stop, step, reset), patch, delete, stream. Same errors as the sync client.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from playground import events, rest
from playground.client import to_frame
from playground.errors import JobFailed, Unreachable
from playground.frames import Snapshot
from playground.sweeps import AsyncSweep, sweep_body


class AsyncPlayground:
    """The async `Playground` (same arguments)."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0) -> None:
        self.url = rest.base_url(url)
        self.token = rest.token_of(token)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)

    async def __aenter__(self) -> AsyncPlayground:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, token: str | None = None,
                      **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, headers=rest.headers(
                token or self.token), **kwargs)
        except httpx.TransportError as exc:
            raise rest.unreachable(self.url, exc) from None
        return rest.check(response)

    async def health(self) -> dict:
        return await self.request("GET", "/api/health")

    async def submit(self, spec: dict | str | os.PathLike, *, name: str | None = None,
                     start: bool | None = None) -> AsyncJob:
        body = dict(rest.spec_of(spec))
        if name is not None:
            body["name"] = name
        if start is not None:
            body["start"] = start
        info = await self.request("POST", "/api/jobs", json=body)
        if self.token is None:
            self.token = info.get("token")
        return AsyncJob(self, info["id"], info.get("token"), info)

    async def jobs(self) -> list[AsyncJob]:
        answer = await self.request("GET", "/api/jobs")
        return [AsyncJob(self, j["id"], None, j) for j in answer["jobs"]]

    async def job(self, job_id: str, token: str | None = None) -> AsyncJob:
        job = AsyncJob(self, job_id, token)
        await job.refresh()
        return job

    async def sweep(self, base: dict | str | os.PathLike, axes: list[dict], mode: str = "grid",
                    count: int | None = None) -> AsyncSweep:
        """As `Playground.sweep`."""
        body = sweep_body(rest.spec_of(base), axes, mode, count)
        info = await self.request("POST", "/api/sweeps", json=body)
        if self.token is None:
            self.token = info.get("token")
        return AsyncSweep(self, info["id"], info.get("token"), info["jobs"], AsyncJob, info)

    async def sweeps(self) -> list[AsyncSweep]:
        answer = await self.request("GET", "/api/sweeps")
        return [AsyncSweep(self, s["id"], None, s["jobs"], AsyncJob, s) for s in answer["sweeps"]]

    async def open_sweep(self, sweep_id: str, token: str | None = None) -> AsyncSweep:
        sweep = AsyncSweep(self, sweep_id, token, [], AsyncJob)
        info = await sweep.refresh()
        sweep.jobs = [AsyncJob(self, job_id, sweep.token) for job_id in info["jobs"]]
        return sweep


class AsyncJob(rest.JobHandle):
    """The async `Job`."""

    pg: AsyncPlayground

    async def _request(self, method: str, suffix: str = "", **kwargs: Any) -> Any:
        return await self.pg.request(method, rest.job_path(self.id, suffix), token=self.token,
                                     **kwargs)

    async def refresh(self) -> dict:
        info = await self._request("GET")
        self.info = info
        return info

    async def wait(self, timeout: float | None = None, *, poll: float = 0.5,
                   raise_on_failure: bool = False) -> dict:
        info = await rest.wait_until_async(self.refresh, rest.ended, timeout, poll,
                                           f"Job {self.id}")
        if raise_on_failure and info["status"] != "completed":
            raise JobFailed(self.id, info["status"], info.get("error") or info.get("stop_reason"))
        return info

    async def metrics(self, *, since: int | None = None, as_frame: bool = False) -> Any:
        records: list[dict] = []
        cursor = since
        while True:
            params = {"limit": 100_000, **({"since": cursor} if cursor is not None else {})}
            page = await self._request("GET", "/metrics", params=params)
            records.extend(page["history"])
            if (cursor := page.get("next_since")) is None:
                break
        return to_frame(records) if as_frame else records

    async def control(self, action: str, unit: str | None = None) -> dict:
        body = {"action": action, **({"unit": unit} if unit else {})}
        self.info = await self._request("POST", "/control", json=body)
        return self.info

    async def pause(self) -> dict:
        return await self.control("pause")

    async def resume(self) -> dict:
        return await self.control("resume")

    async def stop(self) -> dict:
        return await self.control("stop")

    async def reset(self) -> dict:
        return await self.control("reset")

    async def step(self, unit: str | None = None) -> dict:
        return await self.control("step", unit)

    async def patch(self, body: dict | None = None, **settings: Any) -> dict:
        self.info = await self._request("PATCH", json=rest.patch_body(body, **settings))
        return self.info

    async def delete(self) -> None:
        await self._request("DELETE")

    async def stream(self, *, snapshots: bool = True, hz: float | None = None,
                     timeout: float | None = None, linger: float = 0.5,
                     until_done: bool = True) -> AsyncIterator[events.Event]:
        """As `Job.stream`: events until the job ends; each snapshot is acked when the next
        event is asked for."""
        url = rest.ws_url(self.pg.url, self.id, self.token)
        try:
            ws = await connect(url, open_timeout=15, close_timeout=2, max_size=None,
                               user_agent_header=rest.USER_AGENT)
        except (OSError, InvalidURI, InvalidStatus, TimeoutError) as exc:
            raise Unreachable(self.pg.url, str(exc) or type(exc).__name__) from None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        ended_at = None
        try:
            while True:
                now = loop.time()
                ends = [d for d in (deadline, None if ended_at is None else ended_at + linger)
                        if d is not None]
                if ends and now >= min(ends):
                    return
                try:
                    message = await asyncio.wait_for(ws.recv(), min(ends) - now if ends else None)
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    if ended_at is not None:
                        return
                    code = exc.rcvd.code if exc.rcvd else None
                    raise events.closed_error(code, exc.rcvd.reason if exc.rcvd else None,
                                              self.id) from None
                if isinstance(message, bytes):
                    frame = Snapshot.from_bytes(message)
                    if snapshots:
                        yield frame
                    await ws.send(json.dumps({"type": "ack"}))
                    continue
                event = events.parse(message)
                if event is None:
                    continue
                if isinstance(event, events.Hello) and (not snapshots or hz is not None):
                    await ws.send(json.dumps({"type": "subscribe", "snapshots": snapshots,
                                              **({"hz": hz} if hz is not None else {})}))
                yield event
                if until_done and ended_at is None and events.terminal(event):
                    ended_at = loop.time()
        finally:
            await ws.close()
