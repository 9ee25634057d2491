"""Where challenges and their runs are kept: `<data_dir>/challenges.sqlite3`, so that they,
and every student's results, outlive a restart.

Tables: `challenges` (the teacher's challenge: code, title, instructions, spec, editable and
hidden entries, goal, task, open or closed) and `runs` (one row per job made on a challenge:
who made it, what they changed, and how it did against the goal: the epoch it first met it,
its best value, its latest value). Rows are written by progress.Board; nothing here knows
HTTP or the engine.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    instructions TEXT NOT NULL,
    spec TEXT NOT NULL,
    editable TEXT NOT NULL,
    hidden TEXT NOT NULL,
    goal TEXT NOT NULL,
    task TEXT NOT NULL,
    metrics TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',   -- open or closed
    created_at REAL NOT NULL,
    closed_at REAL
);
CREATE TABLE IF NOT EXISTS runs (
    job_id TEXT PRIMARY KEY,
    challenge_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    student TEXT,
    setup TEXT NOT NULL,
    created_at REAL NOT NULL,
    met_epoch INTEGER,
    met_value REAL,
    best_value REAL,
    best_epoch INTEGER,
    latest_value REAL,
    latest_epoch INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_challenge ON runs (challenge_id);
"""

_JSON = ("spec", "editable", "hidden", "goal", "metrics")
RUN_FIELDS = ("job_id", "challenge_id", "student_id", "student", "setup", "created_at",
              "met_epoch", "met_value", "best_value", "best_epoch", "latest_value",
              "latest_epoch")
PROGRESS_FIELDS = RUN_FIELDS[6:]


class ChallengeStore:
    """Challenges and their runs in one small SQLite file (WAL; a write per change)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- challenges -----------------------------------------------------------------------

    @staticmethod
    def _challenge(row: sqlite3.Row | None) -> dict | None:
        if row is None:
            return None
        out = dict(row)
        for key in _JSON:
            out[key] = json.loads(out[key])
        return out

    def add(self, challenge: dict) -> dict:
        row = {**challenge, "created_at": time.time(), "state": "open", "closed_at": None}
        values = {k: json.dumps(v) if k in _JSON else v for k, v in row.items()}
        with self._lock:
            self._db.execute(
                f"INSERT INTO challenges ({', '.join(values)}) VALUES "
                f"({', '.join('?' for _ in values)})", tuple(values.values()))
        return self.get(challenge["id"])

    def code_taken(self, code: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM challenges WHERE code = ?",
                                    (code,)).fetchone() is not None

    def get(self, ref: str) -> dict | None:
        """A challenge by its id, or by its code (case does not matter)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM challenges WHERE id = ? OR code = ?",
                                   (ref, ref.strip().upper())).fetchone()
        return self._challenge(row)

    def all(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM challenges ORDER BY created_at, id").fetchall()
        return [self._challenge(r) for r in rows]

    def set_state(self, challenge_id: str, state: str) -> None:
        with self._lock:
            self._db.execute("UPDATE challenges SET state = ?, closed_at = ? WHERE id = ?",
                             (state, time.time() if state == "closed" else None, challenge_id))

    def delete(self, challenge_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM runs WHERE challenge_id = ?", (challenge_id,))
            self._db.execute("DELETE FROM challenges WHERE id = ?", (challenge_id,))

    # -- runs -----------------------------------------------------------------------------

    def add_run(self, run: dict) -> None:
        values = {k: json.dumps(run[k]) if k == "setup" else run.get(k) for k in RUN_FIELDS}
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO runs ({', '.join(values)}) VALUES "
                f"({', '.join('?' for _ in values)})", tuple(values.values()))

    def save_progress(self, run: dict) -> None:
        with self._lock:
            self._db.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in PROGRESS_FIELDS)} "
                "WHERE job_id = ?", (*(run.get(k) for k in PROGRESS_FIELDS), run["job_id"]))

    def runs(self) -> list[dict]:
        """Every run of every challenge, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs ORDER BY created_at, job_id").fetchall()
        return [{**dict(r), "setup": json.loads(r["setup"])} for r in rows]
