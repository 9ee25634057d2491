"""Store: jobs, metric history without gaps or duplicates, atomic checkpoints."""

from __future__ import annotations

import math
import os
import threading

import pytest
import torch

from server import checkpoint_files
from server.store import LimitReached, Store


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    yield s
    s.close()


def _job(store: Store, **kw) -> dict:
    return store.create_job(token=kw.pop("token", "t"), owner=kw.pop("owner", "o"),
                            spec={"dataset": {"name": "xor"}}, status=kw.pop("status", "queued"),
                            **kw)


def test_wal_mode_and_job_round_trip(store, tmp_path):
    job = _job(store, name="first")
    (mode,) = store._conn().execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
    assert job["spec"] == {"dataset": {"name": "xor"}}
    assert job["status"] == "queued" and job["epoch"] == 0 and job["metrics"] is None
    store.update_job(job["id"], status="running", epoch=3, step=30)
    again = Store(tmp_path / "db.sqlite3")  # a second process's view
    row = again.get_job(job["id"])
    assert (row["status"], row["epoch"], row["step"]) == ("running", 3, 30)
    again.close()


def test_history_replay_replaces_and_truncate_removes(store):
    job = _job(store)
    store.add_metrics(job["id"], [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)], step=30)
    store.add_metrics(job["id"], [{"epoch": 3, "loss": 0.25}, {"epoch": 4, "loss": 0.2}])
    history = store.history(job["id"])
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[2]["loss"] == 0.25
    assert store.get_job(job["id"])["metrics"] == {"epoch": 4, "loss": 0.2}
    store.truncate_history(job["id"], 2)
    assert [r["epoch"] for r in store.history(job["id"])] == [1, 2]
    assert store.get_job(job["id"])["metrics"]["epoch"] == 2
    assert [r["epoch"] for r in store.history(job["id"], since=1)] == [2]


def test_nan_is_stored_as_null(store):
    job = _job(store)
    store.add_metrics(job["id"], [{"epoch": 1, "loss": math.nan, "acc": math.inf}])
    assert store.history(job["id"]) == [{"epoch": 1, "loss": None, "acc": None}]


def test_limits_are_counted_in_the_insert_transaction(store):
    for _ in range(2):
        _job(store, owner="a", max_active_for_owner=2)
    with pytest.raises(LimitReached, match="You already have 2 jobs running or queued"):
        _job(store, owner="a", max_active_for_owner=2)
    _job(store, owner="a", status="paused", max_active_for_owner=2)  # paused does not count
    with pytest.raises(LimitReached, match="maximum of 3 jobs"):
        _job(store, owner="b", max_total=3)


def test_threads_write_with_their_own_connections(store):
    job = _job(store)

    def write(start: int) -> None:
        store.add_metrics(job["id"], [{"epoch": e} for e in range(start, start + 50)])

    threads = [threading.Thread(target=write, args=(1 + 50 * i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["epoch"] for r in store.history(job["id"])] == list(range(1, 201))


def test_checkpoint_round_trip_and_delete(store):
    job = _job(store)
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    store.save_checkpoint(job["id"], tensors, {"engine": {"epoch": 4, "step": 40}})
    loaded, meta = store.load_checkpoint(job["id"])
    assert torch.equal(loaded["w"], tensors["w"]) and meta["engine"]["epoch"] == 4
    assert store.checkpoint_meta(job["id"]) == meta
    store.delete_job(job["id"])
    assert store.get_job(job["id"]) is None and store.load_checkpoint(job["id"]) is None


def test_crash_between_temp_write_and_rename_keeps_the_old_checkpoint(store, monkeypatch):
    job = _job(store)
    store.save_checkpoint(job["id"], {"w": torch.ones(2)}, {"v": 1})

    def crash(*_args):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(checkpoint_files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save_checkpoint(job["id"], {"w": torch.full((2,), 2.0)}, {"v": 2})
    monkeypatch.undo()
    tensors, meta = store.load_checkpoint(job["id"])
    assert meta == {"v": 1} and torch.equal(tensors["w"], torch.ones(2))


def test_a_left_over_temp_file_is_removed_and_a_damaged_file_is_no_checkpoint(tmp_path):
    s = Store(tmp_path / "db.sqlite3")
    job = _job(s)
    s.save_checkpoint(job["id"], {"w": torch.ones(2)}, {"v": 1})
    tmp = s.checkpoint_dir / f".{job['id']}.safetensors.tmp{os.getpid()}-1"
    tmp.write_bytes(b"half a file")  # what a kill -9 during the write leaves
    s.close()
    s = Store(tmp_path / "db.sqlite3")
    assert not tmp.exists()
    assert s.load_checkpoint(job["id"])[1] == {"v": 1}
    s.checkpoint_path(job["id"]).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    assert s.load_checkpoint(job["id"]) is None
    s.close()
