"""Snapshot frames: who subscribed to a job, at what rate, and whether a frame is due.

`Frames` keeps each job's subscribers (`job.subscribers`: subscriber -> options) and decides
which jobs get a frame now (`due`): a job with subscribers whose frame was asked for
(`job.frame_due`: a new subscriber, a step, a reset) or that trained since its last frame at
least 1/hz ago (EARLY_S less: a frame due that soon is made at the end of this slice, not
after one more slice too short to be worth its fixed costs), where hz is the fastest rate its
subscribers asked (default `settings.snapshot_hz`, at most `settings.max_snapshot_hz`).
Frame work stays a small share of the worker (the budget of its `snapshots`, issue 5); a
frame a new subscriber asked for is within the budget too once the job has had one (clients
reconnecting in a loop must not buy a frame each, issue 12). `build` makes the frame
(`snapshots.frame`, a `server.engine.snapshot.Snapshots` this object owns, with the latest
subscriber's options); the engine makes sure the job has a trainer first and sends it.
A watched family's slice is cut to end when its next frame is due (`slice_seconds`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from server.engine.family_frames import FamilyFrames, batch_family
from server.engine.health import Health
from server.engine.snapshot import Snapshots

log = logging.getLogger("playground.engine")
SLICE_MIN_S = 0.01  # a watched family's slice is cut to its next frame, not below this
SLICE_MARGIN_S = 0.002  # ... and ends just after that frame is due, not just before
EARLY_S = 0.01  # a frame due this soon is made now, rather than after a slice this short


class Frames:
    """Subscriptions, rates and the frame budget (used by the worker thread only)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.snapshots = Snapshots()  # this engine's frame contexts and frame budget
        self.family_frames = FamilyFrames(self.snapshots)  # a family's frames at once
        self.health = Health()  # dead ReLU layers, vanishing gradients (issue 16)

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

    def _framed(self, job: Any, now: float) -> None:
        """A frame was made now. On time (up to EARLY_S early or half a period late), the next
        is due one period after this one was due, so that frames keep their rate on average
        although they are made only between slices; earlier or later, one period from now."""
        period = 1.0 / self.hz(job)
        due_at = job.last_frame + period
        job.last_frame = due_at if -EARLY_S <= now - due_at < 0.5 * period else now

    def _joining(self, family: Any, members: list, table: Mapping[str, Any],
                 now: float) -> list:
        """Watched members of `family` in `table`, not due yet but past half their period."""
        have = {id(j) for j in members}
        return [j for j in table.values()
                if id(j) not in have and j.subscribers and j.status != "failed"
                and j.trained_since_frame and j.trainer is not None
                and getattr(j.trainer, "family", None) is family
                and now - j.last_frame >= 0.5 / self.hz(j)]

    def slice_seconds(self, jobs: Iterable[Any], now: float) -> float | None:
        """How long a slice of these jobs (a family) may train before the first watched one
        is due a frame (EARLY_S early counts) and the frame budget lets it be made, at least
        SLICE_MIN_S (None: none is watched). Frames are made between slices, so a longer
        slice would lower every member's frame rate."""
        waits = [job.last_frame + 1.0 / self.hz(job) - EARLY_S - now for job in jobs
                 if job.subscribers and job.status != "failed"]
        if not waits:
            return None
        # Frames the budget holds back would not come sooner: train until it lets them.
        return max(SLICE_MIN_S, min(waits) + SLICE_MARGIN_S, self.snapshots.budget.wait())

    def due(self, jobs: Mapping[str, Any], now: float) -> Iterator[Any]:
        """The jobs that get a frame now."""
        for job in list(jobs.values()):
            if not job.subscribers or job.status == "failed":
                continue
            if not (job.frame_due or (job.trained_since_frame
                                      and now - job.last_frame >= 1.0 / self.hz(job) - EARLY_S)):
                continue
            if not self.snapshots.budget.allows(now - job.last_frame) and (
                    not job.frame_due or job.last_frame > 0):
                continue
            yield job

    def options(self, job: Any, now: float) -> dict:
        """The options of a due job's frame (the latest subscriber's, without hz)."""
        options = {k: v for k, v in list(job.subscribers.values())[-1].items() if k != "hz"}
        # One frame serves every watcher: only the main view when all of them asked for that,
        # on the coarser grid when all of them asked for a tile's.
        details = {o.get("detail") for o in job.subscribers.values()}
        light = details <= {"boundary", "tile"}
        options["detail"] = ("tile" if details == {"tile"} else "boundary") if light else "full"
        if not light:  # at most once a second per job (server.engine.health), in the budget
            started = time.thread_time()
            health = self.health.of(job.trainer, now)
            if health is not None:
                options["health"] = health
            self.snapshots.budget.spend(time.thread_time() - started)
        return options

    def build(self, job: Any, now: float) -> bytes | None:
        """The frame of a due job (its trainer loaded); None when the snapshot failed."""
        options = self.options(job, now)
        try:
            data = self.snapshots.frame(job.trainer, job.dataset, options)
        except Exception:
            log.exception("snapshot of job %s failed", job.id)
            data = None
        job.frame_due = job.trained_since_frame = False
        self._framed(job, now)
        return data

    def build_many(self, jobs: Iterable[Any], now: float,
                   table: Mapping[str, Any] | None = None) -> Iterator[tuple[Any, bytes | None]]:
        """(job, frame or None) of each due job of `jobs` (trainers loaded). A job alone gets
        its frame at once (`build`); the members of one dense family on 2-D points get theirs
        together after the others, from one batched pass (server.engine.family_frames),
        joined by the family's watched members of `table` past half their period (so that
        the members' frames fall due together: one pass each time, not several small ones)."""
        groups: dict[int, tuple[Any, list]] = {}
        for job in jobs:
            family = batch_family(job.trainer, job.dataset)
            if family is None:
                yield job, self.build(job, now)
            else:
                groups.setdefault(id(family), (family, []))[1].append(job)
        for family, members in groups.values():
            members += self._joining(family, members, table or {}, now)
            frames = None
            if len(members) > 1:
                items = [(j.trainer, j.dataset, self.options(j, now)) for j in members]
                try:
                    frames = self.family_frames.frames(family, items)
                except Exception:
                    log.exception("batched frames of a family failed; made per job")
            if frames is None:
                for job in members:
                    yield job, self.build(job, now)
                continue
            for job, data in zip(members, frames, strict=True):
                job.frame_due = job.trained_since_frame = False
                self._framed(job, now)
                yield job, data
