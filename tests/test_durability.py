"""A power cut loses at most the last second of history (issue 12, item 9).

A power cut loses what the operating system had not written to the disk; what SQLite had
already copied into the database file and fsynced survives. So the test reads a copy of the
database file alone, without its WAL (the part a power cut may lose), about a second after
the writes: with the flusher (server/durability.py) the history is there; without it, it stays
in the WAL until SQLite's 1000-page auto-checkpoint.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from server.durability import FLUSH_SECONDS
from server.store import Store


def database_file_alone(store_path: Path, copy: Path) -> int:
    """Epoch rows in a copy of the database file without its -wal and -shm files."""
    shutil.copy(store_path, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    except sqlite3.OperationalError:  # not even the table reached the file
        return 0
    finally:
        conn.close()


def test_history_reaches_the_database_file_within_a_second(tmp_path: Path):
    store = Store(tmp_path / "data" / "playground.sqlite3")
    try:
        job = store.create_job(token="t", owner="o", spec={}, status="running")
        time.sleep(FLUSH_SECONDS + 0.5)
        for epoch in range(1, 201):  # the engine's pattern: one small commit per slice
            store.add_metrics(job["id"], [{"epoch": epoch, "train_loss": 1 / epoch}])
        written = time.monotonic()
        deadline = written + FLUSH_SECONDS + 1.0
        rows = 0
        while time.monotonic() < deadline and rows < 200:
            time.sleep(0.1)
            rows = database_file_alone(store.path, tmp_path / "copy.sqlite3")
        assert rows == 200, rows
        assert time.monotonic() - written <= FLUSH_SECONDS + 1.0
        assert store.flusher.flushes >= 1
    finally:
        store.close()


def test_an_idle_store_does_not_flush(tmp_path: Path):
    store = Store(tmp_path / "playground.sqlite3")
    try:
        time.sleep(FLUSH_SECONDS + 0.5)
        before = store.flusher.flushes
        time.sleep(2 * FLUSH_SECONDS + 0.2)
        assert store.flusher.flushes == before  # nothing written, no fsync
    finally:
        store.close()
