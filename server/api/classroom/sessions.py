"""Who is who in a class: a student joins with the class code and leaves, the teacher signs
in and out, anyone asks who they are; and the two pages where that happens.

Routes: `GET /api/class` (who am I, the mode, the limits; the class code for the teacher),
`POST /api/class/join` (a student's token, also as an HttpOnly cookie), `POST /api/class/leave`
(the student signs out: the cookie is cleared and the token revoked, the jobs stay), `POST
/api/class/teacher/login` and `/logout` (a teacher session, also as a cookie; logout ends it on
the server); the pages `/teacher` and `/join` (in class mode `/` sends a browser that has not
joined there: checks.JoinFirst). Wrong codes and passwords are limited (limits.WrongAttempts).
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from server import __version__
from server.api.classroom import tokens
from server.api.classroom.limits import WrongAttempts
from server.api.classroom.origins import lan_addresses
from server.api.classroom.tokens import MAX_NAME_CHARS
from server.api.deps import SettingsDep, TokenDep, bearer_header, is_teacher
from server.config import Settings

router = APIRouter(tags=["classroom"])
pages = APIRouter()
templates = Jinja2Templates(
    directory=Path(__file__).resolve().parents[3] / "web" / "templates")

WRONG_CODE = "That is not the class code; ask your teacher for the code on the teacher page."
WRONG_PASSWORD = "Wrong teacher password."
BAD_NAME = "Enter your name (1 to 40 letters, digits or spaces)."
STUDENT_COOKIE_SECONDS = 30 * 24 * 3600


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
    if not 1 <= len(name) <= MAX_NAME_CHARS or any(
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


@router.get("/class")
def class_info(request: Request, settings: SettingsDep, token: TokenDep) -> dict:
    """The mode (`open` or `class`), who the caller is, the limits; for the teacher also the
    class code and the addresses students open."""
    teacher = is_teacher(settings, token)
    name = tokens.student_name(settings, token)
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
        info.update(class_code=tokens.class_code(settings), student_urls=urls)
    return info


@router.post("/class/join")
def join(body: JoinRequest, request: Request, response: Response, settings: SettingsDep,
         token: TokenDep) -> dict:
    """A student joins: their token (also set as an HttpOnly cookie). Joining again with the
    same name from the same browser gives the same token back, so no job is lost."""
    attempts = WrongAttempts.of(request)
    attempts.check(request, "join")
    name = _clean_name(body.name)
    if not tokens.same_secret(body.code.strip().upper(), tokens.class_code(settings).upper()):
        attempts.failed(request, "join")
        raise HTTPException(403, WRONG_CODE)
    if tokens.student_name(settings, token) != name:
        token = tokens.student_token(settings, name)
    tokens.roster(settings).joined(tokens.student_id_of(settings, token) or "", name, token,
                                     request.client.host if request.client else None)
    _cookie(response, request, tokens.STUDENT_COOKIE, token, STUDENT_COOKIE_SECONDS)
    return {"token": token, "name": name, "role": "student"}


@router.post("/class/teacher/login")
async def teacher_login(body: LoginRequest, request: Request, response: Response,
                        settings: SettingsDep) -> dict:
    """The teacher signs in: a session token (also as an HttpOnly cookie), valid 12 hours."""
    attempts = WrongAttempts.of(request)
    attempts.check(request, "login")
    expected = tokens.teacher_password(settings)
    if not tokens.same_secret(body.password, expected):
        attempts.failed(request, "login")
        await asyncio.sleep(0.5)  # slows guessing further
        raise HTTPException(401, WRONG_PASSWORD)
    token = tokens.teacher_session(settings)
    _cookie(response, request, tokens.TEACHER_COOKIE, token, tokens.TEACHER_SESSION_SECONDS)
    return {"token": token, "role": "teacher", "class_code": tokens.class_code(settings),
            "expires_in": tokens.TEACHER_SESSION_SECONDS}


@router.post("/class/teacher/logout")
def teacher_logout(request: Request, response: Response, settings: SettingsDep) -> dict:
    """End the teacher's session on the server (the cookie's, and a bearer one): a copied
    session token stops working too."""
    for candidate in (bearer_header(request), request.cookies.get(tokens.TEACHER_COOKIE)):
        tokens.end_teacher_session(settings, candidate)
    response.delete_cookie(tokens.TEACHER_COOKIE, path="/")
    return {"role": None}


@router.post("/class/leave")
def leave(request: Request, response: Response, settings: SettingsDep) -> dict:
    """A student signs out (H1: issue 11, item 12): their cookie is cleared. Their jobs stay
    with the class (the teacher still sees them), but joining again gives a new token, so this
    browser no longer reaches them: what a shared computer needs at the end of a lesson.
    H4 (issue 12): the token is revoked too, so a copy of it (another tab, a script) stops
    working."""
    for candidate in (bearer_header(request), request.cookies.get(tokens.STUDENT_COOKIE)):
        student_id = tokens.student_id_of(settings, candidate)
        if student_id is not None:
            name = tokens.student_name(settings, candidate) or ""
            tokens.roster(settings).remove(student_id, name, candidate, state="left")
    response.delete_cookie(tokens.STUDENT_COOKIE, path="/")
    return {"role": None}


@pages.get("/teacher", response_class=HTMLResponse, include_in_schema=False)
def teacher_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "teacher.html", {"version": __version__})


@pages.get("/join", response_class=HTMLResponse, include_in_schema=False)
def join_page(request: Request) -> HTMLResponse:
    """Where a student enters their name and the class code (`/` sends them here first)."""
    return templates.TemplateResponse(request, "join.html", {"version": __version__})
