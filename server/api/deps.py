"""Shared dependencies as Annotated aliases: settings and the objects the lifespan made."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from server.api.classroom.tokens import bearer_header, caller_token, is_teacher, same_secret
from server.api.errors import JOB_NOT_FOUND, NOT_YOURS, TOKEN_NEEDED, NotYours, TokenNeeded
from server.config import Settings, is_loopback
from server.data.registry import DataRegistry
from server.engine.engine import Engine, JobNotFound
from server.store import SERVER_FULL, Store
from server.stream.hub import Hub


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _datasets(request: Request) -> DataRegistry:
    return request.app.state.datasets


def _store(request: Request) -> Store:
    return request.app.state.store


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _hub(request: Request) -> Hub:
    return request.app.state.hub


SettingsDep = Annotated[Settings, Depends(_settings)]
DatasetsDep = Annotated[DataRegistry, Depends(_datasets)]
StoreDep = Annotated[Store, Depends(_store)]
EngineDep = Annotated[Engine, Depends(_engine)]
HubDep = Annotated[Hub, Depends(_hub)]


# -- who may touch a job (API.md: "Who may touch a job") ------------------------------------

# The sentences and statuses of a refusal are in errors.py's table (re-exported for callers).
__all__ = ["JOB_NOT_FOUND", "NOT_YOURS", "TOKEN_NEEDED", "bearer_header", "is_teacher"]


def bearer_token(request: HTTPConnection) -> str | None:
    """The caller's token: `Authorization: Bearer <token>`, a websocket's `?token=`, else the
    teacher's or student's class cookie (classroom/tokens.py reads it, for the checks too)."""
    return caller_token(request)


def authorize_job(store: Store, settings: Settings, job_id: str, token: str | None) -> dict:
    """The job's row if `token` may touch it: JobNotFound (404), else TokenNeeded or NotYours
    (403) when the server is not open and the token is neither the job's nor the teacher's.
    Websockets call it with their `?token=`."""
    job = store.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    if settings.is_open or is_teacher(settings, token):
        return job
    if token is None:
        raise TokenNeeded()
    if not same_secret(token, job["token"]):
        raise NotYours()
    return job


def _token(request: Request) -> str | None:
    return bearer_token(request)


def _authorized_job(job_id: str, request: Request) -> dict:
    app = request.app
    return authorize_job(app.state.store, app.state.settings, job_id, bearer_token(request))


TokenDep = Annotated[str | None, Depends(_token)]
AuthorizedJobDep = Annotated[dict, Depends(_authorized_job)]  # routes with a `{job_id}` path


def quota_scopes(settings: Settings, owner: str,
                 address: str | None) -> tuple[tuple[str, str], ...]:
    """Who a per-student limit counts (settings.quota_key): the owner (the student's token),
    the client's address, or each of them, so that joining again under another name gives no
    fresh quota. Store.quota_refusal counts each. A loopback address names no one (this
    machine, or a local proxy not in settings.trusted_proxies): then the token alone counts."""
    if address is not None and is_loopback(address):
        address = None
    scopes: list[tuple[str, str]] = []
    if settings.quota_key in ("token", "token+address") or address is None:
        scopes.append(("owner", owner))
    if settings.quota_key in ("address", "token+address") and address is not None:
        scopes.append(("address", address))
    return tuple(scopes)


def resume_refusal(store: Store, settings: Settings, job: dict, token: str | None) -> str | None:
    """Why resuming `job` would pass a limit of running or queued jobs (its owner's, then the
    server's), or None. The limits hold in class mode only, and never for the teacher; REST
    and the stream both ask here."""
    if job["status"] not in ("paused", "completed") or settings.is_open:
        return None
    if is_teacher(settings, token):
        return None
    refusal = store.quota_refusal(quota_scopes(settings, job["owner"], job.get("address")),
                                  max_active=settings.max_active_jobs_per_client)
    if refusal is not None:
        return refusal
    if store.count_active_total() >= settings.max_active_jobs:
        return SERVER_FULL
    return None
