"""One client must not stall training for everyone (issue 12): a job trains on a live server
while other clients flood it, and it keeps at least half its steps a second during each flood:
30 clients reconnecting to another job's stream in a loop, `step` messages flooding another
job, and a loop of ONNX downloads of a large model. Each flood lasts about 3 s (a try is
repeated, at most 3 times, when the shared machine's load spoils it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import start_server, stop_server
from tests.engine.common import create, dense, get, xor_spec

LARGE = {"dataset": {"name": "digits"},
         "model": {"layers": [{"type": "flatten"}, dense(2048, "relu"), dense(2048, "relu")]},
         "training": {"epochs": None}, "start": False}  # about 4.3M parameters


def steps_per_second(http: httpx.Client, job_id: str, seconds: float = 2.0) -> float:
    start, t0 = get(http, job_id)["progress"]["step"], time.monotonic()
    time.sleep(seconds)
    return (get(http, job_id)["progress"]["step"] - start) / (time.monotonic() - t0)


class Flood:
    """Runs `make(stop) -> coroutine` on its own event loop in a thread until stopped."""

    def __init__(self, make: Callable[[threading.Event], object]) -> None:
        self.stop = threading.Event()
        self.count = [0]
        self.thread = threading.Thread(target=lambda: asyncio.run(make(self.stop, self.count)))

    def __enter__(self) -> Flood:
        self.thread.start()
        time.sleep(0.5)  # let it get going
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)


def reconnecting(url: str, clients: int = 30):
    async def one(stop, count):
        while not stop.is_set():
            try:
                async with websockets.connect(url, max_size=None, open_timeout=10) as ws:
                    await asyncio.wait_for(ws.recv(), 10)  # hello
                    count[0] += 1
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError):
                await asyncio.sleep(0.05)

    async def main(stop, count):
        await asyncio.gather(*(one(stop, count) for _ in range(clients)))

    return main


def stepping(url: str, sockets: int = 4):
    async def one(stop, count):
        while not stop.is_set():
            try:
                async with websockets.connect(url, max_size=None, max_queue=None) as ws:
                    while not stop.is_set():
                        await ws.send(json.dumps({"type": "control", "action": "step"}))
                        count[0] += 1
                        await asyncio.sleep(0)
            except (ConnectionClosed, OSError):
                await asyncio.sleep(0.05)

    async def main(stop, count):
        await asyncio.gather(*(one(stop, count) for _ in range(sockets)))

    return main


def exporting(base: str, job_id: str, loops: int = 3):
    async def one(stop, count):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while not stop.is_set():
                r = await http.get(f"/api/jobs/{job_id}/model", params={"format": "onnx"})
                assert r.status_code in (200, 503), r.text
                count[0] += r.status_code == 200
                if r.status_code == 503:
                    await asyncio.sleep(0.1)

    async def main(stop, count):
        await asyncio.gather(*(one(stop, count) for _ in range(loops)))

    return main


def test_a_training_job_keeps_half_its_speed_during_each_flood(fresh_server):
    live = fresh_server
    with live.client() as http:
        trained = create(http, xor_spec(epochs=None))["id"]
        other = create(http, {**xor_spec(epochs=None), "start": False})["id"]
        large = create(http, LARGE)["id"]
        r = http.get(f"/api/jobs/{large}/model", params={"format": "onnx"}, timeout=120)
        assert r.status_code == 200, r.text  # also starts the converter process
        stream = f"{live.ws_url}/api/jobs/{other}/stream"
        floods = {"reconnecting": reconnecting(stream), "stepping": stepping(stream),
                  "exporting": exporting(live.url, large)}
        ratios: dict[str, list[float]] = {}
        served = {}
        for name, make in floods.items():
            # This machine is shared: a try whose baseline or flood met someone else's burst
            # of work is tried again (at most 3 tries); a server that gives a flood the
            # engine fails every try (measured before issue 12: 0.0-0.2x).
            ratios[name] = []
            while len(ratios[name]) < 3 and max(ratios[name], default=0) < 0.5:
                alone = steps_per_second(http, trained)
                with Flood(make) as flood:
                    during = steps_per_second(http, trained, 2.5)
                ratios[name].append(during / alone)
                served[name] = served.get(name, 0) + flood.count[0]
        print("steps/s during / alone:", ratios, "flood sizes:", served)
        assert all(n > 0 for n in served.values()), served  # every flood was served
        assert all(max(r) >= 0.5 for r in ratios.values()), (ratios, served)
        assert get(http, trained)["status"] == "running"


def test_downloads_past_the_export_places_get_503_with_retry_after(tmp_path):
    live = start_server(tmp_path / "data", env={"PLAYGROUND_MAX_CONCURRENT_EXPORTS": "1",
                                                "PLAYGROUND_MAX_QUEUED_EXPORTS": "0"})
    try:
        with live.client() as http:
            large = create(http, LARGE)["id"]

            def download(_: int) -> httpx.Response:
                with live.client() as client:
                    return client.get(f"/api/jobs/{large}/model", params={"format": "onnx"},
                                      timeout=120)

            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(download, range(4)))
            codes = sorted(r.status_code for r in answers)
            assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
            busy = next(r for r in answers if r.status_code == 503)
            assert busy.headers["retry-after"] == "5"
            assert busy.json()["detail"] == (
                "1 model downloads are being prepared, the most this server does at once; "
                "try again in 5 seconds.")
            # once they are done, a download goes through again
            again = http.get(f"/api/jobs/{large}/model", params={"format": "safetensors"})
            assert again.status_code == 200 and len(again.content) > 4_000_000
    finally:
        stop_server(live)
