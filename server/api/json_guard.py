"""JSON bodies no route could answer, refused with a 422 before any route runs.

Python's json module reads `NaN`, `Infinity` and `-Infinity`, turns a number too large for a
float (`1e400`) into infinity, and keeps a lone surrogate (`"\\ud800"`) in a string, though no
UTF-8 text can hold one. A route would then store or echo a value that JSON (or SQLite) cannot
write back. `JsonGuard` reads each JSON request body (after classroom.limits.BodyLimit has bounded
its size), looks for those values anywhere in it, and answers 422 in FastAPI's `detail` shape with
the location of each, so no route ever sees one. Bodies nested deeper than `MAX_DEPTH` are
refused the same way. Other bodies (multipart uploads) pass untouched.

What is not here: field constraints (the pydantic models refuse NaN and infinity too, for
the stream's messages that do not come through HTTP) and the 422 for schema errors (errors.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
MAX_REPORTED = 10
CHECKED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

NOT_A_NUMBER = "NaN is not a number; send a finite number"
INFINITE = "{} is not a finite number; send a finite number"
TOO_LARGE = ("{} is too large for a number (the largest is about 1.8e308); "
             "send a finite number")
LONE_SURROGATE = ("this text holds a lone surrogate ({}), which is not valid Unicode; "
                  "send the text as UTF-8")
TOO_DEEP = f"the body is nested deeper than {MAX_DEPTH} levels; a request needs far fewer"
NOT_UTF8 = "the body is not valid UTF-8 text; send JSON encoded as UTF-8"
NUMBER_TOO_LONG = "a number in the body has too many digits; send a number of usual size"


class _Refused:
    """A value json.loads read that JSON proper has no room for (it says why)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _constant(name: str) -> _Refused:
    return _Refused(NOT_A_NUMBER if name == "NaN" else INFINITE.format(name))


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(TOO_LARGE.format(text[:40]))


def _lone_surrogate(text: str) -> str | None:
    for char in text:
        if "\ud800" <= char <= "\udfff":
            return f"\\u{ord(char):04x}"
    return None


def problems(value: Any) -> list[dict]:
    """Where `value` (as read by `loads`) holds something JSON cannot carry: FastAPI-style
    error entries (at most MAX_REPORTED), empty when it is clean."""
    found: list[dict] = []
    stack: list[tuple[Any, tuple, int]] = [(value, (), 0)]
    while stack and len(found) < MAX_REPORTED:
        item, loc, depth = stack.pop()
        if depth > MAX_DEPTH:
            return [_entry("json_invalid", (), TOO_DEEP)]
        if isinstance(item, _Refused):
            found.append(_entry("finite_number", loc, item.message))
        elif isinstance(item, str):
            if (bad := _lone_surrogate(item)) is not None:
                found.append(_entry("string_unicode", loc, LONE_SURROGATE.format(bad)))
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if (bad := _lone_surrogate(key)) is not None:
                    found.append(_entry("string_unicode", (*loc, _printable(key)),
                                        LONE_SURROGATE.format(bad)))
                    continue
                stack.append((child, (*loc, key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, (*loc, i), depth + 1)
                         for i, child in reversed(list(enumerate(item))))
    return found


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _entry(kind: str, loc: tuple, message: str) -> dict:
    return {"type": kind, "loc": ["body", *loc], "msg": message, "input": None}


def check_body(body: bytes) -> list[dict]:
    """The 422 entries for a JSON body, empty when it is fine or is not JSON at all (the
    route's own parser then says what is wrong)."""
    try:
        value = json.loads(body, parse_constant=_constant, parse_float=_float)
    except RecursionError:
        return [_entry("json_invalid", (), TOO_DEEP)]
    except UnicodeDecodeError:
        return [_entry("json_invalid", (), NOT_UTF8)]
    except json.JSONDecodeError:
        return []
    except ValueError:  # an integer longer than Python's int() accepts
        return [_entry("json_invalid", (), NUMBER_TOO_LONG)]
    return problems(value)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


class JsonGuard:
    """ASGI middleware: 422 for a JSON body with NaN, infinities or lone surrogates."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHECKED_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = next((v.decode("latin-1") for k, v in scope["headers"]
                             if k.lower() == b"content-type"), None)
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone, or cut off as too large
                partial = {"type": "http.request", "body": b"".join(chunks), "more_body": True}
                await self.app(scope, _replay([partial, message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        found = check_body(body) if body else []
        if found:
            await _send_422(send, found)
            return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)


def _replay(messages: list[dict], receive):
    pending = list(messages)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _send_422(send, detail: list[dict]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
