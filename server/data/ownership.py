"""Who may see, use, delete and share an uploaded data set.

An upload belongs to its uploader. On an open server (loopback, no tokens) there is one user:
every upload is visible to everyone and has no owner. In class mode a student sees and uses
only their own uploads and those the teacher shared with the class; the teacher sees all of
them; a visitor who has not joined sees none. Built-in data sets are everyone's.

What is here: `Viewer` (the caller as far as uploads are concerned), the rules, and
`Refused` (the HTTP status and sentence of a refusal). What is not: how a caller is recognised
from a request (server/api/datasets.py) or where uploads are stored (upload.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

TEACHER = "teacher"
JOIN_FIRST = ("Join the class first: uploaded data sets are visible to class members only "
              "(open the playground and enter the class code from your teacher).")
NOT_YOURS = "This data set belongs to someone else"
SHARE_TEACHER_ONLY = "Only the teacher can share a data set with the class."


class Refused(Exception):
    """The caller may not do this with the data set: `status` (401, 403 or 409) and a
    sentence that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """The caller. `owner`: the key their uploads are stored under (None on an open server);
    `name`: shown as the owner of their uploads; `teacher` and `everything` (an open server
    or the teacher) see every upload; `joined` is False for a visitor who has not joined."""

    owner: str | None = None
    name: str | None = None
    teacher: bool = False
    everything: bool = True
    joined: bool = True

    @property
    def student(self) -> bool:
        return self.owner is not None and not self.teacher


EVERYONE = Viewer()  # an open server, or the server itself (the engine)


def student_key(token: str) -> str:
    """The owner key of a student token: a digest, so the stored files hold no token."""
    return "student:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def viewer(*, is_open: bool, teacher: bool, token: str | None,
           student_name: str | None) -> Viewer:
    """The Viewer of a request: everything on an open server; the teacher; a student (a valid
    student token); otherwise a visitor who has not joined."""
    if is_open:
        return EVERYONE
    if teacher:
        return Viewer(owner=TEACHER, name=TEACHER, teacher=True, everything=True)
    if token and student_name is not None:
        return Viewer(owner=student_key(token), name=student_name, everything=False)
    return Viewer(owner=None, name=None, everything=False, joined=False)


def can_see(meta: dict, who: Viewer) -> bool:
    if who.everything:
        return True
    if not who.joined:
        return False
    return bool(meta.get("shared")) or (who.owner is not None and meta.get("owner") == who.owner)


def check_see(meta: dict, who: Viewer) -> None:
    """Raises Refused: 401 for a visitor who has not joined, 403 for another's upload."""
    if can_see(meta, who):
        return
    if not who.joined:
        raise Refused(401, JOIN_FIRST)
    raise Refused(403, NOT_YOURS)


def check_delete(meta: dict, who: Viewer) -> None:
    """The owner deletes their upload; the teacher (and an open server) any upload."""
    if who.everything:
        return
    check_see(meta, who)
    if meta.get("owner") != who.owner:
        raise Refused(403, NOT_YOURS)


def check_share(meta: dict, who: Viewer) -> None:
    if who.everything:
        return
    check_see(meta, who)
    raise Refused(403, SHARE_TEACHER_ONLY)
