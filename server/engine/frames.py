"""Snapshot frames: who subscribed to a job, at what rate, and whether a frame is due.

`Frames` keeps each job's subscribers (`job.subscribers`: subscriber -> options) and decides
which jobs get a frame now (`due`): a job with subscribers whose frame was asked for
(`job.frame_due`: a new subscriber, a step, a reset) or that trained since its last frame at
least 1/hz ago, where hz is the fastest rate its subscribers asked (default
`settings.snapshot_hz`, at most `settings.max_snapshot_hz`). Frame work stays a small share of
the worker (the budget of its `snapshots`, issue 5); a frame a new subscriber asked for is
within the budget too once the job has had one (clients reconnecting in a loop must not buy a
frame each, issue 12). `build` makes the frame (`snapshots.frame`, a
`server.engine.snapshot.Snapshots` this object owns, with the latest subscriber's options);
the engine makes sure the job has a trainer first and sends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from server.engine.snapshot import Snapshots

log = logging.getLogger("playground.engine")


class Frames:
    """Subscriptions, rates and the frame budget (used by the worker thread only)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.snapshots = Snapshots()  # this engine's frame contexts and frame budget

    def subscribe(self, job: Any, subscriber: Any, options: dict) -> None:
        job.subscribers.pop(subscriber, None)  # re-subscribing moves it last: its options win
        job.subscribers[subscriber] = options
        job.frame_due = True
        job.unwatched_since = None

    def unsubscribe(self, job: Any, subscriber: Any) -> None:
        job.subscribers.pop(subscriber, None)
        if not job.subscribers:
            job.unwatched_since = time.monotonic()

    def hz(self, job: Any) -> float:
        """The rate of the job's frames: the fastest its subscribers asked, within limits."""
        return min(self.settings.max_snapshot_hz,
                   max(float(o.get("hz") or self.settings.snapshot_hz)
                       for o in job.subscribers.values()))

    def due(self, jobs: Mapping[str, Any], now: float) -> Iterator[Any]:
        """The jobs that get a frame now."""
        for job in list(jobs.values()):
            if not job.subscribers or job.status == "failed":
                continue
            if not (job.frame_due or (job.trained_since_frame
                                      and now - job.last_frame >= 1.0 / self.hz(job))):
                continue
            if not self.snapshots.budget.allows(now - job.last_frame) and (
                    not job.frame_due or job.last_frame > 0):
                continue
            yield job

    def build(self, job: Any, now: float) -> bytes | None:
        """The frame of a due job (its trainer loaded); None when the snapshot failed."""
        options = {k: v for k, v in list(job.subscribers.values())[-1].items() if k != "hz"}
        # One frame serves every watcher: only the main view when all of them asked for that.
        light = all(o.get("detail") == "boundary" for o in job.subscribers.values())
        options["detail"] = "boundary" if light else "full"
        try:
            data = self.snapshots.frame(job.trainer, job.dataset, options)
        except Exception:
            log.exception("snapshot of job %s failed", job.id)
            data = None
        job.frame_due = job.trained_since_frame = False
        job.last_frame = now
        return data
