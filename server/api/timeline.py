"""The timeline routes (issue 16): the epochs whose picture a job keeps, and one picture.

`GET /api/jobs/{id}/timeline` lists them; `GET /api/jobs/{id}/timeline/{epoch}` answers the
kept picture at or before `epoch` as the stream's binary snapshot frame (docs/STREAM.md; its
header's `epoch` and `step` say which picture it is). Both read the job as
`GET /api/jobs/{id}/metrics` does (same authorization, and the read counts as watching it).
Which epochs are kept, and how they are taken: server/timeline.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from server.api.deps import AuthorizedJobDep, EngineDep, StoreDep
from server.timeline import DENSITY, MAX_KEPT, density_for
from server.timeline_store import TimelineStore

router = APIRouter()

FRAME_TYPE = "application/octet-stream"


def _current_epoch(engine, job: dict) -> int:
    progress = engine.progress(job["id"]) or {}
    return int(progress.get("epoch", job.get("epoch") or 0))


@router.get("/jobs/{job_id}/timeline")
def get_timeline(job: AuthorizedJobDep, store: StoreDep, engine: EngineDep) -> dict:
    """The epochs (and steps) of the job's kept pictures, oldest first."""
    engine.watched(job["id"])
    kept = TimelineStore.of(store).epochs(job["id"])
    epoch = _current_epoch(engine, job)
    return {"job_id": job["id"], "epoch": epoch,
            "epochs": [e for e, _ in kept], "steps": [s for _, s in kept],
            "density": density_for(epoch), "first_density": DENSITY, "max_kept": MAX_KEPT}


@router.get("/jobs/{job_id}/timeline/{epoch}", response_class=Response,
            responses={200: {"content": {FRAME_TYPE: {}},
                             "description": "A binary snapshot frame (docs/STREAM.md)."}})
def get_picture(job: AuthorizedJobDep, store: StoreDep, engine: EngineDep,
                epoch: Annotated[int, Path(ge=0, le=2**31 - 1, description=(
                    "An epoch of the run; the kept picture at or before it is answered."))]
                ) -> Response:
    engine.watched(job["id"])
    timeline = TimelineStore.of(store)
    current = _current_epoch(engine, job)
    if epoch > current:
        raise HTTPException(404, f"Epoch {epoch} has not been trained yet: this job is at "
                                 f"epoch {current}.")
    found = timeline.at_or_before(job["id"], epoch)
    if found is None:
        kept = timeline.epochs(job["id"])
        if not kept:
            raise HTTPException(404, "This job has no pictures yet: the first is taken "
                                     "before its first batch.")
        raise HTTPException(404, f"No picture at or before epoch {epoch}: this job keeps "
                                 f"epochs {kept[0][0]} to {kept[-1][0]}.")
    kept_epoch, step, frame = found
    return Response(frame, media_type=FRAME_TYPE,
                    headers={"X-Timeline-Epoch": str(kept_epoch), "X-Timeline-Step": str(step),
                             "Cache-Control": "no-store"})
