"""Stream benchmark: the streaming tax on training, and 30 clients with 2 frozen or slow ones.

Starts `python -m server` on a loopback port (its own temporary data directory), then prints,
from one run:
  1. training steps/s of one job with no subscriber and with one subscriber at 10 Hz (the
     ratio is the streaming tax; alternated A/B/A/B so a noisy neighbour hits both);
  2. 30 jobs, one client each; one client frozen (reads nothing after its first frame), one
     slow (300 ms per frame before its ack): frames/s and frame age p50/p95 of the 28 healthy
     clients, steps/s per job, and the slow and frozen clients' fate;
  3. bytes and compute + encode time of one frame, measured in this process.
Usage: .venv/bin/python bench/stream_bench.py [--seconds 5]. Bounded: about 1-2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import live_server  # bench/live_server.py, beside this script
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.stream import wire  # noqa: E402

SPEC = {"dataset": {"name": "spiral", "params": {"samples": 500}},
        "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                             {"type": "dense", "units": 8, "activation": "tanh"}]},
        "training": {"epochs": None, "batch_size": 10}}


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    return live_server.start_server(data_dir, {
        "PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT": "100", "PLAYGROUND_MAX_SOCKETS_PER_CLIENT": "100",
        "PLAYGROUND_CLIENT_TIMEOUT_SECONDS": "5"})  # the frozen client is closed within a run


def steps(http: httpx.Client, job_id: str) -> int:
    return http.get(f"/api/jobs/{job_id}").json()["progress"]["step"]


async def watch(url: str, job_id: str, until: float, mode: str = "healthy", hz: float = 10):
    """Follow one job until `until` (loop time); returns what it saw."""
    got = {"frames": 0, "ages": [], "bytes": 0, "closed": None, "start": None, "end": None}
    ws_url = url.replace("http://", "ws://") + f"/api/jobs/{job_id}/stream"
    loop = asyncio.get_running_loop()
    async with websockets.connect(ws_url, max_size=2**24) as ws:
        await ws.recv()  # hello
        if hz != 10:
            await ws.send(json.dumps({"type": "subscribe", "hz": hz}))
        got["start"] = loop.time()
        try:
            while loop.time() < until:
                try:
                    message = await asyncio.wait_for(ws.recv(), max(until - loop.time(), 0.01))
                except TimeoutError:
                    break
                if not isinstance(message, bytes):
                    continue
                header, _ = wire.decode(message)
                got["frames"] += 1
                got["ages"].append(time.time() - header["time"])
                got["bytes"] += len(message)
                if mode == "frozen":  # never acknowledges; at the end, see whether it was closed
                    await asyncio.sleep(max(until - loop.time(), 0))
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.5)
                if mode == "slow":
                    await asyncio.sleep(0.3)
                await ws.send('{"type": "ack"}')
        except websockets.ConnectionClosed as exc:
            got["closed"] = exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            pass
        got["end"] = loop.time()
    return got


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server process has used: steps per CPU second measure the
    tax even when other work on the machine takes the cores away (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tax(http: httpx.Client, url: str, seconds: float, pid: int, pairs: int = 6) -> tuple:
    """Steps/s with snapshots off and on (10 Hz) for one job, in alternating windows on one
    connection (`subscribe` toggles the engine's subscription), so load from elsewhere on the
    machine falls on both. Returns the mean steps/s, frames/s, the median of the per-pair
    ratios, and the ratio of steps per server CPU second (streamed / plain)."""
    job_id = http.post("/api/jobs", json=SPEC).json()["id"]
    window = max(seconds / 2, 1.0)
    ws_url = url.replace("http://", "ws://") + f"/api/jobs/{job_id}/stream"

    async def run() -> tuple[list[float], list[float], float]:
        plain, streamed, frames, streaming_time = [], [], 0, 0.0
        per_cpu = {False: [0, 0.0], True: [0, 0.0]}  # steps, server CPU seconds
        async with websockets.connect(ws_url, max_size=2**24) as ws:
            await ws.recv()  # hello
            await asyncio.sleep(2.0)  # warm up: the trainer is built, the step time settles

            async def measure(on: bool) -> float:
                nonlocal frames, streaming_time
                await ws.send(json.dumps({"type": "subscribe", "snapshots": on, "hz": 10}))
                await asyncio.sleep(0.3)
                s0, t0 = await asyncio.to_thread(steps, http, job_id), time.monotonic()
                c0 = cpu_seconds(pid)
                end = asyncio.get_running_loop().time() + window
                while (left := end - asyncio.get_running_loop().time()) > 0:
                    try:
                        message = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    if isinstance(message, bytes):
                        frames += 1
                        await ws.send('{"type": "ack"}')
                s1 = await asyncio.to_thread(steps, http, job_id)
                elapsed = time.monotonic() - t0
                per_cpu[on][0] += s1 - s0
                per_cpu[on][1] += cpu_seconds(pid) - c0
                if on:
                    streaming_time += elapsed
                return (s1 - s0) / elapsed

            for _ in range(pairs):
                plain.append(await measure(False))
                streamed.append(await measure(True))
        cpu_ratio = ((per_cpu[True][0] / max(per_cpu[True][1], 1e-9))
                     / max(per_cpu[False][0] / max(per_cpu[False][1], 1e-9), 1e-9))
        return plain, streamed, frames / max(streaming_time, 1e-9), cpu_ratio

    plain, streamed, fps, cpu_ratio = asyncio.run(run())
    http.delete(f"/api/jobs/{job_id}")
    ratios = [b / a for a, b in zip(plain, streamed, strict=True) if a > 0]
    return (statistics.mean(plain), statistics.mean(streamed), fps, statistics.median(ratios),
            cpu_ratio)


def crowd(http: httpx.Client, url: str, seconds: float, pid: int, n: int = 30) -> dict:
    ids = [http.post("/api/jobs", json=SPEC).json()["id"] for _ in range(n)]
    time.sleep(3.0)
    before = [steps(http, j) for j in ids]
    t0, c0 = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds / 2)
    alone_steps = sum(steps(http, j) for j in ids) - sum(before)
    alone = alone_steps / (time.monotonic() - t0)
    alone_per_cpu = alone_steps / max(cpu_seconds(pid) - c0, 1e-9)

    async def run() -> tuple[list[dict], list[int], list[int], float]:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds + 2.0
        modes = ["frozen", "slow"] + ["healthy"] * (n - 2)
        tasks = [asyncio.create_task(watch(url, j, until, m)) for j, m in zip(ids, modes,
                                                                               strict=True)]
        await asyncio.sleep(1.5)
        before = await asyncio.to_thread(lambda: [steps(http, j) for j in ids])
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(seconds)
        after = await asyncio.to_thread(lambda: [steps(http, j) for j in ids])
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - c0
        return await asyncio.gather(*tasks), before, after, elapsed, cpu

    results, before, after, elapsed, cpu = asyncio.run(run())
    for j in ids:
        http.delete(f"/api/jobs/{j}")
    healthy = results[2:]
    ages = sorted(a for r in healthy for a in r["ages"])
    return {
        "fps": [r["frames"] / (r["end"] - r["start"]) for r in healthy],
        "age_p50": ages[len(ages) // 2] if ages else float("nan"),
        "age_p95": ages[int(len(ages) * 0.95)] if ages else float("nan"),
        "steps": [(b - a) / elapsed for a, b in zip(before, after, strict=True)],
        "frozen": results[0], "slow": results[1], "alone": alone,
        "cpu_ratio": (sum(after) - sum(before)) / max(cpu, 1e-9) / max(alone_per_cpu, 1e-9),
        "bytes": statistics.mean(r["bytes"] / max(r["frames"], 1) for r in healthy),
    }


def frame_cost() -> tuple[int, float, float]:
    import torch

    from server.config import Settings
    from server.data.registry import DataRegistry
    from server.engine import snapshot
    from server.spec.job import JobSpec
    from server.train.trainer import Trainer

    torch.set_num_threads(1)
    spec = JobSpec.model_validate(SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        data = DataRegistry(Path(tmp), Settings()).load(spec.dataset)
    trainer = Trainer(spec, data)
    trainer.train_batches(10)
    snapshots = snapshot.Snapshots()
    frame = snapshots.frame(trainer, data)
    t0 = time.perf_counter()
    for _ in range(50):
        frame = snapshots.frame(trainer, data)
    total = (time.perf_counter() - t0) / 50
    header, arrays = wire.decode(frame)
    t0 = time.perf_counter()
    for _ in range(200):
        wire.encode({k: v for k, v in header.items() if k != "arrays"},
                    [({"name": m["name"], "dtype": m["dtype"]}, arrays[m["name"]])
                     for m in header["arrays"]])
    encode = (time.perf_counter() - t0) / 200
    return len(frame), total, encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                plain, streamed, fps, ratio, cpu_ratio = tax(http, url, args.seconds, proc.pid)
                print("one job (spiral, 2x8 tanh, batch 10)")
                print(f"  steps/s, no subscriber:          {plain:9.0f}")
                print(f"  steps/s, one subscriber at 10 Hz: {streamed:9.0f}   "
                      f"({fps:.1f} frames/s received)")
                print(f"  ratio (streaming tax):            {streamed / plain:9.2f}   "
                      f"(median of 6 alternating pairs: {ratio:.2f})")
                print(f"  ratio of steps per server CPU second: {cpu_ratio:.2f}   (the tax without "
                      "the noise of other work on the machine)")
                c = crowd(http, url, args.seconds * 1.6, proc.pid)
                fps_sorted = sorted(c["fps"])
                print("30 jobs, one client each: 1 frozen, 1 slow (300 ms per frame), 28 healthy")
                print(f"  healthy frames/s per client:  min {fps_sorted[0]:.2f}  median "
                      f"{statistics.median(fps_sorted):.2f}  max {fps_sorted[-1]:.2f}")
                print(f"  healthy frame age:            p50 {c['age_p50'] * 1000:.0f} ms  "
                      f"p95 {c['age_p95'] * 1000:.0f} ms")
                st = sorted(c["steps"])
                print(f"  steps/s per job:              min {st[0]:.0f}  median "
                      f"{statistics.median(st):.0f}  max {st[-1]:.0f}  (total {sum(st):.0f}; "
                      f"{c['alone']:.0f} with no client just before)")
                print(f"  steps per server CPU second, with clients / without: "
                      f"{c['cpu_ratio']:.2f}")
                print(f"  frozen client: {c['frozen']['frames']} frame(s), closed with "
                      f"{c['frozen']['closed']} (timeout 5 s);  slow client: "
                      f"{c['slow']['frames']} frames, closed with {c['slow']['closed']}")
                print(f"  bytes per frame on the wire:  {c['bytes']:.0f}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    size, total, encode = frame_cost()
    print("one frame (spiral, 2x8 tanh), in process")
    print(f"  bytes {size}; compute + encode {total * 1000:.2f} ms; wire encode alone "
          f"{encode * 1e6:.0f} us")


if __name__ == "__main__":
    main()
