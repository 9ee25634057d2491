"""The classroom: students join with a class code, the teacher signs in and sees every job.

Routes: `GET /api/class` (who am I, the mode, the limits; the class code for the teacher),
`POST /api/class/join` (a student's token, also as an HttpOnly cookie), `POST
/api/class/teacher/login` and `/logout` (a teacher session, also as a cookie), `GET
/api/class/jobs` (every job with its student's name, teacher only), and the pages `/teacher`
and `/join` (in class mode `/` sends a browser that has not joined there).

A student's token is the token their jobs are created under, so `deps.authorize_job` keeps
students apart; the teacher's session passes `deps.is_teacher`. The checks that run before
any route (Host, Origin, rate, sizes, who may create) are in security.py; `install(app)` adds
them and the sweeper that stops jobs paused for longer than `settings.idle_job_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
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
from server.api.deps import SettingsDep, StoreDep, TokenDep, is_teacher
from server.api.jobs import job_view
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
STUDENT_COOKIE_SECONDS = 30 * 24 * 3600
WRONG_ATTEMPTS_BURST = 10  # wrong passwords or class codes per address at once,
WRONG_ATTEMPTS_SECONDS = 6.0  # then one more every this many seconds


def _failures(request: Request) -> tuple[security.RateLimiter, str]:
    state = request.app.state
    if not hasattr(state, "wrong_attempts"):
        state.wrong_attempts = security.RateLimiter(1 / WRONG_ATTEMPTS_SECONDS,
                                                    WRONG_ATTEMPTS_BURST)
    return state.wrong_attempts, request.client.host if request.client else "unknown"


def _check_attempts(request: Request) -> None:
    """429 while this address has used up its wrong attempts (they come back slowly)."""
    limiter, address = _failures(request)
    wait = limiter.wait(address)
    if wait > 0:
        raise HTTPException(429, TOO_MANY_ATTEMPTS,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _failed(request: Request) -> None:
    limiter, address = _failures(request)
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
    _check_attempts(request)
    name = _clean_name(body.name)
    if not hmac.compare_digest(body.code.strip().upper().encode(),
                                        security.class_code(settings).upper().encode()):
        _failed(request)
        raise HTTPException(403, WRONG_CODE)
    if security.student_name(settings, token) != name:
        token = security.student_token(settings, name)
    _cookie(response, request, security.STUDENT_COOKIE, token, STUDENT_COOKIE_SECONDS)
    return {"token": token, "name": name, "role": "student"}


@router.post("/class/teacher/login")
async def teacher_login(body: LoginRequest, request: Request, response: Response,
                        settings: SettingsDep) -> dict:
    """The teacher signs in: a session token (also as an HttpOnly cookie), valid 12 hours."""
    _check_attempts(request)
    expected = security.teacher_password(settings)
    if not hmac.compare_digest(body.password.encode(), expected.encode()):
        _failed(request)
        await asyncio.sleep(0.5)  # slows guessing further
        raise HTTPException(401, WRONG_PASSWORD)
    token = security.teacher_session(settings)
    _cookie(response, request, security.TEACHER_COOKIE, token, security.TEACHER_SESSION_SECONDS)
    return {"token": token, "role": "teacher", "class_code": security.class_code(settings),
            "expires_in": security.TEACHER_SESSION_SECONDS}


@router.post("/class/teacher/logout")
def teacher_logout(response: Response) -> dict:
    response.delete_cookie(security.TEACHER_COOKIE, path="/")
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
        view["student"] = security.student_name(settings, row["token"])
        jobs.append(view)
    return {"jobs": jobs}


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
