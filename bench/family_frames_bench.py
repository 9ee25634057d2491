"""Frames of a family's watched jobs (issue 17): per-job against batched, per frame.

Builds the 30 jobs of family_bench.py's exercise (circle, two tanh hidden layers of 2-8 units,
features, optimizers, rates and batches drawn from --seed) as one `DenseFamily`, trains it a
little, then times, in the thread's CPU time (what the engine's `FrameBudget` counts), one
frame of every member made per job (`Snapshots.frame`) and all of them at once
(`FamilyFrames.frames`), for full and for "boundary" detail. Prints ms per frame and the
frames a second the 10% budget fits for each job of the class.

    .venv/bin/python bench/family_frames_bench.py [--jobs 30] [--rounds 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from family_bench import one_exercise  # noqa: E402

from server.config import Settings  # noqa: E402
from server.data.registry import DataRegistry  # noqa: E402
from server.engine.family_frames import FamilyFrames  # noqa: E402
from server.engine.snapshot import Snapshots  # noqa: E402
from server.spec.job import JobSpec  # noqa: E402
from server.train.family import DenseFamily  # noqa: E402
from server.train.trainer import Trainer  # noqa: E402

BUDGET = 0.1  # FrameBudget's share of the engine thread


def per_frame(make, count: int, rounds: int) -> float:
    """Seconds of this thread's CPU per frame, the fastest of `rounds` rounds."""
    make()  # contexts and scratch buffers are made once
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        make()
        best = min(best, (time.thread_time() - start) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        registry = DataRegistry(Path(tmp), Settings(data_dir=Path(tmp)))
        trainers, datasets = [], {}
        for raw in one_exercise(args.jobs, args.seed):
            spec = JobSpec.model_validate(raw)
            data = registry.load(spec.dataset)
            trainer = Trainer(spec, data)
            trainers.append(trainer)
            datasets[id(trainer)] = data
        family = DenseFamily(trainers)
        family.train(50)
        members = [(m.trainer, datasets[id(m.trainer)]) for m in family.members]
        print(f"{len(members)} members of one family (the exercise of family_bench.py), "
              f"thread CPU time per frame, best of {args.rounds}")
        for detail in ("full", "boundary"):
            items = [(t, d, {"job_id": str(i), "detail": detail})
                     for i, (t, d) in enumerate(members)]
            alone = Snapshots()
            solo = per_frame(lambda: [alone.frame(*item) for item in items],  # noqa: B023
                             len(items), args.rounds)
            batched_maker = FamilyFrames(Snapshots())
            batched = per_frame(lambda: batched_maker.frames(family, items),  # noqa: B023
                                len(items), args.rounds)
            fits = [BUDGET / (s * len(items)) for s in (solo, batched)]
            print(f"  {detail:8s} per job {solo * 1000:6.3f} ms   batched {batched * 1000:6.3f} ms"
                  f"   {solo / batched:4.1f}x;  the budget fits {fits[0]:5.1f} -> "
                  f"{fits[1]:5.1f} frames/s per job")


if __name__ == "__main__":
    main()
