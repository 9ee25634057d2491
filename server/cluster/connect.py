"""Connecting to the Ray cluster and the actors it should run.

`connect(address, timeout)` joins the cluster as a driver (namespace "playground"), or raises
`ClusterUnreachable` with a sentence for the operator: Ray not installed, nothing listening at
the address, or Ray not answering within `timeout`. `slots(nodes, cpus_per_actor)` lists the
engine actors each live node should hold: one per GPU on a node with GPUs, else one per
`cpus_per_actor` cores; `start_actor(slot, settings)` starts one there (pinned to its node:
a job on a dead node must move, not wait for the node).
"""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass

from server.cluster import ray_installed

NOT_INSTALLED = ("PLAYGROUND_RAY_ADDRESS is set but Ray is not installed; install the cluster "
                 "extra: pip install \".[cluster]\" (or scripts/install.sh --cluster).")
UNREACHABLE = ("The Ray cluster at {address} cannot be reached ({reason}). Start it first "
               "(ray start --head on the cluster's head node, see docs/CLUSTER.md) or fix "
               "PLAYGROUND_RAY_ADDRESS / --ray.")


class ClusterUnreachable(RuntimeError):
    """The server cannot use the cluster it was told to use (the message says why)."""


@dataclass(frozen=True)
class Slot:
    node_id: str
    address: str
    index: int
    gpus: float
    cpus: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.node_id, self.index)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(UNREACHABLE.format(
            address=address, reason="expected host:port, for example 10.0.0.2:6379"))
    return host.strip("[]"), int(port)


def connect(address: str, timeout: float = 20.0) -> None:
    if not ray_installed():
        raise ClusterUnreachable(NOT_INSTALLED)
    import ray

    if ray.is_initialized():
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=min(5.0, timeout)).close()
    except OSError as exc:
        raise ClusterUnreachable(UNREACHABLE.format(address=address, reason=exc)) from None
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(address=address, namespace="playground", log_to_driver=False,
                     logging_level="WARNING")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    thread = threading.Thread(target=join, name="ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ClusterUnreachable(UNREACHABLE.format(
            address=address, reason=f"no answer from Ray within {timeout:.0f} s"))
    if failure:
        raise ClusterUnreachable(UNREACHABLE.format(address=address, reason=failure[0]))


def slots(nodes: list[dict], cpus_per_actor: float) -> list[Slot]:
    out = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources") or {}
        gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 0))
        address = str(node.get("NodeManagerAddress", ""))
        if gpus > 0:
            out += [Slot(node["NodeID"], address, i, 1, min(1.0, cpus / gpus))
                    for i in range(gpus)]
        else:
            count = int(cpus // cpus_per_actor) if cpus_per_actor > 0 else 0
            out += [Slot(node["NodeID"], address, i, 0, cpus_per_actor) for i in range(count)]
    return out


def start_actor(slot: Slot, settings):
    """The handle of a new EngineActor on the slot's node (it starts in the background)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from server.cluster.actor import EngineActor

    name = f"engine-{slot.node_id[:8]}-{slot.index}-{uuid.uuid4().hex[:4]}"
    # The actor needs no secrets: the teacher's password and token stay on the server.
    safe = settings.model_copy(update={"teacher_password": None, "teacher_token": None,
                                       "ray_address": None})
    remote = ray.remote(EngineActor).options(
        num_cpus=slot.cpus, num_gpus=slot.gpus, max_concurrency=10_000, max_restarts=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node_id, soft=False))
    return name, remote.remote(safe, name)
