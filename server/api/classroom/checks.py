"""The checks that refuse a request before any route, one small ASGI middleware each.

In the order a request meets them (`install` in __init__.py adds them; limits.py holds the
rate, size and stream limits that run between them):

- `SafetyHeaders`: every HTTP answer says no other site may frame it or sniff its type.
- `HostOrigin`: a Host this server is not (DNS rebinding) is refused (403), and so is a
  cross-site Origin on anything but GET/HEAD/OPTIONS, and on any websocket.
- `BadToken`: a token (header, `?token=` or cookie) no comparison could accept (not printable
  ASCII, too long) is refused with 401 before any route; a bad cookie is cleared.
- `DocsSwitch`: /docs, /redoc and /openapi.json answer 404 unless settings.api_docs allows.
- `SignedOut`: in class mode, a student token this server signed whose student signed out
  or was removed gets 401 (a stream: accepted, then closed with 4401).
- `JoinFirst`: in class mode, `/` sends a browser that has not joined to /join, and
  creating a job or a data set needs a student's or the teacher's token (401).
"""

from __future__ import annotations

from server.api.classroom import refusals
from server.api.classroom.origins import host_allowed, origin_allowed
from server.api.classroom.refusals import guard_state, header, settings_of
from server.api.classroom.tokens import (
    is_member,
    roster,
    scope_token,
    student_id_of,
    well_formed,
)
from server.config import Settings

# Where a bad token or cookie is refused (401): the API, /metrics and streams; not the routes
# that replace the cookie (join, login), so that a browser holding a bad one can recover.
TOKEN_CHECKED_PREFIXES = ("/api/", "/metrics")
TOKEN_UNCHECKED = frozenset({"/api/health", "/api/class/join", "/api/class/teacher/login",
                             "/api/class/teacher/logout", "/api/class/leave"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Requests that create something: in class mode they need a student's or the teacher's token.
CREATING = {("POST", "/api/jobs"), ("POST", "/api/datasets")}


class _Middleware:
    """Passes lifespan and other scopes through; subclasses check `http` and `websocket`."""

    kinds: tuple[str, ...] = ("http", "websocket")

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in self.kinds or not await self.check(scope, receive, send):
            await self.app(scope, receive, send)

    async def check(self, scope, receive, send) -> bool:
        """True when the request was answered here (refused), False to pass it on."""
        raise NotImplementedError


class SafetyHeaders:
    """Adds refusals.SAFETY_HEADERS to every HTTP answer that does not set them itself."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in refusals.SAFETY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, wrapped)


class HostOrigin(_Middleware):
    """403 for a Host this server is not, or a cross-site Origin (see the module)."""

    async def check(self, scope, receive, send) -> bool:
        settings, guard = settings_of(scope), guard_state(scope)
        host, origin = header(scope, b"host"), header(scope, b"origin")
        if scope["type"] == "websocket":
            host_ok = host_allowed(settings, host)
            if host_ok and origin_allowed(settings, origin, host, scope.get("scheme", "ws")):
                return False
            guard.count("origin" if host_ok else "host")
            await refusals.refuse_handshake(receive, send)  # the client sees a 403
            return True
        if not host_allowed(settings, host):
            guard.count("host")
            await refusals.send_json(send, 403, refusals.HOST_REFUSED)
            return True
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and not origin_allowed(
                settings, origin, host, scope.get("scheme", "http")):
            guard.count("origin")
            await refusals.send_json(send, 403, refusals.ORIGIN_REFUSED)
            return True
        return False


class BadToken(_Middleware):
    """401 for a token that is not printable ASCII or is too long, on a checked path."""

    async def check(self, scope, receive, send) -> bool:
        token, path = scope_token(scope), scope["path"]
        if (token is None or well_formed(token) or not path.startswith(TOKEN_CHECKED_PREFIXES)
                or path in TOKEN_UNCHECKED):
            return False
        guard_state(scope).count("token")
        if scope["type"] == "websocket":
            await refusals.deny_websocket(scope, receive, send, 401, refusals.BAD_TOKEN)
        else:
            await refusals.send_json(
                send, 401, refusals.BAD_TOKEN,
                raw_headers=refusals.CLEAR_COOKIES if refusals.from_cookie(scope) else None)
        return True


def docs_enabled(settings: Settings) -> bool:
    """Whether /docs, /redoc and /openapi.json are served (settings.api_docs)."""
    if settings.api_docs == "auto":
        return settings.is_open
    return settings.api_docs == "on"


class DocsSwitch(_Middleware):
    """404 for the API documentation while settings.api_docs keeps it off."""

    kinds = ("http",)

    async def check(self, scope, receive, send) -> bool:
        if scope["path"] not in DOCS_PATHS or docs_enabled(settings_of(scope)):
            return False
        await refusals.send_json(send, 404, refusals.DOCS_OFF)
        return True


def sign_in_ended(settings: Settings, path: str, token: str | None) -> bool:
    """In class mode, a student token this server signed that no longer works (signed out,
    removed by the teacher) on a checked path; `GET /api/class` still answers (who am I:
    nobody) so that the page can send the browser to the join page. A forged token is not
    one: it passes on, to be refused like any stranger's (403)."""
    if (settings.is_open or token is None or not token.startswith("s.")
            or not path.startswith(TOKEN_CHECKED_PREFIXES) or path in TOKEN_UNCHECKED
            or path == "/api/class"):
        return False
    student_id = student_id_of(settings, token, revoked_too=True)
    return student_id is not None and roster(settings).is_revoked(student_id)


class SignedOut(_Middleware):
    """401 (a stream: 4401 after accepting) for a student whose sign-in has ended."""

    async def check(self, scope, receive, send) -> bool:
        token = scope_token(scope)
        if not sign_in_ended(settings_of(scope), scope["path"], token):
            return False
        guard_state(scope).count("token")
        if scope["type"] == "websocket":
            # The page takes 4401 as final (no retries) and shows the reason.
            await refusals.accept_and_close(receive, send, refusals.CLOSE_SIGNED_OUT,
                                            refusals.SIGNED_OUT)
        else:
            cookie = refusals.CLEAR_COOKIES[:1] if refusals.from_cookie(scope) else None
            await refusals.send_json(send, 401, refusals.SIGNED_OUT, raw_headers=cookie)
        return True


class JoinFirst(_Middleware):
    """In class mode: `/` sends a stranger to /join (303); creating needs a member (401)."""

    kinds = ("http",)

    async def check(self, scope, receive, send) -> bool:
        settings = settings_of(scope)
        method, path = scope["method"], scope["path"]
        if settings.is_open:
            return False
        if method == "GET" and path == "/" and not is_member(settings, scope_token(scope)):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/join"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return True
        if (method, path.rstrip("/")) in CREATING and not is_member(settings, scope_token(scope)):
            guard_state(scope).count("join")
            await refusals.send_json(send, 401, refusals.JOIN_FIRST)
            return True
        return False
