"""Soak: 30 stream clients against one server for a while; does anything grow or stall?

Starts `python -m server` on a loopback port in class mode (its own temporary data
directory); 30 students join, each creates a job that trains until stopped and watches it with
one websocket client for `--seconds` (default 600): `--frozen` clients read their hello and
then nothing (when the server closes one, it comes back and freezes again), `--reconnecting`
ones open a stream, read the hello and close it, in a loop, and the rest read every message and
acknowledge every frame. Beside them the teacher reads GET /api/jobs/{id} five times a second.
Every `--every` seconds it prints the server's RSS, the REST latency (p50, p95), the jobs'
training steps/s (summed) and the clients' counts; at the end a summary.
Usage: .venv/bin/python bench/soak.py [--seconds 600] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import live_server  # bench/live_server.py, beside this script
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"dataset": {"name": "spiral", "params": {"samples": 500}},
        "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                             {"type": "dense", "units": 8, "activation": "tanh"}]},
        "training": {"epochs": None, "batch_size": 10}}
CLIENT_ERRORS = (ConnectionClosed, InvalidStatus, OSError, TimeoutError)
PASSWORD, CODE = "soak-teacher", "SOAK42"
CLASS_ENV = {"PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_TEACHER_PASSWORD": PASSWORD,
             "PLAYGROUND_CLASS_CODE": CODE}


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    return live_server.start_server(data_dir, CLASS_ENV)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counts:
    def __init__(self) -> None:
        self.frames = self.hellos = self.reconnects = self.closed_by_server = 0
        self.latencies: list[float] = []


async def normal(url: str, counts: Counts, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with websockets.connect(url, max_size=None) as ws:
                counts.hellos += 1
                while not stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    if isinstance(message, bytes):
                        counts.frames += 1
                        await ws.send(json.dumps({"type": "ack"}))
        except CLIENT_ERRORS:
            counts.closed_by_server += 1
            await asyncio.sleep(1.0)


async def frozen(url: str, counts: Counts, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            # max_queue=1: the library stops reading the socket too, as a frozen tab does.
            async with websockets.connect(url, max_size=None, max_queue=1) as ws:
                await ws.recv()  # hello, then nothing
                counts.hellos += 1
                while not stop.is_set():
                    await asyncio.sleep(0.5)
                    if ws.protocol.state.name != "OPEN":
                        break
        except CLIENT_ERRORS:
            pass
        counts.closed_by_server += 0 if stop.is_set() else 1
        await asyncio.sleep(1.0)


async def reconnecting(url: str, counts: Counts, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with websockets.connect(url, max_size=None) as ws:
                await asyncio.wait_for(ws.recv(), 10)
                counts.reconnects += 1
        except CLIENT_ERRORS:
            await asyncio.sleep(0.05)


async def poller(base: str, jobs: list[str], counts: Counts, stop: asyncio.Event,
                 teacher: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {teacher}"}) as http:
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            r = await http.get(f"/api/jobs/{jobs[i % len(jobs)]}")
            if r.status_code == 200:
                counts.latencies.append(time.perf_counter() - started)
            i += 1
            await asyncio.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def soak(args, proc: subprocess.Popen, base: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/api/class/teacher/login", json={"password": PASSWORD})
        r.raise_for_status()
        teacher = r.json()["token"]
        jobs, tokens = [], []
        for i in range(args.clients):
            r = await http.post("/api/class/join", json={"code": CODE, "name": f"student{i}"})
            r.raise_for_status()
            tokens.append(r.json()["token"])
            r = await http.post("/api/jobs", json=SPEC,
                                headers={"Authorization": f"Bearer {tokens[-1]}"})
            r.raise_for_status()
            jobs.append(r.json()["id"])
    ws_base = base.replace("http://", "ws://")
    urls = [f"{ws_base}/api/jobs/{job}/stream?token={token}"
            for job, token in zip(jobs, tokens, strict=True)]
    counts, stop = Counts(), asyncio.Event()
    kinds = ([frozen] * args.frozen + [reconnecting] * args.reconnecting
             + [normal] * (args.clients - args.frozen - args.reconnecting))
    tasks = [asyncio.create_task(kind(url, counts, stop)) for kind, url in zip(kinds, urls,
                                                                               strict=True)]
    tasks.append(asyncio.create_task(poller(base, jobs, counts, stop, teacher)))
    rows: list[dict] = []

    async def steps() -> int:
        async with httpx.AsyncClient(base_url=base, timeout=30,
                                     headers={"Authorization": f"Bearer {teacher}"}) as http:
            listed = (await http.get("/api/jobs")).json()["jobs"]
        return sum(j["progress"]["step"] for j in listed if j["id"] in jobs)

    start = time.monotonic()
    last_steps, last_t = await steps(), start
    print(f"{'t (s)':>6} {'RSS MB':>7} {'REST p50 ms':>11} {'p95 ms':>7} {'steps/s':>8} "
          f"{'frames':>7} {'hellos':>6} {'reconn.':>7} {'closed':>6}")
    while time.monotonic() - start < args.seconds:
        await asyncio.sleep(min(args.every, args.seconds - (time.monotonic() - start)))
        now = time.monotonic()
        total = await steps()
        lat, counts.latencies = counts.latencies, []
        row = {"t": now - start, "rss": rss_mb(proc.pid), "p50": percentile(lat, 0.5) * 1e3,
               "p95": percentile(lat, 0.95) * 1e3, "steps": (total - last_steps) / (now - last_t),
               "frames": counts.frames, "hellos": counts.hellos,
               "reconnects": counts.reconnects, "closed": counts.closed_by_server}
        rows.append(row)
        last_steps, last_t = total, now
        print(f"{row['t']:6.0f} {row['rss']:7.0f} {row['p50']:11.1f} {row['p95']:7.1f} "
              f"{row['steps']:8.0f} {row['frames']:7d} {row['hellos']:6d} "
              f"{row['reconnects']:7d} {row['closed']:6d}", flush=True)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--frozen", type=int, default=5)
    parser.add_argument("--reconnecting", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        try:
            started_rss = rss_mb(proc.pid)
            rows = asyncio.run(soak(args, proc, base))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if not rows:
        return
    print(f"\n{args.clients} students, one job and one client each ({args.frozen} frozen, "
          f"{args.reconnecting} reconnecting), {args.seconds:.0f} s")
    print(f"RSS: {started_rss:.0f} MB at start (no jobs), {rows[0]['rss']:.0f} MB after the "
          f"first {rows[0]['t']:.0f} s, {max(r['rss'] for r in rows):.0f} MB at most, "
          f"{rows[-1]['rss']:.0f} MB at the end")
    print(f"REST GET /api/jobs/{{id}}: p95 {statistics.median(r['p95'] for r in rows):.1f} ms "
          f"(median of the intervals), worst interval {max(r['p95'] for r in rows):.1f} ms")
    print(f"training: {statistics.mean(r['steps'] for r in rows):.0f} steps/s summed over the "
          f"jobs (min interval {min(r['steps'] for r in rows):.0f})")


if __name__ == "__main__":
    main()
