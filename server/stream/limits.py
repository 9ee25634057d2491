"""What one stream client may send: message size, rate, JSON shape, and when it is closed.

`ClientLimits` is one socket's budget (docs/STREAM.md "Limits"): a message over
`settings.stream_max_message_bytes` closes the socket with 1009; messages past a token bucket
(`stream_messages_per_second`, burst `stream_message_burst`) are refused with an `error` frame,
and a refused message costs a token too, so a client sending at full speed stays refused; every
refused or bad message is a violation, one is forgiven a second, and past
`stream_max_violations` the socket is closed with 1008. The socket is read at full speed until
then: a reader that paused would let the kernel buffer megabytes that are parsed after the
close anyway (server/ws_protocol.py stops reading once the close is sent). At most
`MAX_IN_FLIGHT` controls of one socket wait for the engine.
`ConnectLimiter` bounds the new streams a client opens a second (past it: held up to
`REFUSED_PAUSE`, then closed with 4429), so that clients reconnecting in a loop cannot keep the
server busy with hellos. `parse` reads a message as strict JSON (no NaN or Infinity, no number
too large for a float, nesting at most `MAX_DEPTH`) and raises `BadMessage` with a sentence
otherwise; `shorten` cuts client text before it is echoed.
Nothing here knows about sockets or jobs.
"""

from __future__ import annotations

import json
import math
import time

from server.ratelimit import RateLimiter

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TOO_MANY = 4429  # as the classroom's stream limit
REFUSED_PAUSE = 1.0  # most seconds a refused new stream is held before its close
MAX_DEPTH = 32  # client messages are flat; a deeper one is refused
ECHO_CHARS = 100  # most characters of a client's input quoted back in an error
MAX_IN_FLIGHT = 32  # a socket's controls waiting for the engine; more are refused


class BadMessage(Exception):
    """A client message the server cannot act on; the text goes back in an `error` frame."""


class Closing(Exception):
    """The socket must be closed with `code` and `reason` (the client broke a limit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` cut to `limit` characters (with a note of how long it was) for an echo."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _no_constant(name: str) -> None:
    raise BadMessage(f"not JSON: {name} is not a JSON value; send numbers as finite decimals")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadMessage(f"not JSON: the number {shorten(text, 40)} is too large")
    return value


def _depth_ok(value: object) -> bool:
    """Whether `value` nests at most MAX_DEPTH levels (iterative: no recursion of our own)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def parse(text: str) -> dict:
    """The message as a JSON object, or BadMessage saying what is wrong with it."""
    try:
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        body = None
        deep = True
    except ValueError as exc:
        raise BadMessage(f"not JSON: {shorten(str(exc))}") from None
    else:
        deep = not _depth_ok(body)
    if deep:
        raise BadMessage(f"a message may nest at most {MAX_DEPTH} levels of objects or lists")
    if not isinstance(body, dict):
        raise BadMessage("a message must be a JSON object with a 'type'")
    return body


def message_bytes(text: str) -> int:
    """UTF-8 size of `text` without encoding it when its length already decides."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class ConnectLimiter(RateLimiter):
    """New streams per client key: a token bucket (`stream_connects_per_second`, burst
    `stream_connect_burst`). Event loop only."""

    MAX_KEYS = 10_000


class ClientLimits:
    """One socket's limits (see the module docstring). Event loop only: no locks."""

    def __init__(self, settings) -> None:
        self.max_bytes = settings.stream_max_message_bytes
        self.rate = settings.stream_messages_per_second
        self.burst = float(settings.stream_message_burst)
        self.max_violations = settings.stream_max_violations
        self.tokens = self.burst
        self.violations = 0.0
        self.refused = 0  # messages refused for the rate, for a test or a log
        self.in_flight = 0  # controls sent to the engine and not answered yet
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.violations = max(0.0, self.violations - elapsed)  # one forgiven a second

    def admit(self, size: int, now: float | None = None) -> None:
        """Take one message of `size` bytes: Closing when it is too big, BadMessage when it
        comes too fast (it is then ignored; the caller counts it with `violation`)."""
        if size > self.max_bytes:
            raise Closing(CLOSE_TOO_BIG, f"Message of {size} bytes is over the limit of "
                          f"{self.max_bytes} bytes; reconnect and send smaller messages")
        self._refill(time.monotonic() if now is None else now)
        if self.rate <= 0:
            return
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return
        # A refused message costs a token too (a debt, at most one burst): a client that keeps
        # sending at full speed stays refused, and is closed once the violations add up.
        self.tokens = max(self.tokens - 1.0, -self.burst)
        self.refused += 1
        raise BadMessage(f"too many messages: at most {self.rate:g} a second (bursts of "
                         f"{self.burst:g}); this one was ignored")

    def answered(self, _task: object = None) -> None:
        """A control sent to the engine was answered (a task's done callback)."""
        self.in_flight = max(0, self.in_flight - 1)

    def violation(self) -> None:
        """Count a refused or bad message; Closing once there were too many."""
        self._refill(time.monotonic())
        self.violations += 1.0
        if self.violations > self.max_violations:
            raise Closing(CLOSE_POLICY, "Too many messages that were too fast or not "
                          "understood; reconnect and send fewer")
