"""Store: jobs and their metric history in SQLite (WAL), checkpoints as safetensors files.

What is here: the `jobs` table (one row per job: token, owner, spec, status, progress, latest
metrics, timestamps) and the `metrics` table (one row per job per epoch; the primary key
`(job_id, epoch)` makes a replayed epoch replace its row, never duplicate it). Checkpoint files
(one safetensors file per job, written atomically: a `kill -9` at any moment leaves the old
file or the new one, never half of one) are the store's `CheckpointFiles` part
(server/checkpoint_files.py); the JSON text it writes comes from server/json_text.py.

What is not here: what a checkpoint holds (the trainer's `state_tensors`/`state_meta`) and when
one is written (the engine).

Thread-safe: every thread gets its own SQLite connection (the engine thread writes with its own;
the API threads read with theirs); SQLite's WAL lets readers run beside the one writer.

Why it is one module of about 450 lines: every SQL statement sits beside the schema it relies
on and inside the transaction rules above (the job limits are checked in the same transaction
that inserts the job); split, a reader would have to hold two files to check one statement.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from server.checkpoint_files import CheckpointFiles
from server.durability import WalFlusher
from server.json_text import dumps as _dumps

ACTIVE_STATUSES = ("queued", "running")
STATUSES = ("queued", "running", "paused", "completed", "stopped", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    stop_reason TEXT,
    epoch INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    metrics TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_token ON jobs (token);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, status);
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;
"""

_JOB_COLUMNS = (
    "id", "token", "owner", "name", "spec", "status", "error", "stop_reason", "epoch", "step",
    "metrics", "created_at", "updated_at", "started_at", "finished_at",
)
_UPDATABLE = frozenset(_JOB_COLUMNS) - {"id", "token", "owner", "created_at"}


SERVER_FULL = ("The class has as many jobs running or queued as this server allows; "
               "pause or stop one, or wait for one to finish.")


class LimitReached(Exception):
    """A job could not be created: the server or the caller is at its limit (`message` says).
    `retry_after`: seconds after which trying again may help (others' jobs end), or None."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def quota_message(column: str, value: str, n: int, limit: int, active_only: bool) -> str:
    """What a student reads at a per-student limit (by token, or by network address)."""
    if column == "address":
        who = f"This computer's address ({value}) already has {n} jobs"
        shared = (" (students on one address share this limit; the teacher can set "
                  "PLAYGROUND_QUOTA_KEY=token)")
    else:
        who, shared = f"You already have {n} jobs", ""
    if active_only:
        return (f"{who} running or queued, the most allowed{shared}; "
                "pause, stop or delete one first.")
    return (f"{who} kept, the most allowed ({limit}){shared}; "
            "delete old runs you no longer need to make room.")


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


class Store(CheckpointFiles):
    """SQLite jobs and metric history at `path`; checkpoints in `path.parent / "checkpoints"`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir = self.path.parent / "checkpoints"
        self.checkpoint_dir.mkdir(exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        # H4 (issue 12): the client address of each job, for quotas by address.
        if "address" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}:
            conn.execute("ALTER TABLE jobs ADD COLUMN address TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS jobs_address ON jobs (address, status)")
        self._remove_stale_temp_files()
        # H4 (issue 12): a power cut loses at most the last second of history (durability.py).
        self.flusher = WalFlusher(self.path)

    # -- connections ------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            # NORMAL in WAL mode survives a killed process without an fsync per commit; the
            # flusher (durability.py) bounds a power cut's loss to the last second.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # The flusher's thread checkpoints every second; a writer checkpoints itself only
            # when the WAL passes 40 MB (SQLite's default, 4 MB, put a checkpoint inside every
            # few of a busy class's commits, in the engine's thread: 25% of a record's cost).
            conn.execute("PRAGMA wal_autocheckpoint=10000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        if getattr(self, "flusher", None) is not None:
            self.flusher.stop()
        with self._lock:
            self._closed = True
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, *, token: str, owner: str, spec: dict, status: str, name: str = "",
                   job_id: str | None = None, max_total: int | None = None,
                   max_active_for_owner: int | None = None,
                   max_active: int | None = None, address: str | None = None,
                   quota: tuple[tuple[str, str], ...] = (),
                   max_kept_for_owner: int | None = None) -> dict:
        """Insert a job and return its row. With limits, the count and the insert are one
        transaction, so two requests at once cannot both take the last place.

        H4 (issue 12): `quota` lists who the per-owner limits count, as (column, value) pairs
        with column "owner" or "address" (each counted alone; empty: the owner);
        `max_kept_for_owner` bounds the jobs kept in any state, `address` is stored."""
        job_id = job_id or new_job_id()
        now = time.time()
        quota = quota or (("owner", owner),)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            refusal = self.quota_refusal(
                quota, max_active=max_active_for_owner if status in ACTIVE_STATUSES else None,
                max_kept=max_kept_for_owner, conn=conn)
            if refusal is not None:
                raise LimitReached(refusal)
            if max_total is not None:
                (total,) = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
                if total >= max_total:
                    raise LimitReached(
                        f"The server holds its maximum of {max_total} jobs; "
                        "delete finished jobs to make room."
                    )
            if max_active is not None and status in ACTIVE_STATUSES:
                (active,) = conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
                ).fetchone()
                if active >= max_active:
                    raise LimitReached(SERVER_FULL, retry_after=30)
            conn.execute(
                "INSERT INTO jobs (id, token, owner, name, spec, status, created_at, updated_at,"
                " address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, token, owner, name, _dumps(spec), status, now, now, address),
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        job = self.get_job(job_id)
        assert job is not None
        return job

    # H4 (issue 12): limits per student, counted by token, by address or by both.
    def count_quota(self, column: str, value: str, active_only: bool,
                    conn: sqlite3.Connection | None = None) -> int:
        """Jobs whose `column` ("owner" or "address") is `value` (running or queued only, or
        in any state)."""
        if column not in ("owner", "address"):
            raise ValueError(f"not a quota column: {column!r}")
        states = " AND status IN ('queued', 'running')" if active_only else ""
        if column == "address":  # the teacher's jobs from a student's machine are not theirs
            states += " AND owner != 'teacher'"
        (n,) = (conn or self._conn()).execute(
            f"SELECT COUNT(*) FROM jobs WHERE {column} = ?{states}", (value,)).fetchone()
        return n

    def quota_refusal(self, quota: tuple[tuple[str, str], ...], max_active: int | None = None,
                      max_kept: int | None = None,
                      conn: sqlite3.Connection | None = None) -> str | None:
        """Why one more running job (`max_active`) or one more job at all (`max_kept`) would
        pass a per-student limit for any (column, value) of `quota`, or None."""
        for limit, active_only in ((max_kept, False), (max_active, True)):
            if limit is None:
                continue
            for column, value in quota:
                n = self.count_quota(column, value, active_only, conn=conn)
                if n >= limit:
                    return quota_message(column, value, n, limit, active_only)
        return None

    def count_active(self, owner: str, conn: sqlite3.Connection | None = None) -> int:
        conn = conn or self._conn()
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')",
            (owner,),
        ).fetchone()
        return n

    def count_jobs(self) -> int:
        (n,) = self._conn().execute("SELECT COUNT(*) FROM jobs").fetchone()
        return n

    def count_active_total(self) -> int:
        """Jobs running or queued on the whole server."""
        counts = self.count_by_status()
        return sum(counts.get(status, 0) for status in ACTIVE_STATUSES)

    def count_by_status(self) -> dict[str, int]:
        """{status: number of jobs} (for limits and /metrics)."""
        rows = self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return dict(rows.fetchall())

    def get_job(self, job_id: str) -> dict | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list_jobs(self, token: str | None = None) -> list[dict]:
        """Every job (oldest first), or only those with `token`."""
        if token is None:
            rows = self._conn().execute("SELECT * FROM jobs ORDER BY created_at, id")
        else:
            rows = self._conn().execute(
                "SELECT * FROM jobs WHERE token = ? ORDER BY created_at, id", (token,)
            )
        return [self._job(r) for r in rows.fetchall()]

    # H5 (disks, uploads): who uses a data set; what checkpoints take.
    def jobs_using_dataset(self, name: str) -> list[dict]:
        """`{"id", "name", "status"}` of every job whose spec trains on the data set `name`."""
        rows = self._conn().execute(
            "SELECT id, name, status FROM jobs WHERE json_extract(spec, '$.dataset.name') = ? "
            "ORDER BY created_at, id", (name,))
        return [dict(r) for r in rows.fetchall()]

    def checkpoint_bytes(self, owner: str | None = None) -> int:
        """Bytes of checkpoint files kept: of every job, or of the jobs of `owner`."""
        if owner is None:
            paths = self.checkpoint_dir.glob("*.safetensors")
        else:
            rows = self._conn().execute("SELECT id FROM jobs WHERE owner = ?", (owner,))
            paths = (self.checkpoint_path(r[0]) for r in rows.fetchall())
        total = 0
        for path in paths:
            try:
                total += path.stat().st_size
            except OSError:  # no checkpoint yet, or deleted meanwhile
                pass
        return total

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job (`spec` and `metrics` as Python values, stored as JSON)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        for key in ("spec", "metrics"):
            if key in fields and fields[key] is not None:
                fields[key] = _dumps(fields[key])
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._conn().execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def delete_job(self, job_id: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self.delete_checkpoint(job_id)

    @staticmethod
    def _job(row: sqlite3.Row) -> dict:
        job = dict(row)
        job["spec"] = json.loads(job["spec"])
        job["metrics"] = json.loads(job["metrics"]) if job["metrics"] else None
        return job

    # -- metric history ---------------------------------------------------------------------

    def add_metrics(self, job_id: str, records: list[dict], **job_fields: Any) -> None:
        """Write per-epoch records (a replayed epoch replaces its row) and, in the same
        transaction, the job's latest metrics, epoch and any other `job_fields`."""
        if not records and not job_fields:
            return
        self.add_metrics_many([(job_id, records, job_fields)])

    def add_metrics_many(self, batch: list[tuple[str, list[dict], dict]]) -> None:
        """`add_metrics` for several jobs (job id, records, job fields) in one transaction
        (a family's slice: one commit instead of one per job)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job_id, records, job_fields in batch:
                if not records and not job_fields:
                    continue
                dumped = [_dumps(r) for r in records]
                conn.executemany(
                    "INSERT OR REPLACE INTO metrics (job_id, epoch, record) VALUES (?, ?, ?)",
                    [(job_id, int(r["epoch"]), d) for r, d in zip(records, dumped,
                                                                  strict=True)],
                )
                fields = dict(job_fields)
                if records:
                    fields.setdefault("metrics", dumped[-1])
                    fields.setdefault("epoch", int(records[-1]["epoch"]))
                for key in ("spec", "metrics"):
                    if key in fields and fields[key] is not None and not isinstance(
                            fields[key], str):
                        fields[key] = _dumps(fields[key])
                fields["updated_at"] = time.time()
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?",
                             (*fields.values(), job_id))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def history(self, job_id: str, since: int | None = None,
                limit: int | None = None) -> list[dict]:
        """The job's per-epoch records, in epoch order (only those after `since` if given, at
        most `limit` if given)."""
        rows = self._conn().execute(
            "SELECT record FROM metrics WHERE job_id = ? AND epoch > ? ORDER BY epoch LIMIT ?",
            (job_id, -1 if since is None else since, -1 if limit is None else limit),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # H3 (issue 12): a stream's hello carries a downsampled history (server/api/hello.py).
    def history_epochs(self, job_id: str) -> list[int]:
        """The epochs the job has a stored record of, in order."""
        return [r[0] for r in self._conn().execute(
            "SELECT epoch FROM metrics WHERE job_id = ? ORDER BY epoch", (job_id,))]

    def history_at(self, job_id: str, epochs: list[int]) -> list[dict]:
        """The job's stored records of these epochs, in epoch order."""
        rows = self._conn().execute(
            "SELECT record FROM metrics WHERE job_id = ? AND epoch IN "
            "(SELECT value FROM json_each(?)) ORDER BY epoch",
            (job_id, json.dumps(epochs)),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def truncate_history(self, job_id: str, after_epoch: int) -> None:
        """Delete the records of epochs after `after_epoch` (before replaying them from a
        checkpoint), and put the job's latest metrics back to the last record kept."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM metrics WHERE job_id = ? AND epoch > ?",
                         (job_id, after_epoch))
            last = conn.execute(
                "SELECT record FROM metrics WHERE job_id = ? ORDER BY epoch DESC LIMIT 1",
                (job_id,),
            ).fetchone()
            conn.execute("UPDATE jobs SET metrics = ?, updated_at = ? WHERE id = ?",
                         (last[0] if last else None, time.time(), job_id))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    # -- checkpoints ------------------------------------------------------------------------


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is left of a transaction (H5): SQLite has already rolled it back after
    some errors (a full disk on COMMIT), and a second ROLLBACK would hide the first error."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
