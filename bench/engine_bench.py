"""Engine overhead and fairness, measured in one run on TF Playground's default problem
(circle, 2-4-2-1 tanh, batch 10, lr 0.03, SGD).

Prints steps/s of: a bare PyTorch loop; the Trainer called directly (adds per-epoch
evaluation); the engine with 1 job; and, for 10 and 30 concurrent jobs, each job's steps/s and
the spread between the fastest and the slowest job (max/min ratio).

    .venv/bin/python bench/engine_bench.py [--seconds 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import Settings  # noqa: E402
from server.data.registry import DataRegistry  # noqa: E402
from server.engine.engine import Engine  # noqa: E402
from server.spec.job import JobSpec  # noqa: E402
from server.store import Store  # noqa: E402
from server.train.trainer import Trainer  # noqa: E402

SPEC = {
    "dataset": {"name": "circle"},
    "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                         {"type": "dense", "units": 2, "activation": "tanh"}]},
    "training": {"epochs": None, "batch_size": 10,
                 "optimizer": {"name": "sgd", "learning_rate": 0.03}},
}


class NoLoop:
    """Stands in for the asyncio loop: events are dropped."""

    def call_soon_threadsafe(self, fn, *args):
        pass


def bare_loop(registry: DataRegistry, seconds: float, device: str) -> float:
    """Steps/s of a hand-written loop: same data, model, loss and optimizer, no evaluation."""
    spec = JobSpec.model_validate(SPEC)
    data = registry.load(spec.dataset)
    x = torch.as_tensor(data.x_train, dtype=torch.float32, device=device)  # (n, 2)
    y = torch.as_tensor(data.y_train, dtype=torch.float32, device=device).reshape(-1, 1)  # (n, 1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2),
                                torch.nn.Tanh(), torch.nn.Linear(2, 1)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        perm = torch.randperm(len(x), device=device)
        for i in range(0, len(x), 10):
            idx = perm[i:i + 10]
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def trainer_direct(registry: DataRegistry, seconds: float, device: str) -> float:
    spec = JobSpec.model_validate(SPEC)
    trainer = Trainer(spec, registry.load(spec.dataset), device)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_batches(100)
    return trainer.step / (time.perf_counter() - start)


def engine_jobs(registry: DataRegistry, jobs: int, seconds: float, data_dir: Path,
                device: str) -> list[float]:
    """Steps/s of each of `jobs` equal jobs trained at once by one engine."""
    settings = Settings(data_dir=data_dir, device=device, max_running_jobs=max(64, jobs))
    store = Store(data_dir / f"bench-{jobs}.sqlite3")
    engine = Engine(settings, store, registry)
    engine.start(NoLoop(), lambda event: None)
    try:
        spec = JobSpec.model_validate({**SPEC, "start": False})
        ids = []
        for _ in range(jobs):
            row = store.create_job(token="bench", owner="bench",
                                   spec=spec.model_dump(mode="json"), status="paused")
            engine.create(row["id"], spec).result(30)
            ids.append(row["id"])
        for job_id in ids:
            engine.control(job_id, "resume").result(30)
        time.sleep(min(1.0, seconds / 3))  # every trainer built, every job running
        before = {i: engine.progress(i)["step"] for i in ids}
        start = time.perf_counter()
        time.sleep(seconds)
        after = {i: engine.progress(i)["step"] for i in ids}
        elapsed = time.perf_counter() - start
        return [(after[i] - before[i]) / elapsed for i in ids]
    finally:
        engine.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        registry = DataRegistry(data_dir / "uploads", Settings(data_dir=data_dir))
        bare = bare_loop(registry, args.seconds, args.device)
        direct = trainer_direct(registry, args.seconds, args.device)
        print(f"circle, 2-4-2-1 tanh, batch 10, lr 0.03, SGD; {args.device}, 1 torch thread; "
              f"{args.seconds:g} s per case")
        print(f"bare PyTorch loop        {bare:9.0f} steps/s")
        print(f"Trainer, no engine       {direct:9.0f} steps/s  ({direct / bare:.2f}x bare; "
              "adds per-epoch evaluation)")
        for jobs in (1, 10, 30):
            rates = engine_jobs(registry, jobs, args.seconds, data_dir, args.device)
            total = sum(rates)
            if jobs == 1:
                print(f"engine, 1 job            {total:9.0f} steps/s  ({total / bare:.2f}x bare, "
                      f"{total / direct:.2f}x Trainer)")
                continue
            spread = max(rates) / min(rates) if min(rates) > 0 else float("inf")
            print(f"engine, {jobs:2d} jobs: total {total:7.0f} steps/s ({total / bare:.2f}x bare); "
                  f"per job mean {statistics.mean(rates):.0f}, min {min(rates):.0f}, "
                  f"max {max(rates):.0f}, spread max/min {spread:.3f}")
            print("    per job: " + " ".join(f"{r:.0f}" for r in rates))


if __name__ == "__main__":
    main()
