"""The class wall: the page `/teacher/wall`, every student's current run as a live tile for
the projector (web/templates/wall.html, web/static/js/wall.js; docs/TEACHERS.md).

Teacher only, checked on the server before any HTML is sent: a browser with no sign-in is
sent to `/teacher` to sign in (303); one signed in as a student, or with a token that is not
the teacher's, gets 403 with a sentence and a link to the sign-in page. An open server (one
person on loopback, no sign-in) shows it to anyone, as it shows `/teacher`. The page itself
reads the same teacher-only routes as the teacher page (`GET /api/class/jobs`,
`GET /api/class/students`) and the jobs' streams; nothing here streams.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server import __version__
from server.api.classroom.sessions import templates
from server.api.classroom.teacher import TEACHER_ONLY
from server.api.deps import bearer_token, is_teacher

pages = APIRouter()

WALL_PATH = "/teacher/wall"
SIGN_IN_PATH = "/teacher"


@pages.get(WALL_PATH, response_class=HTMLResponse, include_in_schema=False)
def wall_page(request: Request) -> Response:
    settings = request.app.state.settings
    token = bearer_token(request)
    if not settings.is_open and not is_teacher(settings, token):
        if token is None:
            return RedirectResponse(SIGN_IN_PATH, status_code=303)
        return HTMLResponse(_refusal(), status_code=403)
    return templates.TemplateResponse(request, "wall.html", {"version": __version__})


def _refusal() -> str:
    """A short page for a browser that is signed in, but not as the teacher."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>Class wall</title></head><body>"
            f"<p>{escape(TEACHER_ONLY)}</p>"
            f"<p><a href=\"{SIGN_IN_PATH}\">{SIGN_IN_PATH}</a></p></body></html>")
