"""The async twins (playground.aio): submit, wait, stream and control from asyncio."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from playground import BadRequest, Hello, Metrics, NotFound, Snapshot, Status
from playground.aio import AsyncPlayground
from server.engine.samples import BOUNDARY
from tests.client.conftest import SPEC, spec


def test_two_jobs_at_once(server) -> None:
    async def main():
        async with AsyncPlayground(server.url) as pg:
            jobs = [await pg.submit(SPEC, name=f"async {k}") for k in range(2)]
            finals = await asyncio.gather(*(job.wait(timeout=60) for job in jobs))
            histories = [await job.metrics() for job in jobs]
            listed = {j.id for j in await pg.jobs()}
            for job in jobs:
                await job.delete()
            return jobs, finals, histories, listed

    jobs, finals, histories, listed = asyncio.run(main())
    assert [f["status"] for f in finals] == ["completed", "completed"]
    assert [f["name"] for f in finals] == ["async 0", "async 1"]
    assert [len(h) for h in histories] == [20, 20]
    assert {j.id for j in jobs} <= listed


def test_stream_control_and_errors(server) -> None:
    async def main():
        async with AsyncPlayground(server.url) as pg:
            # Started once the stream is open: 30 small epochs take milliseconds.
            job = await pg.submit(spec(epochs=30, batch_size=50), start=False)
            events = []
            async for event in job.stream(hz=30, timeout=60):
                events.append(event)
                if isinstance(event, Hello):
                    await job.resume()
            paused = await pg.submit(spec(epochs=None), start=False)
            stepped = await paused.step("epoch")
            patched = await paused.patch(learning_rate=0.02)
            stopped = await paused.stop()
            with pytest.raises(BadRequest) as bad:
                await pg.submit({**SPEC, "model": {"layers": [{"type": "dense"}]}})
            with pytest.raises(NotFound):
                await pg.job("nope")
            await paused.delete()
            with pytest.raises(NotFound) as gone:
                async for _ in paused.stream(timeout=10):
                    pass
            await job.delete()
            return events, stepped, patched, stopped, bad.value, gone.value

    events, stepped, patched, stopped, bad, gone = asyncio.run(main())
    assert isinstance(events[0], Hello)
    assert [p["epoch"] for e in events if isinstance(e, Metrics) for p in e.points][-1] == 30
    assert [e.status for e in events if isinstance(e, Status)][-1] == "completed"
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    assert len(snapshots) >= 2
    assert snapshots[-1]["output.boundary"].shape == (1, BOUNDARY, BOUNDARY)
    assert not np.array_equal(snapshots[0]["output.boundary"], snapshots[-1]["output.boundary"])
    assert stepped["progress"]["epoch"] == 1
    assert patched["spec"]["training"]["optimizer"]["learning_rate"] == 0.02
    assert stopped["status"] == "stopped"
    assert bad.status == 422 and bad.locations
    assert gone.status == 4404

