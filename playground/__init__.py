"""A Python client and the `playground` command line for the neural-network playground.

    from playground import Playground
    pg = Playground()                 # $PLAYGROUND_URL or http://127.0.0.1:8000
    job = pg.submit({"dataset": {"name": "xor"},
                     "model": {"layers": [{"type": "dense", "units": 4}]}})
    job.wait()

Modules: client (Playground, Job, Datasets), aio (async twins), stream and events (the live
stream), frames (binary snapshots as numpy arrays), errors, progress (the progress bar),
notebook (job.show()), sweeps (Sweep, AsyncSweep), cli (the console script), rest (what
the sync and async clients share). It imports nothing from `server`.
"""

from playground.client import Datasets, Job, Playground
from playground.errors import (
    ApiError,
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    JobFailed,
    NotFound,
    PlaygroundError,
    Unreachable,
)
from playground.events import Error, Hello, Metrics, Reply, Status
from playground.frames import Snapshot
from playground.sweeps import Sweep

__all__ = [
    "ApiError", "BadRequest", "Busy", "Conflict", "Datasets", "Error", "Forbidden", "Hello",
    "Job", "JobFailed", "Metrics", "NotFound", "Playground", "PlaygroundError", "Reply",
    "Snapshot", "Status", "Sweep", "Unreachable",
]
