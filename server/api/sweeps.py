"""Routes for sweeps: one request makes a job per variant of a base spec (issue 14).

`POST /api/sweeps` expands the axes (server/sweeps.py), checks every variant as POST /api/jobs
checks a job (the spec, the model check, the disk, the limits: all or none) and creates the
jobs as it does (jobs.py's owner and limit rules, Store.create_job, engine.create), all under
one token, the sweep's: each variant is an ordinary job that GET /api/jobs/{id}, the stream and
control accept with that token. `GET /api/sweeps/{id}` shows each variant's values, status,
epoch and latest metrics; `POST .../control` pauses, resumes or stops them all; `DELETE`
deletes the sweep and its jobs; `GET /api/sweeps` lists the caller's sweeps.

Who may touch a sweep: as for a job (deps.authorize_job): its token, the teacher, or anyone on
an open server. Errors: 404 `Sweep not found`, 403, 422 (a bad path or value, naming the axis;
too many variants), 429 (the variants would pass a job limit; nothing is created).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from server import disk, sweeps
from server.api.classroom.refusals import JOIN_FIRST
from server.api.classroom.tokens import is_member, same_secret
from server.api.datasets import ViewerDep
from server.api.deps import (
    DatasetsDep,
    EngineDep,
    SettingsDep,
    StoreDep,
    TokenDep,
    is_teacher,
    quota_scopes,
)
from server.api.errors import engine_answer
from server.api.jobs import RETRY_LATER, _check_model, _iso, _limited, _owner
from server.config import Settings
from server.data.ownership import Viewer
from server.data.registry import DataSetNotFound
from server.engine.engine import Conflict, JobNotFound
from server.json_text import finite
from server.spec.errors import SpecError
from server.store import ACTIVE_STATUSES, SERVER_FULL, LimitReached
from server.sweeps_store import SweepStore

router = APIRouter(tags=["sweeps"])

SWEEP_NOT_FOUND = "Sweep not found"
SWEEP_NOT_YOURS = "This sweep belongs to someone else"
SWEEP_TOKEN_NEEDED = "This sweep needs its token: send the header Authorization: Bearer <token>"
TERMINAL = ("completed", "stopped", "failed", "deleted")
# The statuses an action applies to; the sweep's other jobs are left as they are.
ACTS_ON = {"pause": ("queued", "running"), "resume": ("paused",),
           "stop": ("queued", "running", "paused")}


class SweepControl(BaseModel):
    """Body of POST /api/sweeps/{id}/control."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["pause", "resume", "stop"]


def sweep_store(request: Request) -> SweepStore:
    return request.app.state.sweeps


def authorize_sweep(request: Request, sweep_id: str, token: str | None) -> dict:
    """The sweep if `token` may touch it (its own, the teacher's, or an open server)."""
    settings: Settings = request.app.state.settings
    sweep = sweep_store(request).get(sweep_id)
    if sweep is None:
        raise HTTPException(404, SWEEP_NOT_FOUND)
    if settings.is_open or is_teacher(settings, token):
        return sweep
    if token is None:
        raise HTTPException(403, SWEEP_TOKEN_NEEDED)
    if not same_secret(token, sweep["token"]):
        raise HTTPException(403, SWEEP_NOT_YOURS)
    return sweep


# -- the view ---------------------------------------------------------------------------------

def overall(statuses: list[str]) -> str:
    """running while any variant is queued or running, paused while any is paused, else
    finished."""
    if any(s in ACTIVE_STATUSES for s in statuses):
        return "running"
    return "paused" if "paused" in statuses else "finished"


def sweep_view(sweep: dict, rows: dict[str, dict], progress: dict[str, dict]) -> dict:
    """What GET /api/sweeps/{id} answers; `rows` holds the jobs by id (a missing one was
    deleted), `progress` the engine's live progress (read before the rows: jobs.live_view)."""
    variants = []
    for v in sweep["variants"]:
        row, live = rows.get(v["job"]), progress.get(v["job"]) or {}
        if row is None:
            variants.append({"job": v["job"], "values": v["values"], "status": "deleted",
                             "stop_reason": None, "epoch": None, "epochs": None, "metrics": None})
            continue
        variants.append({
            "job": v["job"], "values": v["values"],
            "status": live.get("status", row["status"]),
            "stop_reason": live.get("stop_reason", row["stop_reason"]),
            "epoch": live.get("epoch", row["epoch"]),
            "epochs": (row["spec"].get("training") or {}).get("epochs"),
            "metrics": row["metrics"],
        })
    return finite({
        "id": sweep["id"], "name": sweep["name"], "mode": sweep["mode"],
        "count": sweep["count"], "base": sweep["base"], "axes": sweep["axes"],
        "created": _iso(sweep["created_at"]),
        "status": overall([v["status"] for v in variants]),
        "jobs": [v["job"] for v in sweep["variants"]],
        "variants": variants,
    })


def _view(store, engine, sweep: dict) -> dict:
    progress = engine.progress_all()
    rows = {v["job"]: store.get_job(v["job"]) for v in sweep["variants"]}
    return sweep_view(sweep, {k: r for k, r in rows.items() if r is not None}, progress)


# -- creating ---------------------------------------------------------------------------------

def _params_model(datasets, body: sweeps.SweepRequest, viewer: Viewer):
    """The parameters model of the base's data set, when it is one `viewer` may use (else
    the model check of the variants names the problem)."""
    name = body.base.dataset.name
    if name not in datasets.names(viewer):
        return None
    try:
        return datasets.definition(name).params
    except DataSetNotFound:
        return None


def _checked(body: sweeps.SweepRequest, settings: Settings, datasets,
             viewer: Viewer) -> tuple[list[sweeps.Variant], int]:
    """Every variant, each passed by the model check as POST /api/jobs would; and the
    parameters of them all. SpecError (422) names the axis and value of the first bad one."""
    found = sweeps.variants(body, _params_model(datasets, body, viewer),
                            settings.max_sweep_variants)
    parameters = 0
    for variant in found:
        spec = variant.spec
        try:
            report = _check_model(spec, datasets, settings, spec.training.batch_size, viewer)
        except SpecError as err:
            raise SpecError.many([sweeps.explain(body, variant.values, e["loc"], e["msg"])
                                  for e in err.errors]) from None
        parameters += report.total_parameters
    return found, parameters


def _who(column: str, value: str) -> str:
    return (f"this computer's address ({value}) already has" if column == "address"
            else "you already have")


def _refusal(store, settings: Settings, owner: str, address: str | None, limited: bool,
             n: int, active: int) -> tuple[str, dict | None] | None:
    """Why `n` new jobs (`active` of them queued) would pass a job limit, as (sentence,
    headers), or None: the whole sweep is refused, so that none of it is created."""
    if limited:
        most, kept_most = settings.max_active_jobs_per_client, settings.max_jobs_per_student_total
        for column, value in quota_scopes(settings, owner, address):
            have = store.count_quota(column, value, True)
            if active and have + active > most:
                return (f"This sweep would run {active} jobs and {_who(column, value)} {have} "
                        f"running or queued; at most {most} are allowed "
                        "(PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT). Pause, stop or delete jobs "
                        "first, or sweep fewer values.", None)
            kept = store.count_quota(column, value, False)
            if n and kept + n > kept_most:
                return (f"This sweep would add {n} jobs and {_who(column, value)} {kept}; at "
                        f"most {kept_most} may be kept (PLAYGROUND_MAX_JOBS_PER_STUDENT_TOTAL). "
                        "Delete old runs or sweep fewer values.", None)
    total = store.count_jobs()
    if n and total + n > settings.max_jobs_total:
        return (f"This sweep would add {n} jobs to the {total} this server holds, past its "
                f"maximum of {settings.max_jobs_total}; delete finished jobs or sweep fewer "
                "values.", None)
    if limited and active and store.count_active_total() + active > settings.max_active_jobs:
        return SERVER_FULL, RETRY_LATER
    return None


def _admit(body: sweeps.SweepRequest, request: Request, settings: Settings, store,
           sweep_db: SweepStore, datasets, token: str | None,
           viewer: Viewer) -> tuple[str, str, list[tuple[str, sweeps.Variant]]]:
    """Check the sweep and store its jobs and itself, as POST /api/jobs stores one job:
    (sweep id, token, [(job id, variant)])."""
    if not settings.is_open and not is_member(settings, token):
        raise HTTPException(401, JOIN_FIRST)
    found, parameters = _checked(body, settings, datasets, viewer)
    teacher = is_teacher(settings, token)
    sweep_token = token if token and not teacher else secrets.token_urlsafe(18)
    owner = _owner(settings, token, request)
    address = request.client.host if request.client else None
    limited = _limited(settings, teacher)
    refusal = disk.storage_refusal(settings, store, owner if limited else None, parameters,
                                   any(v.spec.training.early_stopping for v in found))
    if refusal is not None:
        raise HTTPException(*refusal)
    active = len(found) if body.base.start else 0
    refused = _refusal(store, settings, owner, address, limited, len(found), active)
    if refused is not None:
        raise HTTPException(429, refused[0], headers=refused[1])
    created: list[tuple[str, sweeps.Variant]] = []
    try:
        for variant in found:
            spec = variant.spec
            row = store.create_job(
                token=sweep_token, owner=owner, spec=spec.model_dump(mode="json"),
                name=spec.name, status="queued" if spec.start else "paused",
                max_total=settings.max_jobs_total,
                max_active_for_owner=settings.max_active_jobs_per_client if limited else None,
                max_active=settings.max_active_jobs if limited else None,
                address=address, quota=quota_scopes(settings, owner, address),
                max_kept_for_owner=settings.max_jobs_per_student_total if limited else None)
            created.append((row["id"], variant))
        sweep_id = sweep_db.create(
            token=sweep_token, owner=owner, name=body.base.name,
            base=body.base.model_dump(mode="json"),
            axes=[a.model_dump(mode="json", exclude_none=True) for a in body.axes],
            mode=body.mode, count=body.count if body.mode == "random" else None,
            variants=[(job_id, v.values) for job_id, v in created])
    except BaseException as exc:
        for job_id, _ in created:  # all or none: another request took the last places
            store.delete_job(job_id)
        if isinstance(exc, LimitReached):
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            raise HTTPException(429, str(exc), headers=headers) from None
        raise
    return sweep_id, sweep_token, created


async def _all(commands, ignore: tuple[type[Exception], ...] = ()) -> None:
    """Await the engine's answers to `commands` (all queued at once, so the engine takes them
    together); errors of the `ignore` kinds are dropped, the first other one is raised."""
    answers = await asyncio.gather(*(engine_answer(c) for c in list(commands)),
                                   return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, ignore):
            raise answer


@router.post("/sweeps", status_code=201)
async def create_sweep(body: sweeps.SweepRequest, request: Request, settings: SettingsDep,
                       store: StoreDep, datasets: DatasetsDep, engine: EngineDep,
                       token: TokenDep, viewer: ViewerDep) -> dict:
    """Make one job per variant of `base` along `axes` (grid: every combination; random:
    `count` draws seeded by the base's training seed), all under one token."""
    sweep_id, sweep_token, created = await run_in_threadpool(
        _admit, body, request, settings, store, sweep_store(request), datasets, token, viewer)
    await _all(engine.create(job_id, variant.spec) for job_id, variant in created)
    return {"id": sweep_id, "token": sweep_token, "jobs": [job_id for job_id, _ in created]}


# -- reading and acting -----------------------------------------------------------------------

@router.get("/sweeps")
def list_sweeps(request: Request, settings: SettingsDep, store: StoreDep, engine: EngineDep,
                token: TokenDep) -> dict:
    """The caller's sweeps (those of its token), or every sweep for a teacher or an open
    server, each as GET /api/sweeps/{id} shows it."""
    progress = engine.progress_all()
    if settings.is_open or is_teacher(settings, token):
        found, rows = sweep_store(request).list(), store.list_jobs()
    elif token:
        found, rows = sweep_store(request).list(token), store.list_jobs(token=token)
    else:
        found, rows = [], []
    by_id = {r["id"]: r for r in rows}
    return {"sweeps": [sweep_view(s, by_id, progress) for s in found]}


@router.get("/sweeps/{sweep_id}")
def get_sweep(sweep_id: str, request: Request, store: StoreDep, engine: EngineDep,
              token: TokenDep) -> dict:
    sweep = authorize_sweep(request, sweep_id, token)
    for v in sweep["variants"]:
        engine.watched(v["job"])  # a script that polls its sweep watches its jobs
    return _view(store, engine, sweep)


def _resume_refusal(store, settings: Settings, token: str | None,
                    paused: list[dict]) -> tuple[str, dict | None] | None:
    """Why resuming the `paused` jobs of a sweep (one owner's) would pass a limit of running
    jobs, or None: as deps.resume_refusal, for them all at once."""
    if not paused or settings.is_open or is_teacher(settings, token):
        return None
    first = paused[0]
    return _refusal(store, settings, first["owner"], first.get("address"), True, 0, len(paused))


@router.post("/sweeps/{sweep_id}/control")
async def control_sweep(sweep_id: str, body: SweepControl, request: Request,
                        settings: SettingsDep, store: StoreDep, engine: EngineDep,
                        token: TokenDep) -> dict:
    """Pause, resume or stop every job of the sweep that the action applies to (a finished or
    deleted one is left as it is). Resuming passes the job limits as a whole or not at all."""
    sweep = await run_in_threadpool(authorize_sweep, request, sweep_id, token)
    progress = engine.progress_all()
    rows = [r for r in (store.get_job(v["job"]) for v in sweep["variants"]) if r is not None]
    targets = [r for r in rows
               if (progress.get(r["id"]) or {}).get("status", r["status"]) in ACTS_ON[body.action]]
    if body.action == "resume":
        refused = await run_in_threadpool(_resume_refusal, store, settings, token, targets)
        if refused is not None:
            raise HTTPException(429, refused[0], headers=refused[1])
    # A job that finished or was deleted meanwhile has nothing left to do.
    await _all((engine.control(row["id"], body.action) for row in targets),
               ignore=(Conflict, JobNotFound))
    return _view(store, engine, sweep)


@router.delete("/sweeps/{sweep_id}", status_code=204)
async def delete_sweep(sweep_id: str, request: Request, engine: EngineDep,
                       token: TokenDep) -> Response:
    """Delete the sweep and every job of it."""
    sweep = await run_in_threadpool(authorize_sweep, request, sweep_id, token)
    await _all((engine.delete(v["job"]) for v in sweep["variants"]),
               ignore=(JobNotFound,))  # a job deleted on its own before
    await run_in_threadpool(sweep_store(request).delete, sweep_id)
    return Response(status_code=204)
