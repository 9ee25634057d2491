"""Roster: the students who joined the class, and which student tokens and teacher sessions
have been revoked.

Kept in `<data_dir>/classroom.sqlite3` (synchronous=FULL: writes are rare and must outlive a
crash), so that a student the teacher removed, a student who signed out and a teacher who
logged out stay out after a restart. The revoked sets are also held in memory, because every
request asks (tokens.student_name, tokens.is_teacher_session).

What is not here: how tokens are made and checked (tokens.py) and the routes (sessions.py,
teacher.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token TEXT NOT NULL,
    address TEXT,
    joined_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    removed_at REAL,
    state TEXT NOT NULL DEFAULT 'joined'  -- joined, left (signed out) or removed (by the teacher)
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    nonce TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class Roster:
    """Students who joined (by token id) and revocations, in one small SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        now = time.time()
        self._db.execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (now,))
        self._revoked = {r[0] for r in self._db.execute(
            "SELECT id FROM students WHERE state != 'joined'")}
        self._removed = {r[0] for r in self._db.execute(
            "SELECT id FROM students WHERE state = 'removed'")}
        self._sessions = dict(self._db.execute("SELECT nonce, expires_at FROM revoked_sessions"))

    # -- students -----------------------------------------------------------------------------

    def joined(self, student_id: str, name: str, token: str, address: str | None) -> None:
        """Note a join (or a join again with the same token): name, token, last address."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO students (id, name, token, address, joined_at, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " address = excluded.address, seen_at = excluded.seen_at",
                (student_id, name, token, address, now, now))

    def students(self) -> list[dict]:
        """Every student who joined and was not removed (signed-out ones too, with
        state "left"), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, token, address, joined_at, seen_at, state FROM students"
                " WHERE state != 'removed' ORDER BY joined_at, id").fetchall()
        keys = ("id", "name", "token", "address", "joined_at", "seen_at", "state")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def token_of(self, student_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT token FROM students WHERE id = ?",
                                   (student_id,)).fetchone()
        return row[0] if row else None

    def remove(self, student_id: str, name: str = "", token: str = "",
               state: str = "removed") -> None:
        """Revoke a student's token for good: `state` "removed" (by the teacher: no longer
        listed) or "left" (signed out: listed, with their jobs, until the teacher removes
        them)."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO students (id, name, token, joined_at, seen_at, removed_at, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " removed_at = excluded.removed_at, state = excluded.state",
                (student_id, name, token, now, now, now, state))
            self._revoked.add(student_id)
            if state == "removed":
                self._removed.add(student_id)

    def is_revoked(self, student_id: str) -> bool:
        """Whether the student's token no longer works (signed out or removed)."""
        return student_id in self._revoked

    def is_removed(self, student_id: str) -> bool:
        """Whether the teacher removed the student (no longer listed)."""
        return student_id in self._removed

    # -- teacher sessions ---------------------------------------------------------------------

    def revoke_session(self, nonce: str, expires_at: float) -> None:
        """End a teacher session before its expiry (logout)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO revoked_sessions VALUES (?, ?)",
                             (nonce, expires_at))
            self._sessions[nonce] = expires_at
            now = time.time()
            if len(self._sessions) > 1000:  # expired entries protect nothing any more
                self._sessions = {n: e for n, e in self._sessions.items() if e >= now}
                self._db.execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (now,))

    def is_session_revoked(self, nonce: str) -> bool:
        return nonce in self._sessions


@lru_cache(maxsize=32)
def roster_at(path: Path) -> Roster:
    """The one Roster of a data directory in this process."""
    return Roster(path)
