"""What a power cut may lose, and the thread that bounds it to about a second.

The store writes SQLite in WAL mode with synchronous=NORMAL: each commit lands in the WAL file
without an fsync, which keeps the engine's many small commits (one per time slice that ends an
epoch) cheap and survives a killed process (the operating system still has the pages). A power
cut, though, loses what the OS had not yet written: every commit since the last checkpoint, up
to SQLite's 1000-page auto-checkpoint or the kernel's writeback delay (tens of seconds).

`WalFlusher` bounds that: once every `interval` seconds, when another connection committed
something (`PRAGMA data_version` changed), it runs a PASSIVE checkpoint, for which SQLite
fsyncs the WAL, copies it into the database file and fsyncs that. So a power cut loses at most
the commits of the last `interval` (1 s). A PASSIVE checkpoint never blocks a writer; it costs
two fsyncs a second while jobs train and nothing while the server is idle.

Checkpoint files (checkpoint_files.write_atomic) fsync on their own and are not concerned.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("playground.durability")

FLUSH_SECONDS = 1.0


class WalFlusher:
    """A daemon thread that makes the database at `path` durable every `interval` seconds."""

    def __init__(self, path: Path, interval: float = FLUSH_SECONDS) -> None:
        self.path = Path(path)
        self.interval = interval
        self.flushes = 0  # checkpoints that copied everything (for tests and curiosity)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Flush once more and end the thread."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            seen = None
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    (version,) = conn.execute("PRAGMA data_version").fetchone()
                    if version != seen and self._flush(conn):
                        seen = version
                except sqlite3.Error as exc:  # a full disk, a locked file: try again later
                    log.warning("could not flush the database to disk: %s", exc)
                if stopping:
                    return
        finally:
            conn.close()

    def _flush(self, conn: sqlite3.Connection) -> bool:
        """One PASSIVE checkpoint; True when every frame of the WAL reached the database."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        done = not busy and copied >= frames
        self.flushes += done
        return done
