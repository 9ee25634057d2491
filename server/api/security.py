"""Classroom security: signed tokens, Host and Origin allow-lists, request limits.

What is here:
- `ClassKeys`: the secret that signs student and teacher-session tokens, and the generated
  teacher password and class code, kept in `<data_dir>/classroom.json` (mode 0600) so that
  tokens and the code outlive a restart.
- Tokens: a student token `s.<id>.<name>.<sig>` carries the student's name (base64) and is
  checked by its HMAC, so no table is needed; a teacher session `t.<expiry>.<nonce>.<sig>` is
  bound to the current teacher password (changing it signs every teacher out).
- `host_allowed` / `origin_allowed`: refuse DNS rebinding (a Host this server is not) and
  cross-site requests and websockets (an Origin that is not the page's own or an allowed one).
- `Guard`: a pure ASGI middleware applying those checks and the limits (request rate, body
  size, who may create, streams per student, idle streams) before any route runs. It also runs
  the app's background sweeper for as long as the app lives (from its lifespan messages).
- Revocation: a student token whose id the roster (roster.py) has removed, or a teacher session
  whose nonce was logged out, is no token; a token that is not printable ASCII is refused with
  401 before any route (comparing it would fail).

What is not here: the routes (classroom.py) and who may touch which job (deps.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import cookie_parser

from server.api.roster import Roster, roster_at
from server.config import Settings, is_loopback
from server.ratelimit import RateLimiter

STUDENT_COOKIE = "playground_student"
TEACHER_COOKIE = "playground_teacher"
TEACHER_SESSION_SECONDS = 12 * 3600
MAX_NAME_CHARS = 40

# Short fixed messages (tests assert them exactly); each says what to do.
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

# Requests that create something: in class mode they need a student's or the teacher's token.
CREATING = {("POST", "/api/jobs"), ("POST", "/api/datasets")}
UNLIMITED_PREFIXES = ("/static/", "/api/health", "/metrics")
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
# Where a bad token or cookie is refused (401): the API, /metrics and streams; not the routes
# that replace the cookie (join, login), so that a browser holding a bad one can recover.
TOKEN_CHECKED_PREFIXES = ("/api/", "/metrics")
TOKEN_UNCHECKED = frozenset({"/api/health", "/api/class/join", "/api/class/teacher/login",
                             "/api/class/teacher/logout", "/api/class/leave"})
MAX_TOKEN_CHARS = 1024


# -- keys and tokens -------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassKeys:
    """The signing secret and the generated teacher password and class code of one data dir."""

    secret: bytes
    teacher_password: str
    class_code: str


def _new_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in a classroom
    return "".join(secrets.choice(alphabet) for _ in range(6))


@lru_cache(maxsize=32)
def _load_keys(path: Path) -> ClassKeys:
    if path.exists():
        data = json.loads(path.read_text())
    else:
        data = {"secret": secrets.token_hex(32), "teacher_password": secrets.token_urlsafe(9),
                "class_code": _new_code()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        try:
            os.link(tmp, path)  # first writer wins when two processes start at once
        except FileExistsError:
            data = json.loads(path.read_text())
        finally:
            tmp.unlink(missing_ok=True)
    return ClassKeys(bytes.fromhex(data["secret"]), data["teacher_password"], data["class_code"])


def class_keys(settings: Settings) -> ClassKeys:
    return _load_keys(Path(settings.data_dir).resolve() / "classroom.json")


def teacher_password(settings: Settings) -> str:
    return settings.teacher_password or class_keys(settings).teacher_password


def class_code(settings: Settings) -> str:
    return settings.class_code or class_keys(settings).class_code


def roster(settings: Settings) -> Roster:
    return roster_at(Path(settings.data_dir).resolve() / "classroom.sqlite3")


def well_formed(token: str | None) -> bool:
    """Whether `token` could be one this server gave out (or an operator's teacher token):
    printable ASCII, not too long."""
    return token is not None and 0 < len(token) <= MAX_TOKEN_CHARS and all(
        " " <= c <= "~" for c in token)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time equality that never raises (hmac refuses non-ASCII str)."""
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


def _sign(settings: Settings, message: str) -> str:
    digest = hmac.new(class_keys(settings).secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def student_token(settings: Settings, name: str) -> str:
    body = f"s.{secrets.token_hex(6)}.{_b64(name)}"
    return f"{body}.{_sign(settings, body)}"


def student_name(settings: Settings, token: str | None,
                 revoked_too: bool = False) -> str | None:
    """The name in a valid student token that was not revoked (or was, with `revoked_too`:
    the teacher's lists still name a student who signed out), else None."""
    student_id = student_id_of(settings, token, revoked_too)
    if student_id is None:
        return None
    try:
        return _unb64(token.split(".")[2])
    except ValueError:
        return None


def student_id_of(settings: Settings, token: str | None,
                  revoked_too: bool = False) -> str | None:
    """The id (`s.<id>...`) of a valid student token not revoked (or revoked too, with
    `revoked_too`), else None."""
    if not well_formed(token) or not token.startswith("s.") or token.count(".") != 3:
        return None
    body, _, sig = token.rpartition(".")
    if not same_secret(sig, _sign(settings, body)):
        return None
    student_id = body.split(".")[1]
    return student_id if revoked_too or not roster(settings).is_revoked(student_id) else None


def teacher_session(settings: Settings) -> str:
    body = f"t.{int(time.time()) + TEACHER_SESSION_SECONDS}.{secrets.token_hex(8)}"
    return f"{body}.{_sign(settings, body + '.' + teacher_password(settings))}"


def is_teacher_session(settings: Settings, token: str | None) -> bool:
    """True for an unexpired teacher session signed under the current password and not
    logged out."""
    if not well_formed(token) or not token.startswith("t.") or token.count(".") != 3:
        return False
    body, _, sig = token.rpartition(".")
    try:
        expiry = int(body.split(".")[1])
    except ValueError:
        return False
    expected = _sign(settings, body + "." + teacher_password(settings))
    return (expiry > time.time() and same_secret(sig, expected)
            and not roster(settings).is_session_revoked(body.split(".")[2]))


def end_teacher_session(settings: Settings, token: str | None) -> bool:
    """Revoke a valid teacher session (logout): it stops working at once, on every tab."""
    if not is_teacher_session(settings, token):
        return False
    _, expiry, nonce, _ = token.split(".")
    roster(settings).revoke_session(nonce, float(expiry))
    return True


def cookie_token(connection) -> str | None:
    """The teacher's session cookie, else the student's, from a Request or WebSocket."""
    cookies = connection.cookies
    return cookies.get(TEACHER_COOKIE) or cookies.get(STUDENT_COOKIE) or None


# -- Host and Origin -------------------------------------------------------------------------

def _split_host(value: str) -> tuple[str, int | None]:
    """('host', port) from a Host header or netloc; IPv6 without brackets; lower case."""
    try:
        parts = urlsplit("//" + value)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _machine_names() -> frozenset[str]:
    names = {"localhost"}
    with contextlib.suppress(OSError):
        name = socket.gethostname().lower()
        names |= {name, name + ".local", socket.getfqdn().lower()}
    return frozenset(n for n in names if n)


def host_allowed(settings: Settings, host_header: str | None) -> bool:
    """Whether a Host header names this server (a DNS-rebinding page names its own domain).
    Ports are not compared: behind Docker or a proxy the outside port differs."""
    host, _ = _split_host(host_header or "")
    if not host:
        return False
    if host == settings.host.lower() or is_loopback(host):
        return True
    if settings.allowed_hosts:
        allowed = {h.lower() for h in settings.allowed_hosts}
        return "*" in allowed or host in allowed
    return _is_ip(host) or host in _machine_names()


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


def origin_allowed(settings: Settings, origin: str | None, host_header: str | None,
                   scheme: str) -> bool:
    """No Origin (not a browser) or the page's own origin (same scheme, host and port as the
    request), or one of settings.allowed_origins. `null` (sandboxed pages, files) is refused."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin in settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    if (parts.scheme not in ("http", "https") or parts.path or parts.query or parts.username
            or not parts.hostname):
        return False
    try:
        origin_port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return False
    own_scheme = "https" if scheme in ("https", "wss") else "http"
    host, port = _split_host(host_header or "")
    return (parts.scheme == own_scheme and parts.hostname == host
            and origin_port == (port or _default_port(own_scheme)))


# -- the rate limit --------------------------------------------------------------------------

# RateLimiter lives in server/ratelimit.py (the stream's connect limit uses it too).


# -- the middleware --------------------------------------------------------------------------

def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _scope_token(scope, headers: dict[str, str]) -> str | None:
    """The caller's token: Authorization header, ?token= (websockets), else a cookie."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scope["type"] == "websocket":
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0]
    if "cookie" in headers:
        jar = cookie_parser(headers["cookie"])  # as Starlette reads them for the routes
        for name in (TEACHER_COOKIE, STUDENT_COOKIE):
            if jar.get(name):
                return jar[name]
    return None


# Sent with a 401 for a bad token: a browser holding a bad cookie is then free of it.
CLEAR_COOKIES = [(b"set-cookie", f"{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict".encode())
                 for name in (STUDENT_COOKIE, TEACHER_COOKIE)]


def _from_cookie(headers: dict[str, str]) -> bool:
    """Whether an HTTP request's token came from a cookie (no Authorization header)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return not (scheme.lower() == "bearer" and value.strip())


def _token_refused(path: str, token: str | None) -> bool:
    """A token (header, ?token= or cookie) that no comparison could accept, on a checked path."""
    return (token is not None and not well_formed(token)
            and path.startswith(TOKEN_CHECKED_PREFIXES) and path not in TOKEN_UNCHECKED)


def _sign_in_ended(settings: Settings, path: str, token: str | None) -> bool:
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


def docs_enabled(settings: Settings) -> bool:
    """Whether /docs, /redoc and /openapi.json are served (settings.api_docs)."""
    if settings.api_docs == "auto":
        return settings.is_open
    return settings.api_docs == "on"


async def _send_json(send, status: int, detail: str, headers: dict[str, str] | None = None,
                     raw_headers: list[tuple[bytes, bytes]] | None = None):
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    raw += raw_headers or []
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


SAFETY_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),  # no other site may frame a page and click for you
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def _with_safety_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [(k, v) for k, v in SAFETY_HEADERS if k not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


class Guard:
    """ASGI middleware: Host, Origin, rate, body size, membership, job and stream limits.

    `sweeper(app)` is a coroutine run from the app's start-up to its shutdown (idle jobs)."""

    def __init__(self, app, sweeper: Callable | None = None) -> None:
        self.app = app
        self.sweeper = sweeper
        self.limiter: RateLimiter | None = None
        self.sockets: dict[str, int] = {}  # open streams per client key
        self.sockets_open = 0
        self.refused: dict[str, int] = {}  # reason -> count, for /metrics

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        settings: Settings = app.state.settings
        app.state.guard = self
        if self.limiter is None:
            self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        headers = _headers(scope)
        if kind == "websocket":
            await self._websocket(scope, receive, send, settings, headers)
        else:
            await self._http(scope, receive, send, settings, headers)

    def _count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def _client_key(self, scope, token: str | None, settings: Settings) -> str:
        """A class member's token (made-up tokens would each get a fresh bucket), else the
        address."""
        if token and (student_name(settings, token) or _is_teacher(settings, token)):
            return "token:" + token
        client = scope.get("client")
        return "address:" + (client[0] if client else "unknown")

    def _rate_wait(self, scope, settings: Settings, token: str | None) -> float:
        path = scope["path"]
        if settings.is_open or path.startswith(UNLIMITED_PREFIXES) or self.limiter is None:
            return 0.0
        return self.limiter.take(self._client_key(scope, token, settings))

    async def _http(self, scope, receive, send, settings: Settings, headers) -> None:
        method, path = scope["method"], scope["path"]
        send = _with_safety_headers(send)
        if not host_allowed(settings, headers.get("host")):
            self._count("host")
            await _send_json(send, 403, HOST_REFUSED)
            return
        if method not in ("GET", "HEAD", "OPTIONS") and not origin_allowed(
                settings, headers.get("origin"), headers.get("host"), scope.get("scheme", "http")):
            self._count("origin")
            await _send_json(send, 403, ORIGIN_REFUSED)
            return
        token = _scope_token(scope, headers)
        if _token_refused(path, token):
            self._count("token")
            await _send_json(send, 401, BAD_TOKEN,
                             raw_headers=CLEAR_COOKIES if _from_cookie(headers) else None)
            return
        if path in DOCS_PATHS and not docs_enabled(settings):
            await _send_json(send, 404, DOCS_OFF)
            return
        wait = self._rate_wait(scope, settings, token)
        if wait > 0:
            self._count("rate")
            await _send_json(send, 429, TOO_MANY_REQUESTS,
                             {"retry-after": str(max(1, math.ceil(wait)))})
            return
        if _sign_in_ended(settings, path, token):
            self._count("token")
            await _send_json(send, 401, SIGNED_OUT,
                             raw_headers=CLEAR_COOKIES[:1] if _from_cookie(headers) else None)
            return
        # Uploads count their own bytes against max_upload_bytes (datasets.py, its own 413).
        limit = None if path.rstrip("/") == "/api/datasets" else settings.max_body_bytes
        length = headers.get("content-length", "")
        if limit is not None and length.isdigit() and int(length) > limit:
            self._count("body")
            await _send_json(send, 413, BODY_TOO_LARGE, {"connection": "close"})
            return
        if method == "GET" and path == "/" and not settings.is_open and not (
                student_name(settings, token) or _is_teacher(settings, token)):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/join"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if (method, path.rstrip("/")) in CREATING and not settings.is_open:
            if not (student_name(settings, token) or _is_teacher(settings, token)):
                self._count("join")
                await _send_json(send, 401, JOIN_FIRST)
                return
        await self._call_counting_body(scope, receive, send, limit)

    async def _call_counting_body(self, scope, receive, send, limit: int | None) -> None:
        """Run the app; a body that grows past `limit` without a Content-Length gets a 413."""
        if limit is None:
            await self.app(scope, receive, send)
            return
        seen = 0
        started = too_large = False

        async def counted_receive():
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True  # the app sees a client gone; its answer is replaced
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if too_large:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            self._count("body")
            await _send_json(send, 413, BODY_TOO_LARGE, {"connection": "close"})

    async def _websocket(self, scope, receive, send, settings: Settings, headers) -> None:
        if not host_allowed(settings, headers.get("host")) or not origin_allowed(
                settings, headers.get("origin"), headers.get("host"), scope.get("scheme", "ws")):
            self._count("origin" if host_allowed(settings, headers.get("host")) else "host")
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_REFUSED})  # handshake: 403
            return
        token = _scope_token(scope, headers)
        if _token_refused(scope["path"], token):
            self._count("token")
            await receive()  # websocket.connect
            await _deny_websocket(scope, send, 401, BAD_TOKEN)
            return
        key = self._client_key(scope, token, settings)
        teacher = _is_teacher(settings, token)
        refusal = None
        if self._rate_wait(scope, settings, token) > 0:
            refusal = TOO_MANY_REQUESTS
        elif _sign_in_ended(settings, scope["path"], token):
            # Accepted, then closed with 4401: the page takes that code as final (no retries)
            # and shows the reason, where a refused handshake would look like a network fault.
            self._count("token")
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_SIGNED_OUT, "reason": SIGNED_OUT})
            return
        elif not teacher and self.sockets.get(key, 0) >= settings.max_sockets_per_client:
            refusal = TOO_MANY_STREAMS
        if refusal is not None:
            self._count("rate" if refusal == TOO_MANY_REQUESTS else "streams")
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_LIMIT, "reason": refusal})
            return
        self.sockets[key] = self.sockets.get(key, 0) + 1
        self.sockets_open += 1
        try:
            await self._run_socket(scope, receive, send, settings)
        finally:
            self.sockets_open -= 1
            self.sockets[key] -= 1
            if self.sockets[key] <= 0:
                del self.sockets[key]

    async def _run_socket(self, scope, receive, send, settings: Settings) -> None:
        """Run the app's websocket; close it (4408) when the client sends nothing for long.
        (The job limits on a `resume` are the stream's, as for POST .../control.)"""
        idle_seconds = settings.idle_socket_seconds
        last = time.monotonic()
        closed = False

        async def noted_receive():
            nonlocal last
            message = await receive()
            last = time.monotonic()
            return message

        async def guarded_send(message):
            if not closed:
                await send(message)

        async def watchdog():
            nonlocal closed
            while True:
                await asyncio.sleep(max(0.05, min(5.0, idle_seconds / 4)))
                if time.monotonic() - last > idle_seconds:
                    closed = True
                    with contextlib.suppress(Exception):
                        await send({"type": "websocket.close", "code": CLOSE_IDLE,
                                    "reason": IDLE_STREAM})
                    return

        dog = asyncio.create_task(watchdog()) if idle_seconds > 0 else None
        try:
            await self.app(scope, noted_receive, guarded_send)
        finally:
            if dog is not None:
                dog.cancel()
                with contextlib.suppress(BaseException):
                    await dog

    async def _lifespan(self, scope, receive, send) -> None:
        """Pass the lifespan through; run the sweeper between start-up and shutdown."""
        task: asyncio.Task | None = None

        async def watched_send(message):
            nonlocal task
            await send(message)
            if message["type"] == "lifespan.startup.complete" and self.sweeper is not None:
                task = asyncio.create_task(self.sweeper(scope["app"]))

        async def watched_receive():
            message = await receive()
            if message["type"] == "lifespan.shutdown" and task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            return message

        await self.app(scope, watched_receive, watched_send)


def _is_teacher(settings: Settings, token: str | None) -> bool:
    if token and settings.teacher_token and same_secret(token, settings.teacher_token):
        return True
    return is_teacher_session(settings, token)


async def _deny_websocket(scope, send, status: int, detail: str) -> None:
    """Refuse a websocket handshake with an HTTP status and a JSON body where the server can
    (ASGI's websocket.http.response extension), else with a plain refusal (403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": CLOSE_REFUSED})
        return
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})
