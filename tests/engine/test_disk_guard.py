"""The engine on a full or almost full disk (issue 12, item 4), with the fake trainer: a
history write SQLite refuses pauses the job with the error shown and loses no epoch (kept in
memory and written on resume; after a crash the replay starts no later than the last written
epoch); the free-space guard pauses running jobs and refuses to resume them until there is
room. `server.disk.free_bytes` is monkeypatched; the real full disk is in
tests/api/test_disk_limits.py."""

from __future__ import annotations

import sqlite3
import time

import pytest

from server import disk
from server.engine.engine import Conflict
from server.store import Store
from tests.engine.test_engine_unit import Rig

FULL = "database or disk is full"


class FailingWrites:
    """Wraps Store.add_metrics: raises SQLite's disk-full error while `failing`."""

    def __init__(self, store: Store) -> None:
        self.real = store.add_metrics
        self.failing = False
        self.refused = 0

    def __call__(self, *args, **kwargs):
        if self.failing:
            self.refused += 1
            raise sqlite3.OperationalError(FULL)
        return self.real(*args, **kwargs)


def epochs(store: Store, job: str) -> list[int]:
    return [r["epoch"] for r in store.history(job)]


def test_a_failed_history_write_pauses_the_job_and_no_epoch_is_lost(tmp_path):
    rig = Rig(tmp_path, checkpoint_seconds=0.2)
    writes = FailingWrites(rig.store)
    rig.store.add_metrics = writes
    try:
        job = rig.create()
        rig.wait(lambda: rig.engine.progress(job)["epoch"] >= 3)
        writes.failing = True
        rig.wait(lambda: rig.status(job) == "paused")
        row = rig.store.get_job(job)
        assert row["status"] == "paused"
        assert "could not be saved" in row["error"] and FULL in row["error"]
        assert row["stop_reason"] == row["error"]
        written = epochs(rig.store, job)
        reached = rig.engine.progress(job)["epoch"]
        assert reached > written[-1]  # trained epochs that are not in the table yet
        kept = rig.engine._jobs[job].unwritten
        assert [r["epoch"] for r in kept] == list(range(written[-1] + 1, reached + 1))
        # No checkpoint past the last written epoch: a crash now would replay, not skip.
        meta = rig.store.checkpoint_meta(job)
        assert meta is None or meta["engine"]["epoch"] <= written[-1]
        time.sleep(0.4)  # checkpoints would be due by now: none may be written
        meta = rig.store.checkpoint_meta(job)
        assert meta is None or meta["engine"]["epoch"] <= written[-1]
        status_events = [e for e in rig.events if e.type == "status" and e.job_id == job]
        assert status_events[-1].status == "paused" and FULL in status_events[-1].error
        with pytest.raises(Conflict, match="still cannot be saved"):
            rig.engine.control(job, "resume").result(10)
        with pytest.raises(Conflict, match="still cannot be saved"):
            rig.engine.control(job, "step").result(10)
        assert rig.status(job) == "paused"
        writes.failing = False
        rig.engine.control(job, "resume").result(10)
        rig.wait(lambda: rig.engine.progress(job)["epoch"] >= reached + 3)
        rig.engine.control(job, "pause").result(10)
        done = rig.engine.progress(job)["epoch"]
        assert epochs(rig.store, job) == list(range(1, done + 1))  # no gap, no duplicate
        assert rig.store.get_job(job)["error"] is None
    finally:
        rig.close()


def test_a_crash_while_history_is_unwritten_replays_without_a_gap(tmp_path):
    rig = Rig(tmp_path, checkpoint_seconds=0.1)
    writes = FailingWrites(rig.store)
    rig.store.add_metrics = writes
    job = rig.create()
    rig.wait(lambda: rig.engine.progress(job)["epoch"] >= 4)
    writes.failing = True
    rig.wait(lambda: rig.status(job) == "paused")
    time.sleep(0.3)  # checkpoints would be due: none may be written now
    # The shutdown checkpoint is skipped too (history unwritten); then the process "dies".
    rig.engine.stop()
    rig.store.close()
    written = epochs(Store(tmp_path / "db.sqlite3"), job)
    rig2 = Rig(tmp_path)
    try:
        row = rig2.store.get_job(job)
        assert row["status"] == "paused" and row["epoch"] <= written[-1]
        rig2.engine.control(job, "resume").result(10)
        rig2.wait(lambda: rig2.engine.progress(job)["epoch"] >= written[-1] + 3)
        rig2.engine.control(job, "pause").result(10)
        done = rig2.engine.progress(job)["epoch"]
        assert epochs(rig2.store, job) == list(range(1, done + 1))
    finally:
        rig2.close()


def test_the_free_space_guard_pauses_running_jobs_and_refuses_to_resume(tmp_path, monkeypatch):
    rig = Rig(tmp_path, min_free_disk_mb=100, checkpoint_seconds=0.2)
    free = {"bytes": 10 * 1024**3}
    monkeypatch.setattr(disk, "free_bytes", lambda path: free["bytes"])
    try:
        first, second = rig.create(), rig.create()
        rig.wait(lambda: rig.engine.progress(second)["epoch"] >= 2)
        time.sleep(0.3)
        saved = rig.store.checkpoint_meta(first)["engine"]["epoch"]
        free["bytes"] = 50 * 1024**2  # 50 MB: below the 100 MB minimum
        rig.wait(lambda: rig.status(first) == "paused" and rig.status(second) == "paused",
                 timeout=5)
        for job in (first, second):
            row = rig.store.get_job(job)
            assert row["status"] == "paused" and row["error"] is None
            assert "50 MB free" in row["stop_reason"]
            assert "min_free_disk_mb=100" in row["stop_reason"]
        with pytest.raises(Conflict, match="disk is almost full"):
            rig.engine.control(first, "resume").result(10)
        with pytest.raises(Conflict, match="disk is almost full"):
            rig.engine.control(first, "step").result(10)
        rig.engine.control(first, "pause").result(10)  # pausing needs no room
        # No checkpoint is written while the disk is low (the trainer stays in memory).
        assert rig.store.checkpoint_meta(first)["engine"]["epoch"] >= saved
        before = rig.store.checkpoint_path(first).stat().st_mtime_ns
        rig.engine._table.checkpoint(rig.engine._jobs[first])
        assert rig.store.checkpoint_path(first).stat().st_mtime_ns == before
        free["bytes"] = 10 * 1024**3
        at = rig.engine.progress(first)["epoch"]
        rig.engine.control(first, "resume").result(10)
        rig.wait(lambda: rig.engine.progress(first)["epoch"] >= at + 2)
        rig.engine.control(first, "pause").result(10)
        done = rig.engine.progress(first)["epoch"]
        assert epochs(rig.store, first) == list(range(1, done + 1))
    finally:
        rig.close()
