"""The classroom's limits: request rate, body size, streams per client and idle streams (one
small ASGI middleware each), and the wrong-attempt limits of the join and login routes.

- `RateLimit`: in class mode, each client (a member's token, else the address) has a token
  bucket (server/ratelimit.py): past it, 429 with Retry-After (a stream: accepted, then
  closed with 4429). Static files, /api/health and /metrics are not limited.
- `BodyLimit`: a body over settings.max_body_bytes gets 413, by its Content-Length or, without
  one, as soon as it grows past the limit (uploads count their own bytes: datasets.py).
- `StreamLimits`: at most settings.max_sockets_per_client open streams per client (not the
  teacher): more are closed with 4429; counts the open streams for /metrics.
- `IdleStreams`: a stream whose client sends nothing for settings.idle_socket_seconds is
  closed with 4408.
- `WrongAttempts`: wrong class codes and wrong teacher passwords per address, separately (a
  class behind one NAT address keeps joining while someone guesses the password).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from fastapi import HTTPException, Request

from server.api.classroom import refusals
from server.api.classroom.checks import _Middleware
from server.api.classroom.refusals import guard_state, header, settings_of
from server.api.classroom.tokens import is_member, is_teacher, scope_token
from server.config import Settings
from server.ratelimit import RateLimiter

UNLIMITED_PREFIXES = ("/static/", "/api/health", "/metrics")

TOO_MANY_ATTEMPTS = "Too many wrong attempts; wait a minute and try again."
WRONG_ATTEMPTS_BURST = 10  # wrong teacher passwords per address at once,
WRONG_ATTEMPTS_SECONDS = 6.0  # then one more every this many seconds
# Wrong class codes: a whole class may share one address (NAT) and mistype, so more; the
# code is not the teacher's password, and a guessed code only lets someone join.
WRONG_CODES_BURST = 30
WRONG_CODES_SECONDS = 2.0
LIMITERS = {"login": (WRONG_ATTEMPTS_BURST, WRONG_ATTEMPTS_SECONDS),
            "join": (WRONG_CODES_BURST, WRONG_CODES_SECONDS)}


def client_key(scope, settings: Settings) -> str:
    """A class member's token (made-up tokens would each get a fresh bucket), else the
    address."""
    token = scope_token(scope)
    if token and is_member(settings, token):
        return "token:" + token
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


class RateLimit(_Middleware):
    """429 (a stream: 4429) past a client's request rate, in class mode."""

    async def check(self, scope, receive, send) -> bool:
        settings = settings_of(scope)
        if settings.is_open or scope["path"].startswith(UNLIMITED_PREFIXES):
            return False
        guard = guard_state(scope)
        wait = guard.limiter.take(client_key(scope, settings))
        if wait <= 0:
            return False
        guard.count("rate")
        if scope["type"] == "websocket":
            await refusals.accept_and_close(receive, send, refusals.CLOSE_LIMIT,
                                            refusals.TOO_MANY_REQUESTS)
        else:
            await refusals.send_json(send, 429, refusals.TOO_MANY_REQUESTS,
                                     {"retry-after": str(max(1, math.ceil(wait)))})
        return True


class BodyLimit:
    """413 for a body over settings.max_body_bytes (not for uploads)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") == "/api/datasets":
            await self.app(scope, receive, send)
            return
        limit = settings_of(scope).max_body_bytes
        length = header(scope, b"content-length") or ""
        if length.isdigit() and int(length) > limit:
            await self._too_large(scope, send)
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
            await self._too_large(scope, send)

    @staticmethod
    async def _too_large(scope, send) -> None:
        guard_state(scope).count("body")
        await refusals.send_json(send, 413, refusals.BODY_TOO_LARGE, {"connection": "close"})


class StreamLimits:
    """At most settings.max_sockets_per_client open streams per client (not the teacher)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        settings, guard = settings_of(scope), guard_state(scope)
        key = client_key(scope, settings)
        if (not is_teacher(settings, scope_token(scope))
                and guard.sockets.get(key, 0) >= settings.max_sockets_per_client):
            guard.count("streams")
            await refusals.accept_and_close(receive, send, refusals.CLOSE_LIMIT,
                                            refusals.TOO_MANY_STREAMS)
            return
        guard.sockets[key] = guard.sockets.get(key, 0) + 1
        guard.sockets_open += 1
        try:
            await self.app(scope, receive, send)
        finally:
            guard.sockets_open -= 1
            guard.sockets[key] -= 1
            if guard.sockets[key] <= 0:
                del guard.sockets[key]


class IdleStreams:
    """Closes a stream (4408) whose client sends nothing for settings.idle_socket_seconds.
    (The job limits on a `resume` are the stream's, as for POST .../control.)"""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        idle_seconds = settings_of(scope).idle_socket_seconds if scope["type"] == "websocket" \
            else 0
        if idle_seconds <= 0:
            await self.app(scope, receive, send)
            return
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
                        await send({"type": "websocket.close", "code": refusals.CLOSE_IDLE,
                                    "reason": refusals.IDLE_STREAM})
                    return

        dog = asyncio.create_task(watchdog())
        try:
            await self.app(scope, noted_receive, guarded_send)
        finally:
            dog.cancel()
            with contextlib.suppress(BaseException):
                await dog


class WrongAttempts:
    """Wrong class codes ("join") and teacher passwords ("login") per address, one bucket
    each (app.state.wrong_attempts)."""

    def __init__(self) -> None:
        self.limiters = {kind: RateLimiter(1 / seconds, burst)
                         for kind, (burst, seconds) in LIMITERS.items()}

    @staticmethod
    def of(request: Request) -> WrongAttempts:
        state = request.app.state
        if not hasattr(state, "wrong_attempts"):
            state.wrong_attempts = WrongAttempts()
        return state.wrong_attempts

    @staticmethod
    def _address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def check(self, request: Request, kind: str) -> None:
        """429 while this address has used up its wrong attempts of `kind` (they come back
        slowly)."""
        wait = self.limiters[kind].wait(self._address(request))
        if wait > 0:
            raise HTTPException(429, TOO_MANY_ATTEMPTS,
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def failed(self, request: Request, kind: str) -> None:
        self.limiters[kind].take(self._address(request))
