"""Training on a Ray cluster (issue 15): the same engine, run as Ray actors on other machines.

Without `settings.ray_address` none of this is imported and the engine runs in the server
process. With it, `server.main` builds a `ClusterEngine` (`engine.py`) instead of
`server.engine.Engine`: it offers the same methods, but every job lives in one `EngineActor`
(`actor.py`) on a cluster node, each running a real `server.engine.Engine` over an
`ActorStore` (`actor_store.py`) whose writes and events queue in an `Outbox` (`outbox.py`).
The server drains each actor from a background thread (`pump.py`): store writes are applied to
the server's SQLite store in order, events go to the hub. `placement.py` chooses the actor of a
new job (least measured load, jobs that train together together); `connect.py` connects to the
cluster and lists the actors it should have. Ray is an optional dependency (`.[cluster]`).
"""

from __future__ import annotations

import importlib.util


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None
