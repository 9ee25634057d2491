"""When a watched job's frame is due (server/engine/frames.py), with the class wall's numbers.

A frame due within EARLY_S is made at the end of this slice rather than after one more slice
that short; made early or a little late it keeps the job's rate on average (the next is due
one period after this one was); and a watched family's slice is cut to end when the first
member's frame is due, EARLY_S early.
"""

from __future__ import annotations

import pytest

from server.config import Settings
from server.engine.frames import EARLY_S, SLICE_MARGIN_S, SLICE_MIN_S, Frames
from server.engine.job import Job


def watched(frames: Frames, hz: float, last_frame: float, job_id: str = "a") -> Job:
    job = Job(id=job_id, spec=None, status="running", seq=0)
    frames.subscribe(job, object(), {"hz": hz, "detail": "boundary"})
    job.frame_due = False
    job.trained_since_frame = True
    job.last_frame = last_frame
    return job


@pytest.fixture()
def frames() -> Frames:
    return Frames(Settings())


def test_a_frame_due_within_early_s_is_made_now(frames):
    job = watched(frames, 8.0, last_frame=100.0)  # due at 100.125
    assert list(frames.due({"a": job}, 100.125 - EARLY_S - 0.001)) == []
    assert list(frames.due({"a": job}, 100.125 - EARLY_S + 0.001)) == [job]


def test_early_or_slightly_late_frames_keep_the_rate(frames):
    job = watched(frames, 8.0, last_frame=100.0)
    frames._framed(job, 100.125 - EARLY_S / 2)  # a little early: on the schedule
    assert job.last_frame == pytest.approx(100.125)
    frames._framed(job, 100.25 + 0.05)  # 50 ms late, under half a period: on the schedule
    assert job.last_frame == pytest.approx(100.25)
    frames._framed(job, 100.375 + 0.07)  # later than half a period: one period from now
    assert job.last_frame == pytest.approx(100.445)
    frames._framed(job, 100.445 + 0.125 - 2 * EARLY_S)  # too early: from now
    assert job.last_frame == pytest.approx(100.445 + 0.125 - 2 * EARLY_S)


def test_a_watched_familys_slice_ends_when_the_first_frame_is_due(frames):
    first = watched(frames, 8.0, last_frame=100.0, job_id="a")  # due at 100.125
    second = watched(frames, 8.0, last_frame=100.05, job_id="b")  # due at 100.175
    alone = Job(id="c", spec=None, status="running", seq=2)  # nobody watches it
    now = 100.03
    assert frames.slice_seconds([first, second, alone], now) == pytest.approx(
        0.125 - 0.03 - EARLY_S + SLICE_MARGIN_S)
    assert frames.slice_seconds([first], 100.12) == SLICE_MIN_S  # due now: the shortest
    assert frames.slice_seconds([alone], now) is None
