"""The classroom: students join with a class code, the teacher signs in and sees every job.

Routes: `GET /api/class` (who am I, the mode, the limits; the class code for the teacher),
`POST /api/class/join` (a student's token, also as an HttpOnly cookie), `POST /api/class/leave`
(the student signs out: the cookie is cleared and the token revoked, the jobs stay), `POST
/api/class/teacher/login` and `/logout` (a teacher session, also as a cookie; logout ends it on
the server), `GET /api/class/jobs` (every job with its student's name, teacher only), `GET
/api/class/students` and `DELETE /api/class/students/{id}` (the teacher sees who joined and
removes a student: their jobs are deleted and their token revoked), and the pages `/teacher`
and `/join` (in class mode `/` sends a browser that has not joined there).

Wrong class codes and wrong teacher passwords are limited per address separately: a class
behind one NAT address keeps joining while someone guesses the password.

A student's token is the token their jobs are created under, so `deps.authorize_job` keeps
students apart; the teacher's session passes `deps.is_teacher`. The checks that run before
any route (Host, Origin, rate, sizes, who may create) are in security.py; `install(app)` adds
them and the sweeper that stops jobs paused for longer than `settings.idle_job_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
import unicodedata
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from server import __version__
from server.api import security
from server.api.deps import SettingsDep, StoreDep, TokenDep, bearer_header, is_teacher
from server.api.jobs import _iso, job_view
from server.api.jobs import _wait as engine_answer
from server.config import Settings

log = logging.getLogger("playground.classroom")

router = APIRouter(tags=["classroom"])
pages = APIRouter()
templates = Jinja2Templates(
    directory=Path(__file__).resolve().parent.parent.parent / "web" / "templates")

WRONG_CODE = "That is not the class code; ask your teacher for the code on the teacher page."
WRONG_PASSWORD = "Wrong teacher password."
BAD_NAME = "Enter your name (1 to 40 letters, digits or spaces)."
TEACHER_ONLY = "Only the teacher can see this; sign in on the teacher page."
TOO_MANY_ATTEMPTS = "Too many wrong attempts; wait a minute and try again."
IDLE_STOPPED = "stopped: paused for longer than the class allows; its model and curves are kept"
STUDENT_NOT_FOUND = "Student not found"
STUDENT_COOKIE_SECONDS = 30 * 24 * 3600
WRONG_ATTEMPTS_BURST = 10  # wrong teacher passwords per address at once,
WRONG_ATTEMPTS_SECONDS = 6.0  # then one more every this many seconds
# Wrong class codes: a whole class may share one address (NAT) and mistype, so more; the
# code is not the teacher's password, and a guessed code only lets someone join.
WRONG_CODES_BURST = 30
WRONG_CODES_SECONDS = 2.0
LIMITERS = {"login": (WRONG_ATTEMPTS_BURST, WRONG_ATTEMPTS_SECONDS),
            "join": (WRONG_CODES_BURST, WRONG_CODES_SECONDS)}


def _failures(request: Request, kind: str) -> tuple[security.RateLimiter, str]:
    state = request.app.state
    if not hasattr(state, "wrong_attempts"):
        state.wrong_attempts = {name: security.RateLimiter(1 / seconds, burst)
                                for name, (burst, seconds) in LIMITERS.items()}
    return state.wrong_attempts[kind], request.client.host if request.client else "unknown"


def _check_attempts(request: Request, kind: str) -> None:
    """429 while this address has used up its wrong attempts of `kind` ("join" or "login";
    they come back slowly)."""
    limiter, address = _failures(request, kind)
    wait = limiter.wait(address)
    if wait > 0:
        raise HTTPException(429, TOO_MANY_ATTEMPTS,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _failed(request: Request, kind: str) -> None:
    limiter, address = _failures(request, kind)
    limiter.take(address)


class JoinRequest(BaseModel):
    """Body of POST /api/class/join."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(max_length=64, description="The class code the teacher gives.")
    name: str = Field(max_length=200, description="The student's name, shown to the teacher.")


class LoginRequest(BaseModel):
    """Body of POST /api/class/teacher/login."""

    model_config = ConfigDict(extra="forbid")
    password: str = Field(max_length=200)


def _clean_name(name: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", name).split())
    if not 1 <= len(name) <= security.MAX_NAME_CHARS or any(
            unicodedata.category(c)[0] in "CS" and c != " " for c in name):
        raise HTTPException(422, BAD_NAME)
    return name


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def limits(settings: Settings) -> dict:
    """The limits a student meets, for the pages."""
    return {
        "max_active_jobs_per_student": settings.max_active_jobs_per_client,
        "max_jobs_per_student_total": settings.max_jobs_per_student_total,
        "quota_key": settings.quota_key,
        "max_active_jobs": settings.max_active_jobs,
        "max_jobs_total": settings.max_jobs_total,
        "max_parameters": settings.max_parameters,
        "max_epochs": settings.max_epochs,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_sockets_per_student": settings.max_sockets_per_client,
        "rate_limit_per_second": settings.rate_limit_per_second,
        "idle_job_seconds": settings.idle_job_seconds,
    }


def lan_addresses() -> list[str]:
    """This machine's likely LAN addresses (no packet is sent: a UDP connect picks a route)."""
    found: list[str] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        found.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    return [a for i, a in enumerate(found) if a not in found[:i] and not a.startswith("127.")]


@router.get("/class")
def class_info(request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """The mode (`open` or `class`), who the caller is, the limits; for the teacher also the
    class code and the addresses students open."""
    teacher = is_teacher(settings, token)
    name = security.student_name(settings, token)
    info: dict = {
        "mode": "open" if settings.is_open else "class",
        "role": "teacher" if teacher else "student" if name else None,
        "name": name,
        "limits": limits(settings),
    }
    if teacher:
        host = request.headers.get("host", f"{settings.host}:{settings.port}")
        urls = [f"{request.url.scheme}://{host}/"]
        urls += [f"http://{a}:{settings.port}/" for a in lan_addresses()
                 if f"{a}:{settings.port}" != host]
        info.update(class_code=security.class_code(settings), student_urls=urls)
    return info


@router.post("/class/join")
def join(body: JoinRequest, request: Request, response: Response, settings: SettingsDep,
         token: TokenDep) -> dict:
    """A student joins: their token (also set as an HttpOnly cookie). Joining again with the
    same name from the same browser gives the same token back, so no job is lost."""
    _check_attempts(request, "join")
    name = _clean_name(body.name)
    if not security.same_secret(body.code.strip().upper(), security.class_code(settings).upper()):
        _failed(request, "join")
        raise HTTPException(403, WRONG_CODE)
    if security.student_name(settings, token) != name:
        token = security.student_token(settings, name)
    security.roster(settings).joined(security.student_id_of(settings, token) or "", name, token,
                                     request.client.host if request.client else None)
    _cookie(response, request, security.STUDENT_COOKIE, token, STUDENT_COOKIE_SECONDS)
    return {"token": token, "name": name, "role": "student"}


@router.post("/class/teacher/login")
async def teacher_login(body: LoginRequest, request: Request, response: Response,
                        settings: SettingsDep) -> dict:
    """The teacher signs in: a session token (also as an HttpOnly cookie), valid 12 hours."""
    _check_attempts(request, "login")
    expected = security.teacher_password(settings)
    if not security.same_secret(body.password, expected):
        _failed(request, "login")
        await asyncio.sleep(0.5)  # slows guessing further
        raise HTTPException(401, WRONG_PASSWORD)
    token = security.teacher_session(settings)
    _cookie(response, request, security.TEACHER_COOKIE, token, security.TEACHER_SESSION_SECONDS)
    return {"token": token, "role": "teacher", "class_code": security.class_code(settings),
            "expires_in": security.TEACHER_SESSION_SECONDS}


@router.post("/class/teacher/logout")
def teacher_logout(request: Request, response: Response, settings: SettingsDep) -> dict:
    """End the teacher's session on the server (the cookie's, and a bearer one): a copied
    session token stops working too."""
    for candidate in (bearer_header(request), request.cookies.get(security.TEACHER_COOKIE)):
        security.end_teacher_session(settings, candidate)
    response.delete_cookie(security.TEACHER_COOKIE, path="/")
    return {"role": None}


@router.post("/class/leave")
def leave(request: Request, response: Response, settings: SettingsDep) -> dict:
    """A student signs out (H1: issue 11, item 12): their cookie is cleared. Their jobs stay
    with the class (the teacher still sees them), but joining again gives a new token, so this
    browser no longer reaches them: what a shared computer needs at the end of a lesson.
    H4 (issue 12): the token is revoked too, so a copy of it (another tab, a script) stops
    working."""
    for candidate in (bearer_header(request), request.cookies.get(security.STUDENT_COOKIE)):
        student_id = security.student_id_of(settings, candidate)
        if student_id is not None:
            name = security.student_name(settings, candidate) or ""
            security.roster(settings).remove(student_id, name, candidate, state="left")
    response.delete_cookie(security.STUDENT_COOKIE, path="/")
    return {"role": None}


@router.get("/class/jobs")
def class_jobs(request: Request, settings: SettingsDep, store: StoreDep,
               token: TokenDep) -> dict:
    """Every job with its student's name (`null` for the teacher's or an API client's)."""
    if not is_teacher(settings, token):
        raise HTTPException(401 if token is None else 403, TEACHER_ONLY)
    progress = request.app.state.engine.progress_all()
    jobs = []
    for row in store.list_jobs():
        view = job_view(row, progress.get(row["id"]))
        view["student"] = security.student_name(settings, row["token"], revoked_too=True)
        jobs.append(view)
    return {"jobs": jobs}


def _teacher_only(settings: Settings, token: str | None) -> None:
    if not is_teacher(settings, token):
        raise HTTPException(401 if token is None else 403, TEACHER_ONLY)


def _students(settings: Settings, store) -> dict[str, dict]:
    """Every student not removed, by id: who joined (the roster) and whoever owns a job under
    a student token (tokens made before the roster kept one), with their job counts."""
    found: dict[str, dict] = {}
    roster = security.roster(settings)
    for entry in roster.students():
        found[entry["id"]] = {**entry, "jobs": 0, "active_jobs": 0}
    for row in store.list_jobs():
        student_id = security.student_id_of(settings, row["token"], revoked_too=True)
        if student_id is None or roster.is_removed(student_id):
            continue
        entry = found.setdefault(student_id, {
            "id": student_id, "name": security.student_name(settings, row["token"], True),
            "token": row["token"], "address": row.get("address"),
            "joined_at": row["created_at"], "seen_at": row["created_at"],
            "state": "left" if roster.is_revoked(student_id) else "joined",
            "jobs": 0, "active_jobs": 0})
        entry["jobs"] += 1
        entry["active_jobs"] += row["status"] in ("queued", "running")
    return found


@router.get("/class/students")
def class_students(settings: SettingsDep, store: StoreDep, token: TokenDep) -> dict:
    """The students who joined (teacher only): id, name, the address they joined from, when,
    and how many jobs they keep (and how many run)."""
    _teacher_only(settings, token)
    students = sorted(_students(settings, store).values(), key=lambda e: e["joined_at"])
    return {"students": [
        {"id": e["id"], "name": e["name"], "address": e["address"], "state": e["state"],
         "joined_at": _iso(e["joined_at"]), "jobs": e["jobs"], "active_jobs": e["active_jobs"]}
        for e in students]}


@router.delete("/class/students/{student_id}")
def remove_student(student_id: str, request: Request, settings: SettingsDep, store: StoreDep,
                   token: TokenDep) -> dict:
    """Remove a student (teacher only): their token stops working at once (the page sends them
    back to the join page) and every job they made is deleted with its files."""
    _teacher_only(settings, token)
    entry = _students(settings, store).get(student_id)
    if entry is None:
        raise HTTPException(404, STUDENT_NOT_FOUND)
    security.roster(settings).remove(student_id, entry["name"] or "", entry["token"])
    engine = request.app.state.engine
    deleted = 0
    for row in store.list_jobs(token=entry["token"]):
        try:
            engine_answer(engine.delete(row["id"]))  # 503 when the engine cannot answer
            deleted += 1
        except HTTPException as exc:
            if exc.status_code != 404:  # 404: deleted meanwhile
                raise
    return {"id": student_id, "name": entry["name"], "deleted_jobs": deleted}


@pages.get("/teacher", response_class=HTMLResponse, include_in_schema=False)
def teacher_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "teacher.html", {"version": __version__})


@pages.get("/join", response_class=HTMLResponse, include_in_schema=False)
def join_page(request: Request) -> HTMLResponse:
    """Where a student enters their name and the class code (`/` sends them here first)."""
    return templates.TemplateResponse(request, "join.html", {"version": __version__})


# -- background: the banner, idle jobs -------------------------------------------------------

def banner(settings: Settings) -> str:
    """What the log says at start in class mode: where students go, the code, the password."""
    hosts = lan_addresses() if settings.host in ("0.0.0.0", "::") else [settings.host]
    urls = ", ".join(f"http://{h}:{settings.port}/" for h in hosts)
    if Path("/.dockerenv").exists() or not urls:  # a container's own address is no use
        urls = "http://<this computer's address>:<published port>/"
    password = ("set by PLAYGROUND_TEACHER_PASSWORD" if settings.teacher_password
                else f"{security.teacher_password(settings)} (generated; set "
                "PLAYGROUND_TEACHER_PASSWORD to choose one)")
    return (f"Class mode. Students open {urls} and join with the class code "
            f"{security.class_code(settings)}. Teacher page: /teacher, password {password}.")


def stop_idle_jobs(app: FastAPI, now: float | None = None) -> list[str]:
    """Stop the jobs paused for longer than settings.idle_job_seconds; their ids."""
    settings: Settings = app.state.settings
    if settings.is_open or settings.idle_job_seconds <= 0:
        return []
    now = time.time() if now is None else now
    store, engine = app.state.store, app.state.engine
    stopped = []
    for row in store.list_jobs():
        if row["status"] == "paused" and now - row["updated_at"] > settings.idle_job_seconds:
            try:
                engine.control(row["id"], "stop").result(timeout=30)
            except Exception as exc:  # deleted meanwhile, engine busy: the next sweep retries
                log.info("idle job %s not stopped: %s", row["id"], exc)
                continue
            store.update_job(row["id"], stop_reason=IDLE_STOPPED)
            stopped.append(row["id"])
    return stopped


async def sweep(app: FastAPI) -> None:
    """From start-up to shutdown: print the class banner, then stop idle jobs now and then."""
    settings: Settings = app.state.settings
    if not settings.is_open:
        print(banner(settings), flush=True)
    interval = min(30.0, max(0.5, settings.idle_job_seconds / 4 or 30.0))
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(stop_idle_jobs, app)
        except Exception:
            log.exception("the idle-job sweep failed")


def install(app: FastAPI) -> None:
    """Add the checks of security.py (outermost) and the sweeper to an app."""
    app.add_middleware(security.Guard, sweeper=sweep)
