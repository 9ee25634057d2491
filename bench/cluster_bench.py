"""Cluster (issue 15): 60 mixed jobs on a Ray cluster of 1 node against one of 2 nodes.

Each case starts a local Ray cluster on loopback (tests/cluster/local.py: every node 1 CPU,
100 MB object store), a real server on it (`python -m server` with PLAYGROUND_RAY_ADDRESS,
families on, as a class would run it), creates the 60 jobs over REST (five architectures on
four point sets, widths, learning rates, optimizers and batch sizes drawn from --seed, every
job training until stopped), lets them warm up for --warmup seconds, then counts each job's
steps over --seconds from GET /api/jobs/{id} (`progress.step`). Printed per case: aggregate
steps/s, the per-job steps/s spread (min, median, max), the engine actors (/metrics) and their
jobs, the CPU the server process and each actor used (cores, from psutil); then the 2-node /
1-node ratios. Ray's `num_cpus=1` is a scheduling figure, not a cap: on a machine with fewer
cores than the actors and the server need, the two nodes share the same cores and the ratio
says more about the machine than about the cluster.

    .venv/bin/python bench/cluster_bench.py [--jobs 60] [--seconds 30] [--warmup 15] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.local import RAY_ENV, local_cluster  # noqa: E402
from tests.conftest import start_server, stop_server  # noqa: E402

SETS = ["circle", "xor", "gauss", "moons"]
ARCHS = [([(4, "tanh"), (2, "tanh")], ["x1", "x2"]),
         ([(6, "tanh")] * 2, ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"]),
         ([(8, "relu"), (8, "relu")], ["x1", "x2"]),
         ([(3, "sigmoid")], ["x1", "x2"]),
         ([(6, "tanh")] * 3, ["x1", "x2"])]


def mixed_jobs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        layers, features = ARCHS[i % len(ARCHS)]
        optimizer = rng.choice([{"name": "sgd", "learning_rate": 0.03},
                                {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
                                {"name": "adam", "learning_rate": 0.01}])
        jobs.append({"dataset": {"name": SETS[i % len(SETS)], "features": features},
                     "model": {"layers": [{"type": "dense", "units": u, "activation": a}
                                          for u, a in layers]},
                     "training": {"epochs": None, "batch_size": rng.choice([10, 30]),
                                  "optimizer": optimizer, "seed": i}})
    return jobs


def steps(client, ids: list[str]) -> dict[str, int]:
    return {i: int(client.get(f"/api/jobs/{i}").json()["progress"]["step"]) for i in ids}


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server process and by each engine actor's process."""
    import psutil

    out = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] == server_pid:
                out["server"] = sum(proc.cpu_times()[:2])
            elif "EngineActor" in line:
                out[f"actor {proc.info['pid']}"] = sum(proc.cpu_times()[:2])
        except (psutil.Error, TypeError):
            continue
    return out


def actors(client) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines()
            if line.startswith("playground_cluster_actor_jobs{")]


def case(nodes: int, specs: list[dict], args) -> dict:
    with local_cluster(nodes) as cluster:
        data = Path(f"/tmp/cluster-bench-{nodes}-{time.time_ns()}")
        env = {**RAY_ENV, "PLAYGROUND_RAY_ADDRESS": cluster.address,
               "PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT": "1000",
               "PLAYGROUND_UNWATCHED_JOB_SECONDS": "0"}
        server = start_server(data, env=env, timeout=300)
        try:
            with server.client() as client:
                ids = []
                for spec in specs:
                    r = client.post("/api/jobs", json=spec)
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                time.sleep(args.warmup)
                before, t0 = steps(client, ids), time.monotonic()
                cpu0 = cpu_seconds(server.process.pid)
                time.sleep(args.seconds)
                after, t1 = steps(client, ids), time.monotonic()
                cpu1 = cpu_seconds(server.process.pid)
                placed = actors(client)
                for job_id in ids:
                    client.delete(f"/api/jobs/{job_id}")
        finally:
            stop_server(server)
    rates = sorted((after[i] - before[i]) / (t1 - t0) for i in ids)
    cpu = {k: (cpu1[k] - cpu0.get(k, 0.0)) / (t1 - t0) for k in cpu1}
    return {"nodes": nodes, "total": sum(rates), "min": rates[0],
            "median": statistics.median(rates), "max": rates[-1], "actors": placed,
            "cpu": cpu, "cores": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    specs = mixed_jobs(args.jobs, args.seed)
    results = []
    for nodes in (1, 2):
        result = case(nodes, specs, args)
        results.append(result)
        print(f"{nodes} node(s): {result['total']:.0f} steps/s in all; per job "
              f"min {result['min']:.1f}, median {result['median']:.1f}, "
              f"max {result['max']:.1f} steps/s", flush=True)
        for line in result["actors"]:
            print("   ", line)
        print("    CPU used (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                  sorted(result["cpu"].items()))
              + f"; this machine has {result['cores']} cores", flush=True)
    one, two = results
    print(f"2 nodes / 1 node: aggregate x{two['total'] / one['total']:.2f}, "
          f"per-job median x{two['median'] / one['median']:.2f}, "
          f"min x{two['min'] / max(one['min'], 1e-9):.2f}; "
          f"spread (max/min) {one['max'] / max(one['min'], 1e-9):.1f} on 1 node, "
          f"{two['max'] / max(two['min'], 1e-9):.1f} on 2")


if __name__ == "__main__":
    main()
