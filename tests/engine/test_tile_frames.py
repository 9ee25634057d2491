"""The `tile` detail (issue 14): the class wall's frames, only the output map on the coarser
TILE_BOUNDARY grid (server/engine/snapshot.py, family_frames.py, frames.py).

Batched for a family's members, mixed with `boundary` and `full` ones, they decode to what
`Snapshots.frame` makes for each job alone (the per-job oracle of test_family_frames); a job's
frame is a tile's only when every watcher asked for that.
"""

from __future__ import annotations

from server.config import Settings
from server.engine.family_frames import FamilyFrames
from server.engine.frames import Frames
from server.engine.job import Job
from server.engine.snapshot import BOUNDARY, TILE_BOUNDARY, Snapshots
from server.stream import wire
from tests.engine.test_family_frames import (  # noqa: F401 - `registry` is a fixture
    assert_same_frame,
    family_of,
    registry,
)


def test_tile_frames_of_a_family_decode_to_the_per_job_frames(registry):  # noqa: F811
    family, members = family_of(registry, "tanh, bce", 6, seed=7)
    detail = {0: "tile", 1: "full", 2: "tile", 3: "boundary", 5: "tile"}
    items = [(*members[i], {"job_id": f"job{i}", "detail": d}) for i, d in detail.items()]
    batched = FamilyFrames(Snapshots()).frames(family, items)
    alone = [Snapshots().frame(t, d, o) for t, d, o in items]
    for i, one, other in zip(detail, batched, alone, strict=True):
        assert_same_frame(one, other)
        header, arrays = wire.decode(one)
        assert header["detail"] == detail[i]
        side = {"tile": TILE_BOUNDARY, "boundary": BOUNDARY, "full": BOUNDARY}[detail[i]]
        assert arrays["output.boundary"].shape == (1, side, side)
        if detail[i] != "full":
            assert list(arrays) == ["output.boundary"]
    assert TILE_BOUNDARY == 50


def test_a_frame_is_a_tile_only_when_every_watcher_asked_for_one():
    frames = Frames(Settings())
    job = Job(id="a", spec=None, status="running", seq=0)
    for asked, made in (([("tile")], "tile"), (["tile", "tile"], "tile"),
                        (["tile", "boundary"], "boundary"), (["boundary"], "boundary"),
                        (["tile", None], "full")):
        job.subscribers.clear()
        for n, d in enumerate(asked):
            frames.subscribe(job, n, {"hz": 10} if d is None else {"hz": 10, "detail": d})
        assert frames.options(job, 0.0)["detail"] == made, asked
