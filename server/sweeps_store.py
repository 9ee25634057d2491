"""SweepStore: sweeps in the jobs' SQLite file, beside the `jobs` table of server/store.py.

Two tables: `sweeps` (one row per sweep: its token, owner, base spec, axes, mode, count, time)
and `sweep_jobs` (one row per variant: its position, job id and its values on the axes). The
jobs themselves are ordinary rows of `jobs`; a job deleted on its own leaves its `sweep_jobs`
row, so the sweep still lists it (as deleted). Deleting a sweep deletes its rows here; the
caller deletes the jobs through the engine.

It uses the Store's connections (one per thread, WAL) and its transaction rules, so a sweep and
its variants are written in one transaction.
"""

from __future__ import annotations

import json
import time
import uuid

from server.json_text import dumps as _dumps
from server.store import Store, _rollback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    base TEXT NOT NULL,
    axes TEXT NOT NULL,
    mode TEXT NOT NULL,
    count INTEGER,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sweeps_token ON sweeps (token);
CREATE TABLE IF NOT EXISTS sweep_jobs (
    sweep_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    point TEXT NOT NULL,
    PRIMARY KEY (sweep_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sweep_jobs_job ON sweep_jobs (job_id);
"""


class SweepStore:
    """Sweeps of the store `store` (same SQLite file, same connections)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.store._conn().executescript(_SCHEMA)

    def create(self, *, token: str, owner: str, name: str, base: dict, axes: list[dict],
               mode: str, count: int | None, variants: list[tuple[str, dict]]) -> str:
        """Store a sweep and its variants (job id, values on the axes); returns its id."""
        sweep_id = uuid.uuid4().hex[:16]
        conn = self.store._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO sweeps (id, token, owner, name, base, axes, mode, count, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sweep_id, token, owner, name, _dumps(base), _dumps(axes), mode, count,
                 time.time()))
            conn.executemany(
                "INSERT INTO sweep_jobs (sweep_id, position, job_id, point) VALUES (?, ?, ?, ?)",
                [(sweep_id, i, job_id, _dumps(values))
                 for i, (job_id, values) in enumerate(variants)])
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return sweep_id

    def get(self, sweep_id: str) -> dict | None:
        """The sweep with `variants`: [{"job", "values"}] in order, or None."""
        conn = self.store._conn()
        row = conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return self._sweep(row) if row else None

    def list(self, token: str | None = None) -> list[dict]:
        """Every sweep (oldest first), or only those with `token`."""
        conn = self.store._conn()
        if token is None:
            rows = conn.execute("SELECT * FROM sweeps ORDER BY created_at, id")
        else:
            rows = conn.execute("SELECT * FROM sweeps WHERE token = ? ORDER BY created_at, id",
                                (token,))
        return [self._sweep(r) for r in rows.fetchall()]

    def delete(self, sweep_id: str) -> None:
        conn = self.store._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM sweep_jobs WHERE sweep_id = ?", (sweep_id,))
            conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _sweep(self, row) -> dict:
        sweep = dict(row)
        sweep["base"] = json.loads(sweep["base"])
        sweep["axes"] = json.loads(sweep["axes"])
        jobs = self.store._conn().execute(
            "SELECT job_id, point FROM sweep_jobs WHERE sweep_id = ? ORDER BY position",
            (sweep["id"],)).fetchall()
        sweep["variants"] = [{"job": j, "values": json.loads(p)} for j, p in jobs]
        return sweep
