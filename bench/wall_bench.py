"""Class wall benchmark: frames a second per tile with 30 tiles, and what the wall costs training.

Starts `python -m server` in class mode on a loopback port (its own temporary data directory),
joins 30 students who each start one small job that trains until stopped, signs the teacher
in, then alternates phases of `--seconds` each: no wall / wall open / no wall / wall open
(A/B/A/B, so a noisy neighbour hits both). Two kinds of wall, one after the other:

  browser  the real page /teacher/wall in headless Chromium (Playwright, /usr/bin/chromium) at
           1920x1080 on this same machine: frames drawn per tile from window.__wallStats. The
           browser's own drawing competes with the server for this machine's cores.
  sockets  the wall's one multi-job stream (/api/streams) from this process, speaking the
           page's protocol (every tile's job in one subscription: tile frames at the wall's
           rate in one bundle per tick, the lighter metrics of WALL_METRICS; each bundle
           acknowledged at once): the server's share of the cost alone, as when the
           projector's computer is not the server.

Prints, per kind: snapshots a second per tile (min / median / mean / max over the 30 tiles),
the 30 jobs' training steps a second without and with the wall, and their ratio; then where
the machine's CPU went in each (cores busy, from /proc): the server's event loop (its main
thread: the hub, the websockets), its other threads (the engine), Chromium (all its
processes; browser kind), this process (the sockets kind's clients) and the rest of the
machine (other programs on it: noise the A/B/A/B order spreads over both), and the steps per
second of the engine's own CPU time with and without the wall (its ratio is what the wall
costs inside the engine; on a busy machine the steps/s ratio also counts the cores that other
programs took, which the wall's event loop then competes for with the engine).
Usage: .venv/bin/python bench/wall_bench.py [--seconds 10] [--hz 10] [--kinds browser,sockets]
                                           [--families default|on|off]
Bounded: about 2-4 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import live_server  # bench/live_server.py, beside this script
import websockets

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STUDENTS = 30
CODE, PASSWORD = "WALL42", "wall-bench-password"
SPEC = {"dataset": {"name": "xor", "params": {"samples": 200}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                             {"type": "dense", "units": 2, "activation": "tanh"}]},
        "training": {"epochs": None, "batch_size": 10}}
SETTLE = 7.0  # seconds after opening or closing a wall before counting (also lets the
# teacher's budget of new streams, 30 at once then 5 a second, fill up again)
# What a tile of the page subscribes to besides its rate (web/static/js/controllers/
# wall_tiles.js: "tile" detail and TILE_METRICS; keep the two the same).
WALL_METRICS = {"detail": "tile",
                "fields": ["train_loss", "test_loss", "train_accuracy", "test_accuracy",
                           "test_r2"],
                "metrics_hz": 2, "max_points": 8}
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, thread: str | None = None) -> float:
    """CPU seconds (user + system) of process `pid`, or of one of its threads."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        text = Path(path).read_text()
    except OSError:  # gone meanwhile
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _chromium_pids() -> list[int]:
    """This benchmark's Chromium processes (descendants of this process named chromium)."""
    parents, names = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            names[int(entry.name)] = text[text.index("(") + 1:text.rindex(")")]
            parents[int(entry.name)] = int(text[text.rindex(")") + 2:].split()[1])
    mine = []
    for pid, name in names.items():
        up = pid
        while up > 1 and up != os.getpid():
            up = parents.get(up, 1)
        if up == os.getpid() and "chrom" in name.lower():
            mine.append(pid)
    return mine


def cpu_now(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's event loop and its other threads, Chromium, this
    process, and the whole machine (busy time of every core, from /proc/stat)."""
    loop = _cpu_of(server_pid, str(server_pid))
    times = os.times()
    busy = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return {"loop": loop, "engine": _cpu_of(server_pid) - loop,
            "chromium": sum(_cpu_of(pid) for pid in _chromium_pids()),
            "bench": times.user + times.system,
            "machine": (sum(busy) - busy[3] - busy[4]) / TICK}


def cores(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Cores busy over `seconds` from two `cpu_now` readings; `others`: the rest."""
    used = {k: (after[k] - before[k]) / seconds for k in before}
    used["others"] = max(0.0, used.pop("machine") - sum(used.values()))
    return used


def class_server(data_dir: Path, families: str):
    env = {"PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_TEACHER_PASSWORD": PASSWORD,
           "PLAYGROUND_CLASS_CODE": CODE, "PLAYGROUND_RATE_LIMIT_PER_SECOND": "0"}
    if families != "default":
        env["PLAYGROUND_FAMILIES"] = "true" if families == "on" else "false"
    return live_server.start_server(data_dir, env)


def total_steps(http: httpx.Client) -> int:
    jobs = http.get("/api/class/jobs").json()["jobs"]
    return sum(j["progress"]["step"] for j in jobs if j["student"])


def steps_per_second(http: httpx.Client, seconds: float) -> float:
    start, began = total_steps(http), time.monotonic()
    time.sleep(seconds)
    return (total_steps(http) - start) / (time.monotonic() - began)


class BrowserWall:
    """The wall page in headless Chromium; `frames()` reads every tile's count of frames."""

    def __init__(self, url: str, teacher: str, hz: float) -> None:
        from playwright.sync_api import sync_playwright
        self.url, self.hz = url, hz
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        self.context = self.browser.new_context(viewport={"width": 1920, "height": 1080})
        self.context.add_cookies([{"name": "playground_teacher", "value": teacher, "url": url}])
        self.page = self.context.new_page()

    def open(self) -> None:
        self.page.goto(f"{self.url}/teacher/wall?hz={self.hz}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every tile has drawn a frame (or 30 s passed)
            stats = self.page.evaluate("window.__wallStats ? window.__wallStats() : []")
            if len(stats) == STUDENTS and all(t["frames"] for t in stats):
                return
            time.sleep(0.5)
        drawn = sum(1 for t in stats if t["frames"])
        print(f"  (only {drawn} of {len(stats)} tiles had a frame after 30 s; counting anyway)")

    def frames(self) -> dict[str, int]:
        return {t["student"]: t["frames"] for t in self.page.evaluate("window.__wallStats()")}

    def close(self) -> None:
        self.page.goto("about:blank")

    def quit(self) -> None:
        self.browser.close()
        self.playwright.stop()


class SocketWall:
    """The wall's one stream (/api/streams, as the page opens it) in a background event loop:
    every tile's job in one subscription; each bundle of frames is counted per job and
    acknowledged at once."""

    def __init__(self, url: str, teacher: str, hz: float, jobs: list[str]) -> None:
        self.ws_url = url.replace("http://", "ws://")
        self.teacher, self.hz, self.jobs = teacher, hz, jobs
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.stop: asyncio.Event | None = None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.task = None

    async def _follow(self) -> None:
        from server.stream.wire import decode_bundle

        url = f"{self.ws_url}/api/streams?token={self.teacher}"
        while not self.stop.is_set():  # reconnect as the page does
            try:
                async with websockets.connect(url, max_size=2**26) as ws:
                    await ws.send(json.dumps({"type": "subscribe", "jobs": self.jobs,
                                              "hz": self.hz, **WALL_METRICS}))
                    while not self.stop.is_set():
                        try:
                            message = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        if isinstance(message, bytes):
                            for frame in decode_bundle(message):
                                (n,) = struct.unpack_from("<I", frame, 0)
                                job = json.loads(frame[4:4 + n])["job_id"]
                                self.counts[job] = self.counts.get(job, 0) + 1
                            await ws.send('{"type": "ack"}')
            except (OSError, websockets.ConnectionClosed) as exc:
                self.errors.append(repr(exc)[:120])
                await asyncio.sleep(0.5)

    def open(self) -> None:
        self.counts, self.errors = {}, []
        self.stop = asyncio.Event()
        self.task = asyncio.run_coroutine_threadsafe(self._follow(), self.loop)
        deadline = time.monotonic() + 30
        while len(self.counts) < len(self.jobs) and time.monotonic() < deadline:
            time.sleep(0.2)
        if len(self.counts) < len(self.jobs):
            print(f"  (only {len(self.counts)} of {len(self.jobs)} tiles had a frame after "
                  f"30 s; counting anyway; errors: {self.errors[:3]})")

    def frames(self) -> dict[str, int]:
        return {job: self.counts.get(job, 0) for job in self.jobs}

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.task.result(timeout=30)
        self.task = None

    def quit(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def run_kind(wall, http: httpx.Client, seconds: float, server_pid: int) -> dict:
    """A/B/A/B: steps/s without and with the wall; frames/s per tile while it is open; the
    cores busy in each phase (`cores`)."""
    without, with_wall, rates = [], [], []
    used: dict[str, list] = {"without": [], "with": []}
    for _ in range(2):
        time.sleep(SETTLE)
        began, cpu = time.monotonic(), cpu_now(server_pid)
        without.append(steps_per_second(http, seconds))
        used["without"].append(cores(cpu, cpu_now(server_pid), time.monotonic() - began))
        wall.open()
        time.sleep(SETTLE)
        before, began, cpu = wall.frames(), time.monotonic(), cpu_now(server_pid)
        with_wall.append(steps_per_second(http, seconds))
        after, elapsed = wall.frames(), time.monotonic() - began
        used["with"].append(cores(cpu, cpu_now(server_pid), elapsed))
        rates.append([(after.get(k, 0) - before.get(k, 0)) / elapsed for k in after])
        wall.close()
    per_tile = [statistics.mean(pair) for pair in zip(*rates, strict=False)]
    return {"tiles": len(per_tile), "fps_min": min(per_tile),
            "fps_median": statistics.median(per_tile), "fps_mean": statistics.mean(per_tile),
            "fps_max": max(per_tile), "steps_without": statistics.mean(without),
            "steps_with": statistics.mean(with_wall),
            "cores": {phase: {k: statistics.mean(u[k] for u in runs) for k in runs[0]}
                      for phase, runs in used.items()}}


def frame_cost() -> dict:
    """In this process: ms of one full snapshot frame of SPEC (what each tile gets) and of the
    decision boundary alone (one forward pass over the boundary grid, and over a 50x50 one),
    each the best of a few rounds."""
    import torch

    from server.config import Settings
    from server.data.registry import DataRegistry
    from server.engine import snapshot
    from server.engine.samples import BOUNDARY, grid_xy
    from server.spec.job import JobSpec
    from server.train.trainer import Trainer

    torch.set_num_threads(1)
    spec = JobSpec.model_validate(SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        data = DataRegistry(Path(tmp), Settings()).load(spec.dataset)
    trainer = Trainer(spec, data)
    trainer.train_batches(10)

    def timed(work, n: int = 10, rounds: int = 5) -> float:
        """ms per call, the best of `rounds` rounds (a busy machine slows some rounds)."""
        work()
        best = float("inf")
        for _ in range(rounds):
            began = time.perf_counter()
            for _ in range(n):
                work()
            best = min(best, (time.perf_counter() - began) / n * 1000)
        return best

    snapshots = snapshot.Snapshots()
    full = timed(lambda: snapshots.frame(trainer, data))
    size = len(snapshots.frame(trainer, data))
    costs = {"full_ms": full, "bytes": size, "boundary": BOUNDARY}
    for n in (BOUNDARY, 50):
        grid = torch.as_tensor(data.features_of(grid_xy(data.domain, n)), dtype=torch.float32)

        def forward(grid=grid):
            with torch.no_grad():
                trainer.model(grid).sigmoid()
        costs["boundary50_ms" if n == 50 else "boundary_ms"] = timed(forward)
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--hz", type=float, default=10.0,
                        help="snapshots a second per tile (the page's TILE_HZ)")
    parser.add_argument("--kinds", default="browser,sockets", help="browser, sockets or both")
    parser.add_argument("--families", choices=("default", "on", "off"), default="default",
                        help="PLAYGROUND_FAMILIES of the server (default: the server's own)")
    args = parser.parse_args()
    cost = frame_cost()
    budget = 0.1 * 1000 / STUDENTS  # ms of frame work a second per tile in the 10% budget
    print(f"one frame of this model: {cost['full_ms']:.2f} ms, {cost['bytes']} bytes (boundary "
          f"{cost['boundary']}x{cost['boundary']}); the boundary alone: "
          f"{cost['boundary_ms']:.2f} ms, at 50x50: "
          f"{cost['boundary50_ms']:.2f} ms. The engine's frame budget (10% of its time) fits "
          f"{budget / cost['full_ms']:.1f} full frames a second per tile for {STUDENTS} tiles")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = class_server(Path(tmp), args.families)
        try:
            with httpx.Client(base_url=url, timeout=60) as anon:
                teacher = anon.post("/api/class/teacher/login",
                                    json={"password": PASSWORD}).json()["token"]
                jobs = []
                for i in range(STUDENTS):
                    joined = anon.post("/api/class/join",
                                       json={"code": CODE, "name": f"Student {i + 1}"})
                    token = joined.json()["token"]
                    r = anon.post("/api/jobs", json=SPEC,
                                  headers={"Authorization": f"Bearer {token}"})
                    r.raise_for_status()
                    jobs.append(r.json()["id"])
            print(f"{STUDENTS} jobs training ({json.dumps(SPEC['model']['layers'])} on xor); "
                  f"the wall asks {args.hz:g} snapshots a second per tile; phases of "
                  f"{args.seconds:g} s, A/B/A/B; families: {args.families}")
            with httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {teacher}"}) as http:
                for kind in args.kinds.split(","):
                    wall = (BrowserWall(url, teacher, args.hz) if kind == "browser"
                            else SocketWall(url, teacher, args.hz, jobs))
                    try:
                        r = run_kind(wall, http, args.seconds, proc.pid)
                    finally:
                        wall.quit()
                    print(f"{kind:8s} frames/s per tile over {r['tiles']} tiles: "
                          f"min {r['fps_min']:.2f}  median {r['fps_median']:.2f}  "
                          f"mean {r['fps_mean']:.2f}  max {r['fps_max']:.2f}")
                    print(f"{kind:8s} training steps/s of the {STUDENTS} jobs: without the "
                          f"wall {r['steps_without']:.0f}, with it {r['steps_with']:.0f}; "
                          f"ratio {r['steps_with'] / r['steps_without']:.3f}")
                    for phase, used in r["cores"].items():
                        print(f"{kind:8s} cores busy {phase:7s} the wall: " + "  ".join(
                            f"{name} {value:.2f}" for name, value in used.items()))
                    # Steps per second of the engine's own CPU: what the wall costs inside the
                    # engine, whatever other programs took from this machine meanwhile.
                    own = [r["steps_" + p] / max(1e-9, r["cores"][p]["engine"])
                           for p in ("without", "with")]
                    print(f"{kind:8s} steps per engine core-second: without the wall "
                          f"{own[0]:.0f}, with it {own[1]:.0f}; ratio {own[1] / own[0]:.3f}")
                    sys.stdout.flush()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
