"""Classroom tokens: the keys that sign them, making and checking them, and reading the
caller's token from a request, a websocket or a raw ASGI scope.

- `ClassKeys`: the secret that signs student and teacher-session tokens, and the generated
  teacher password and class code, kept in `<data_dir>/classroom.json` (mode 0600) so that
  tokens and the code outlive a restart.
- A student token `s.<id>.<name>.<sig>` carries the student's name (base64) and is checked by
  its HMAC, so no table is needed; a teacher session `t.<expiry>.<nonce>.<sig>` is bound to
  the current teacher password (changing it signs every teacher out).
- Revocation: a student token whose id the roster (roster.py) has removed, or a teacher
  session whose nonce was logged out, is no token.
- `caller_token`: the one place a token is read (Authorization header, a websocket's
  `?token=`, else the teacher's or the student's cookie); deps.py and the middlewares use it.

What is not here: who may touch which job (deps.py), the checks before any route (checks.py,
limits.py) and the routes (sessions.py, teacher.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.requests import HTTPConnection

from server.api.classroom.roster import Roster, roster_at
from server.config import Settings

STUDENT_COOKIE = "playground_student"
TEACHER_COOKIE = "playground_teacher"
TEACHER_SESSION_SECONDS = 12 * 3600
MAX_NAME_CHARS = 40
MAX_TOKEN_CHARS = 1024


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


def is_teacher(settings: Settings, token: str | None) -> bool:
    """The teacher token of the settings, or a teacher session from POST
    /api/class/teacher/login."""
    teacher = settings.teacher_token
    if token and teacher and same_secret(token, teacher):
        return True
    return is_teacher_session(settings, token)


def is_member(settings: Settings, token: str | None) -> bool:
    """A student who joined (and was not removed) or the teacher."""
    return bool(student_name(settings, token) or is_teacher(settings, token))


def bearer_header(connection: HTTPConnection) -> str | None:
    """The token of `Authorization: Bearer <token>` alone, or None."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def cookie_token(connection: HTTPConnection) -> str | None:
    """The teacher's session cookie, else the student's, from a Request or WebSocket."""
    cookies = connection.cookies
    return cookies.get(TEACHER_COOKIE) or cookies.get(STUDENT_COOKIE) or None


def caller_token(connection: HTTPConnection) -> str | None:
    """The caller's token: the Authorization header, a websocket's `?token=`, else a class
    cookie."""
    if (token := bearer_header(connection)) is not None:
        return token
    if connection.scope["type"] == "websocket" and connection.query_params.get("token"):
        return connection.query_params["token"]
    return cookie_token(connection)


def scope_token(scope) -> str | None:
    """`caller_token` of a raw ASGI scope, read once and kept in the scope for the other
    middlewares."""
    if "playground.token" not in scope:
        scope["playground.token"] = caller_token(HTTPConnection(scope))
    return scope["playground.token"]
