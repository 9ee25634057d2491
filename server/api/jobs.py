"""Routes for jobs: create, list, read, metric history, control, patch, delete, download.

Each route checks what a client sent (spec, token, limits, transition) and hands the work to the
engine as a command; it never touches a model. Errors: 404 `Job not found`, 403 (deps.py), 409
for an impossible transition (the engine's message), 422 for a bad spec, 429 at a job limit,
503 while the engine cannot answer (errors.py's table renders the engine's errors).

A route that commands the engine is async: it awaits the engine's future on the event loop
(errors.engine_answer, at most 60 s), so a class waiting on a busy engine holds no threadpool
thread; the checks before it that read files or write SQLite run in the threadpool.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from server import disk
from server.api.datasets import ViewerDep
from server.api.deps import (
    AuthorizedJobDep,
    DatasetsDep,
    EngineDep,
    SettingsDep,
    StoreDep,
    TokenDep,
    is_teacher,
    quota_scopes,
    resume_refusal,
)
from server.api.errors import engine_answer
from server.challenges import routes as challenges
from server.config import Settings
from server.data.ownership import EVERYONE, Viewer
from server.export import FORMATS, ExportError
from server.json_text import finite
from server.spec.errors import SpecError
from server.spec.job import JobPatch, JobSpec
from server.spec.vocabulary import ControlAction
from server.store import SERVER_FULL, LimitReached

router = APIRouter(tags=["jobs"])

TEACHER_OWNER = "teacher"
RETRY_LATER = {"Retry-After": "30"}  # when others' jobs end, there is room again


class ControlRequest(BaseModel):
    """Body of POST /api/jobs/{id}/control."""

    model_config = ConfigDict(extra="forbid")
    action: ControlAction
    unit: Literal["batch", "epoch"] = Field(
        "batch", description="For step: one batch (default) or the rest of the epoch."
    )


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def live_view(store, engine, row: dict) -> dict:
    """`job_view` of the job as it is now. The engine writes a job's row before it publishes
    its progress, so reading the progress first and the row second never pairs a new status
    (failed) with an old row (no error yet)."""
    progress = engine.progress(row["id"])
    return job_view(store.get_job(row["id"]) or row, progress)


def job_view(row: dict, progress: dict | None) -> dict:
    """What GET /api/jobs/{id} answers: the stored row with the engine's live progress."""
    epoch, step = row["epoch"], row["step"]
    if progress is not None:
        epoch, step = progress["epoch"], progress["step"]
    # H5: the engine's status wins (on a full disk the row may not have been written), and
    # so do its error and stop_reason when it has them.
    live = progress or {}
    return finite({
        "id": row["id"],
        "name": row["name"],
        "status": live.get("status", row["status"]),
        "progress": {"epoch": epoch, "step": step,
                     "epochs": (row["spec"].get("training") or {}).get("epochs")},
        "metrics": row["metrics"],
        "error": live.get("error", row["error"]),
        "stop_reason": live.get("stop_reason", row["stop_reason"]),
        "diverged": live.get("diverged"),  # paused by a divergence: why (server.engine.rewind)
        "spec": row["spec"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    })


def _check_limits(spec: JobSpec, settings: Settings, batch_size: int) -> None:
    if spec.training.epochs is not None and spec.training.epochs > settings.max_epochs:
        raise SpecError(("training", "epochs"),
                        f"epochs is {spec.training.epochs}; this server allows at most "
                        f"{settings.max_epochs}")
    if batch_size > settings.max_batch_size:
        raise SpecError(("training", "batch_size"),
                        f"batch_size is {batch_size}; this server allows at most "
                        f"{settings.max_batch_size}")


def _check_model(spec: JobSpec, datasets, settings: Settings, batch_size: int,
                 viewer: Viewer = EVERYONE):
    """422 (SpecError) unless the data set exists (and is one `viewer` may use) and the model
    fits it, before any tensor; returns the model check's report."""
    _check_limits(spec, settings, batch_size)
    shape = datasets.describe(spec.dataset, viewer)
    from server.nn.check import check_model

    return check_model(spec.model, shape, settings, batch_size, loss=spec.training.loss)


def _limited(settings: Settings, teacher: bool) -> bool:
    """Whether the class limits on running or queued jobs hold for this caller: not for the
    teacher, nor on an open server (one trusted user; max_running_jobs and max_jobs_total
    still hold)."""
    return not (teacher or settings.is_open)


def _owner(settings: Settings, token: str | None, request: Request) -> str:
    """Who counts against max_active_jobs_per_client: the caller's token, else its address."""
    if is_teacher(settings, token):
        return TEACHER_OWNER
    if token:
        return "token:" + token
    return "address:" + (request.client.host if request.client else "unknown")


@router.post("/jobs", status_code=201)
async def create_job(spec: JobSpec, request: Request, settings: SettingsDep, store: StoreDep,
                     datasets: DatasetsDep, engine: EngineDep, token: TokenDep,
                     viewer: ViewerDep, challenge: Annotated[str | None, Query(
                         max_length=64, description="Make the job a run of this challenge "
                         "(its id or code): its locks and goal apply.")] = None) -> dict:
    """Check the spec and queue the job. Send `Authorization: Bearer <token>` to create it
    under a token you already hold (one token for all your jobs); otherwise a new one is made.
    """
    run = None if challenge is None else await challenges.admit(
        request, challenge, spec, token, viewer)  # 404, 409, 422 (server/challenges/)
    row, job_token = await run_in_threadpool(
        _admit, spec, request, settings, store, datasets, token, viewer)
    if run is not None:
        await challenges.record(request, run, row["id"])
    await engine_answer(engine.create(row["id"], spec))
    return {"id": row["id"], "token": job_token, **live_view(store, engine, row)}


def _admit(spec: JobSpec, request: Request, settings: Settings, store, datasets,
           token: str | None, viewer: Viewer) -> tuple[dict, str]:
    """Check a new job against the model check, the disk and the limits, and store it:
    (its row, its token)."""
    report = _check_model(spec, datasets, settings, spec.training.batch_size, viewer)
    teacher = is_teacher(settings, token)
    job_token = token if token and not teacher else secrets.token_urlsafe(18)
    owner = _owner(settings, token, request)
    address = request.client.host if request.client else None
    limited = _limited(settings, teacher)
    # H5 (disks): 507 while the disk is low; 413/507 past a checkpoint quota.
    refusal = disk.storage_refusal(settings, store, owner if limited else None,
                                   report.total_parameters,
                                   spec.training.early_stopping is not None)
    if refusal is not None:
        raise HTTPException(*refusal)
    spec_json = spec.model_dump(mode="json")
    try:
        row = store.create_job(
            token=job_token, owner=owner, spec=spec_json, name=spec.name,
            status="queued" if spec.start else "paused", max_total=settings.max_jobs_total,
            max_active_for_owner=settings.max_active_jobs_per_client if limited else None,
            max_active=settings.max_active_jobs if limited else None,
            address=address, quota=quota_scopes(settings, owner, address),
            max_kept_for_owner=settings.max_jobs_per_student_total if limited else None,
        )
    except LimitReached as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise HTTPException(429, str(exc), headers=headers) from None
    return row, job_token


@router.get("/jobs")
def list_jobs(settings: SettingsDep, store: StoreDep, engine: EngineDep,
              token: TokenDep) -> dict:
    """The caller's jobs (those of its token), or every job for a teacher or an open server."""
    progress = engine.progress_all()  # before the rows: see live_view
    if settings.is_open or is_teacher(settings, token):
        rows = store.list_jobs()
    elif token:
        rows = store.list_jobs(token=token)
    else:
        rows = []
    return {"jobs": [job_view(r, progress.get(r["id"])) for r in rows]}


@router.get("/jobs/{job_id}")
def get_job(job: AuthorizedJobDep, store: StoreDep, engine: EngineDep) -> dict:
    engine.watched(job["id"])  # a script that polls its job is watching it
    return live_view(store, engine, job)


MAX_HISTORY_PAGE = 100_000


@router.get("/jobs/{job_id}/metrics")
def get_metrics(job: AuthorizedJobDep, store: StoreDep, engine: EngineDep,
                since: Annotated[int | None, Query(ge=0, le=2**31 - 1, description=(
                    "Only the epochs after this one."))] = None,
                limit: Annotated[int | None, Query(ge=1, le=MAX_HISTORY_PAGE, description=(
                    "At most this many epochs; `next_since` then pages on."))] = None) -> dict:
    """The per-epoch history (only the epochs after `since` when given, at most `limit`).
    `next_since` is the `since` of the next page, or null when there is no more."""
    engine.watched(job["id"])
    history = store.history(job["id"], since=since, limit=limit)
    more = limit is not None and len(history) == limit and bool(
        store.history(job["id"], since=int(history[-1]["epoch"]), limit=1))
    return {"job_id": job["id"], "history": history,
            "next_since": int(history[-1]["epoch"]) if more else None}


@router.post("/jobs/{job_id}/control")
async def control_job(body: ControlRequest, job: AuthorizedJobDep, request: Request,
                      settings: SettingsDep, store: StoreDep, engine: EngineDep,
                      token: TokenDep) -> dict:
    refusal = body.action == "resume" and await run_in_threadpool(
        resume_refusal, store, settings, job, token)
    if refusal:
        raise HTTPException(429, refusal, headers=RETRY_LATER if refusal == SERVER_FULL else None)
    await engine_answer(engine.control(job["id"], body.action, body.unit))
    return live_view(store, engine, job)


@router.patch("/jobs/{job_id}")
async def patch_job(patch: JobPatch, job: AuthorizedJobDep, settings: SettingsDep,
                    store: StoreDep, datasets: DatasetsDep, engine: EngineDep) -> dict:
    """Change the learning rate, momentum, batch size, regularization or epochs (or the
    name), running or not."""
    changes = patch.model_dump(mode="json", exclude_unset=True)
    training = changes.get("training") or {}
    if training.get("batch_size") is not None or training.get("epochs") is not None:
        spec = JobSpec.model_validate(job["spec"])
        batch_size = training.get("batch_size") or spec.training.batch_size
        if training.get("epochs") is not None:
            spec.training.epochs = training["epochs"]
        await run_in_threadpool(_check_model, spec, datasets, settings, batch_size)
    await engine_answer(engine.patch(job["id"], changes))
    return live_view(store, engine, job)


@router.delete("/jobs/{job_id}", status_code=204)
async def delete_job(job: AuthorizedJobDep, engine: EngineDep) -> Response:
    await engine_answer(engine.delete(job["id"]))
    return Response(status_code=204)


@router.get("/jobs/{job_id}/model")
async def download_model(job: AuthorizedJobDep, engine: EngineDep,
                         format: str = "safetensors") -> Response:
    """The trained model as a file; `format` is one of those offered (safetensors here)."""
    if format not in FORMATS:
        offered = ", ".join(FORMATS)
        raise ExportError(f"format {format!r} is not offered; offered formats: {offered}",
                          ("query", "format"))
    kind = FORMATS[format]
    data = await engine_answer(engine.export(job["id"], format))
    filename = f"job-{job['id']}.{kind.extension}"
    return Response(content=data, media_type=kind.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
