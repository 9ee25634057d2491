"""The timeline's cost to training (issue 16): whole runs with and without it, on the engine.

The timeline's pictures are densest at the start of a run (every epoch up to 31), so a
steady-state rate long after the start would hide them: each case trains whole runs of
`--epochs` epochs (default 300, the circle starter's budget) from epoch 0 to completion and
counts training steps per second of wall time. Cases: one job alone (`families=False`), one
job as a family of one (the default), and a class of `--class-size` jobs training as one
family (different seeds, learning rates and widths). Steps are counted per second of the
engine thread's CPU time (its own clock, so that other programs on a shared machine do not
swing the numbers; wall-time rates are printed beside). Each case runs with the timeline on
and off (`JobTable.timeline.enabled`), alternating, `--repeat` times; the best of each is
compared, and the ratio with the issue's target (<= 5% slower) printed as PASS/FAIL, with the
pictures kept per job and their bytes on disk.

    .venv/bin/python bench/timeline_bench.py [--epochs 300] [--class-size 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from family_bench import QueueLoop  # noqa: E402

from server.config import Settings  # noqa: E402
from server.data.registry import DataRegistry  # noqa: E402
from server.engine.engine import Engine  # noqa: E402
from server.spec.job import JobSpec  # noqa: E402
from server.store import Store  # noqa: E402
from server.timeline_store import TimelineStore  # noqa: E402

TARGET = 0.05  # at most 5% slower


def job_spec(epochs: int, seed: int, rate: float = 0.03, widths=(4, 2)) -> dict:
    return {"dataset": {"name": "circle"},
            "model": {"layers": [{"type": "dense", "units": u, "activation": "tanh"}
                                 for u in widths]},
            "training": {"epochs": epochs, "batch_size": 10, "seed": seed,
                         "optimizer": {"name": "sgd", "learning_rate": rate}}}


def run(registry: DataRegistry, data_dir: Path, specs: list[dict], families: bool,
        timeline: bool) -> dict:
    """Train `specs` to completion in a fresh engine: steps/s, pictures and bytes per job."""
    n = len(specs)
    settings = Settings(data_dir=data_dir, device="cpu", families=families,
                        max_running_jobs=max(64, n), max_active_jobs_per_client=max(10, n),
                        max_active_jobs=max(200, n), max_jobs_total=max(1000, n),
                        unwatched_job_seconds=0, min_free_disk_mb=0)
    store = Store(data_dir / f"bench-{time.monotonic_ns()}.sqlite3")
    engine = Engine(settings, store, registry)
    engine._table.timeline.enabled = timeline
    loop = QueueLoop()
    engine.start(loop, lambda event: None)
    try:
        ids = []
        for raw in specs:
            spec = JobSpec.model_validate({**raw, "start": False})
            row = store.create_job(token="bench", owner="bench",
                                   spec=spec.model_dump(mode="json"), status="paused")
            engine.create(row["id"], spec).result(60)
            ids.append(row["id"])
        clock = time.pthread_getcpuclockid(engine._worker.thread.ident)
        start, cpu = time.perf_counter(), time.clock_gettime(clock)
        for job_id in ids:
            engine.control(job_id, "resume").result(60)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if all(engine.progress(i)["status"] == "completed" for i in ids):
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        cpu = time.clock_gettime(clock) - cpu
        waiting = len(engine._table.timeline.pending)  # drawn now that the engine is idle
        while engine._table.timeline.pending and time.monotonic() < deadline:
            time.sleep(0.005)
        lag = time.perf_counter() - start - elapsed
        steps = sum(engine.progress(i)["step"] for i in ids)
        pictures = TimelineStore.of(store)
        kept = [len(pictures.epochs(i)) for i in ids]
        size = sum(pictures.stored_bytes(i) for i in ids)
        return {"rate": steps / cpu, "wall_rate": steps / elapsed, "seconds": cpu, "kept": kept,
                "bytes": size, "waiting": waiting, "lag": lag,
                "taken": engine._table.timeline.taken}
    finally:
        engine.stop()
        loop.close()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--class-size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases = [("one job alone (families off)", False, [job_spec(args.epochs, 1)]),
             ("one job, a family of one", True, [job_spec(args.epochs, 1)]),
             (f"a class of {args.class_size} as one family", True,
              [job_spec(args.epochs, i, rate=(0.01, 0.03, 0.1)[i % 3],
                        widths=(2 + i % 5, 2 + i % 3)) for i in range(args.class_size)])]
    print(f"timeline bench: circle, tanh, batch 10, SGD, {args.epochs} epochs per job, "
          f"best of {args.repeat}")
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        registry = DataRegistry(data_dir / "uploads", Settings(data_dir=data_dir))
        for label, families, specs in cases:
            best = {True: None, False: None}
            for _ in range(args.repeat):
                for on in (False, True):
                    result = run(registry, data_dir, specs, families, on)
                    if best[on] is None or result["rate"] > best[on]["rate"]:
                        best[on] = result
            on, off = best[True], best[False]
            slower = 1.0 - on["rate"] / off["rate"]
            ok = slower <= TARGET
            verdicts.append(ok)
            print(f"  {label}")
            print(f"    without timeline {off['rate']:8.0f} steps/s ({off['seconds']:.2f} s engine "
                  f"CPU; {off['wall_rate']:.0f} steps/s of wall time)")
            print(f"    with timeline    {on['rate']:8.0f} steps/s ({on['seconds']:.2f} s engine "
                  f"CPU; {on['wall_rate']:.0f} steps/s of wall time), "
                  f"{min(on['kept'])}-{max(on['kept'])} pictures per job, "
                  f"{on['bytes'] / len(specs) / 1024:.0f} KiB per job; {on['waiting']} pictures "
                  f"still to draw when the runs ended, drawn {on['lag']:.2f} s later")
            print(f"    ratio with/without {on['rate'] / off['rate']:.3f} "
                  f"({100 * slower:+.1f}% slower)   target <= {100 * TARGET:.0f}%: "
                  f"{'PASS' if ok else 'FAIL'}")
    sys.exit(0 if all(verdicts) else 1)


if __name__ == "__main__":
    main()
