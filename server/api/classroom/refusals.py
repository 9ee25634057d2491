"""What a request refused before any route is told, and how it is counted.

The sentences (tests assert them exactly; each says what to do), the websocket close codes,
the ASGI answers the middlewares of checks.py and limits.py send (a JSON 4xx, a refused or
closed websocket, the safety headers on every page), and `GuardState`: the counts /metrics
shows (refusals by reason, open websockets) and the request-rate bucket, one per app
(`app.state.guard`).
"""

from __future__ import annotations

import json

from server.api.classroom.tokens import STUDENT_COOKIE, TEACHER_COOKIE
from server.config import Settings
from server.ratelimit import RateLimiter

HOST_REFUSED = ("This server does not answer to that address; open the address your teacher "
                "gave you (or add it to PLAYGROUND_ALLOWED_HOSTS).")
ORIGIN_REFUSED = ("Requests from another site are refused; open the playground from its own "
                  "address (or add that site to PLAYGROUND_ALLOWED_ORIGINS).")
JOIN_FIRST = "Join the class first: open the playground and enter the class code from your teacher."
TOO_MANY_REQUESTS = "Too many requests; wait a moment and try again."
TOO_MANY_STREAMS = "Too many live views open; close another tab of the playground first."
BODY_TOO_LARGE = ("The request is larger than this server accepts (PLAYGROUND_MAX_BODY_BYTES); "
                  "a job spec needs only a few kilobytes.")
IDLE_STREAM = "Closed after a long time with nothing sent; reload to watch again"
BAD_TOKEN = ("That token is not one this server gives out (tokens are printable ASCII: "
             "letters, digits and - _ .); join the class again or send the token you were given.")
SIGNED_OUT = ("This sign-in has ended (you signed out, or the teacher removed you from the "
              "class); join the class again.")
DOCS_OFF = ("The API documentation is off on this server; the operator can turn it on with "
            "PLAYGROUND_API_DOCS=on.")

CLOSE_REFUSED = 4403
CLOSE_LIMIT = 4429
CLOSE_IDLE = 4408
CLOSE_SIGNED_OUT = 4401

REASONS = ("host", "origin", "rate", "body", "join", "jobs", "streams", "token")

# Sent with a 401 for a bad token: a browser holding a bad cookie is then free of it.
CLEAR_COOKIES = [(b"set-cookie", f"{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict".encode())
                 for name in (STUDENT_COOKIE, TEACHER_COOKIE)]

SAFETY_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),  # no other site may frame a page and click for you
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class GuardState:
    """One app's refusal counts (reason -> count), open websockets (all, and per client key)
    and request-rate bucket."""

    def __init__(self, settings: Settings) -> None:
        self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.refused: dict[str, int] = {}
        self.sockets: dict[str, int] = {}
        self.sockets_open = 0

    def count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


def guard_state(scope) -> GuardState:
    return scope["app"].state.guard


def settings_of(scope) -> Settings:
    return scope["app"].state.settings


def header(scope, name: bytes) -> str | None:
    """The last value of a request header (lower-case `name`), as the checks read it."""
    found = None
    for key, value in scope["headers"]:
        if key.lower() == name:
            found = value.decode("latin-1")
    return found


def from_cookie(scope) -> bool:
    """Whether an HTTP request's token came from a cookie (no Authorization header)."""
    scheme, _, value = (header(scope, b"authorization") or "").partition(" ")
    return not (scheme.lower() == "bearer" and value.strip())


async def send_json(send, status: int, detail: str, headers: dict[str, str] | None = None,
                    raw_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    raw += raw_headers or []
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def refuse_handshake(receive, send) -> None:
    """Refuse a websocket handshake (the client sees a 403)."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": CLOSE_REFUSED})


async def accept_and_close(receive, send, code: int, reason: str) -> None:
    """Accept a websocket, then close it with `code`: the page takes a 44xx code as final and
    shows the reason, where a refused handshake would look like a network fault."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code, "reason": reason})


async def deny_websocket(scope, receive, send, status: int, detail: str) -> None:
    """Refuse a websocket handshake with an HTTP status and a JSON body where the server can
    (ASGI's websocket.http.response extension), else with a plain refusal (403)."""
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": CLOSE_REFUSED})
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})
