"""TimelineStore: a job's kept main-view snapshots, in the jobs' SQLite file (issue 16).

One table, `timeline` (job id, epoch, step, the snapshot as the stream's binary frame,
zlib-compressed), beside the `jobs` and `metrics` tables of server/store.py, through the
Store's connections (one per thread, WAL). Which epochs are kept is decided elsewhere
(server/timeline.py); this module only stores, lists, reads and thins.

The snapshots follow the history without anyone calling in: three triggers, created here,
keep them consistent with the tables they belong to, whichever code path changes those.
- a job row deleted (DELETE /api/jobs, a sweep, an upload's jobs): its snapshots go;
- a metrics row deleted (a restart replaying from the last checkpoint, a reset, a rewind):
  the snapshot of that epoch goes;
- a job's `step` set to 0 (a reset: new initial weights): every snapshot of it goes, the
  epoch-0 picture of the old weights too.
"""

from __future__ import annotations

import weakref
import zlib

from server.store import Store, _rollback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timeline (
    job_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    frame BLOB NOT NULL,
    PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS timeline_job_deleted AFTER DELETE ON jobs
BEGIN
    DELETE FROM timeline WHERE job_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS timeline_epoch_deleted AFTER DELETE ON metrics
BEGIN
    DELETE FROM timeline WHERE job_id = OLD.job_id AND epoch = OLD.epoch;
END;
CREATE TRIGGER IF NOT EXISTS timeline_job_reset AFTER UPDATE OF step ON jobs
WHEN NEW.step = 0
BEGIN
    DELETE FROM timeline WHERE job_id = NEW.id;
END;
"""

_OPEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Store -> TimelineStore


class TimelineStore:
    """Snapshots of the store `store` (same SQLite file, same connections)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.store._conn().executescript(_SCHEMA)

    @classmethod
    def of(cls, store: Store) -> TimelineStore:
        """The one TimelineStore of `store` (its schema is made once)."""
        timeline = _OPEN.get(store)
        if timeline is None:
            timeline = _OPEN[store] = cls(store)
        return timeline

    def put(self, job_id: str, epoch: int, step: int, frame: bytes) -> None:
        """Keep `frame` (a binary snapshot frame) as the job's picture at `epoch` (an epoch
        trained again replaces its picture)."""
        self.store._conn().execute(
            "INSERT OR REPLACE INTO timeline (job_id, epoch, step, frame) VALUES (?, ?, ?, ?)",
            (job_id, int(epoch), int(step), zlib.compress(frame, 1)))

    def epochs(self, job_id: str) -> list[tuple[int, int]]:
        """(epoch, step) of every kept snapshot, in epoch order."""
        rows = self.store._conn().execute(
            "SELECT epoch, step FROM timeline WHERE job_id = ? ORDER BY epoch", (job_id,))
        return [(int(e), int(s)) for e, s in rows.fetchall()]

    def at_or_before(self, job_id: str, epoch: int) -> tuple[int, int, bytes] | None:
        """(epoch, step, frame) of the latest snapshot at or before `epoch`, or None."""
        row = self.store._conn().execute(
            "SELECT epoch, step, frame FROM timeline WHERE job_id = ? AND epoch <= ?"
            " ORDER BY epoch DESC LIMIT 1", (job_id, int(epoch))).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), zlib.decompress(row[2])

    def drop(self, job_id: str, epochs: list[int]) -> None:
        """Delete the snapshots of `epochs` (thinning), in one transaction."""
        if not epochs:
            return
        conn = self.store._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("DELETE FROM timeline WHERE job_id = ? AND epoch = ?",
                             [(job_id, int(e)) for e in epochs])
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def stored_bytes(self, job_id: str) -> int:
        (n,) = self.store._conn().execute(
            "SELECT COALESCE(SUM(LENGTH(frame)), 0) FROM timeline WHERE job_id = ?",
            (job_id,)).fetchone()
        return int(n)

