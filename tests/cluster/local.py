"""A real Ray cluster on loopback for the cluster tests and bench (issue 15).

`local_cluster(nodes, head_cpus)` starts a head node (`head_cpus` CPUs: 0 keeps training off
it, as docs/CLUSTER.md sets up a school's server) and `nodes - 1` more with
`ray.cluster_utils.Cluster` (each its own raylet and object store, 1 CPU, 100 MB of object
store, no dashboard), every address on 127.0.0.1, with node death noticed within seconds; it
yields the `Cluster` and always shuts it down. `NODE`: the arguments of one more node.
`RAY_ENV` is what a server process needs in its environment to join it (Ray otherwise swaps
127.0.0.1 for the machine's outward address).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
NODE = {"node_ip_address": "127.0.0.1", "num_cpus": 1,
        "object_store_memory": 100 * 1024 * 1024}
# A killed node is declared dead after missed health checks a second apart, as docs/CLUSTER.md
# sets the head up (Ray's defaults wait much longer).
FAST_FAILURE = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000,
                "health_check_failure_threshold": 5}


@contextlib.contextmanager
def local_cluster(nodes: int = 2, head_cpus: int = 1) -> Iterator:
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    cluster = Cluster(initialize_head=True, head_node_args={
        **NODE, "num_cpus": head_cpus, "include_dashboard": False,
        "_system_config": FAST_FAILURE})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**NODE)
        yield cluster
    finally:
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
