"""A sweep of 16 variants of the default problem against 2 lone jobs, measured in one run.

Starts `python -m server` twice on a loopback port (bench/live_server.py), once with families
(the default) and once with PLAYGROUND_FAMILIES=false (every job alone, as before families),
and in each: trains 2 lone jobs of TF Playground's default problem (circle, 2-4-2-1 tanh,
batch 10, SGD 0.03) for `--epochs` epochs at once and times them to completion; then a sweep of
16 learning rates (0.001 to 1, log scale) of the same problem through POST /api/sweeps, timed
from the request to the last variant's completion. Prints the seconds and the ratio
sweep / (2 lone jobs without families): the issue's target is <= 1.

    .venv/bin/python bench/sweep_bench.py [--epochs 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import start_server  # noqa: E402

BASE = {"dataset": {"name": "circle"},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                             {"type": "dense", "units": 2, "activation": "tanh"}]},
        "training": {"batch_size": 10, "optimizer": {"name": "sgd", "learning_rate": 0.03}}}
DONE = ("completed", "failed", "stopped")


def wait(client: httpx.Client, ids: list[str]) -> list[str]:
    while True:
        states = [client.get(f"/api/jobs/{i}").json()["status"] for i in ids]
        if all(s in DONE for s in states):
            return states
        time.sleep(0.05)


def wait_sweep(client: httpx.Client, sweep_id: str) -> list[str]:
    """Follows the sweep as a client does: one GET of the sweep (every variant's status) per
    poll, not one request per variant."""
    while True:
        variants = client.get(f"/api/sweeps/{sweep_id}").json()["variants"]
        states = [v["status"] for v in variants]
        if all(s in DONE for s in states):
            return states
        time.sleep(0.05)


def measure(url: str, epochs: int) -> tuple[float, float]:
    spec = {**BASE, "training": {**BASE["training"], "epochs": epochs}}
    with httpx.Client(base_url=url, timeout=120) as client:
        start = time.perf_counter()
        ids = [client.post("/api/jobs", json=spec).json()["id"] for _ in range(2)]
        assert wait(client, ids) == ["completed"] * 2
        lone = time.perf_counter() - start
        for job_id in ids:
            client.delete(f"/api/jobs/{job_id}")
        start = time.perf_counter()
        made = client.post("/api/sweeps", json={
            "base": spec, "axes": [{"path": "training.optimizer.learning_rate",
                                    "range": [0.001, 1], "count": 16, "scale": "log"}]})
        assert made.status_code == 201, made.text
        states = wait_sweep(client, made.json()["id"])
        sweep = time.perf_counter() - start
        assert states.count("completed") + states.count("failed") == 16, states
        client.delete(f"/api/sweeps/{made.json()['id']}")
    return lone, sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=400)
    args = parser.parse_args()
    results = {}
    for label, env in (("families on (default)", {}),
                       ("families=false", {"PLAYGROUND_FAMILIES": "false"})):
        with tempfile.TemporaryDirectory() as data:
            proc, url = start_server(Path(data), env)
            try:
                results[label] = measure(url, args.epochs)
            finally:
                proc.terminate()
                proc.wait(30)
        lone, sweep = results[label]
        print(f"{label:22s} 2 lone jobs {lone:6.1f} s   sweep of 16 {sweep:6.1f} s   "
              f"sweep / its 2 lone {sweep / lone:4.2f}")
    today = results["families=false"][0]
    ratio = results["families on (default)"][1] / today
    print(f"sweep of 16 (families) / 2 lone jobs without families: {ratio:.2f}  "
          f"(target <= 1: {'PASS' if ratio <= 1 else 'FAIL'})")


if __name__ == "__main__":
    main()
