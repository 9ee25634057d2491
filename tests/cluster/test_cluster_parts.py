"""The parts of server/cluster/ that need no Ray: the outbox's back pressure, checkpoints as
bytes (the same file as the server's store writes), placement, and what the server does with
the jobs of a dead actor (a real Store on disk; no actor is alive, so they wait as queued)."""

from __future__ import annotations

import torch

from server.checkpoint_files import write_atomic
from server.cluster import placement
from server.cluster.actor_store import ActorStore, checkpoint_header
from server.cluster.connect import Slot
from server.cluster.engine import ClusterEngine
from server.cluster.members import Member
from server.cluster.outbox import Outbox
from server.cluster.state import KILLED_TOO_OFTEN
from server.config import Settings
from server.engine.events import MetricsEvent, SnapshotEvent, StatusEvent
from server.spec.job import JobSpec
from server.store import Store
from tests.engine.common import xor_spec


def test_the_outbox_keeps_every_write_and_status_and_only_the_newest_frame():
    box = Outbox(max_items=4)
    box.event(SnapshotEvent("a", b"1"))
    box.event(SnapshotEvent("a", b"2"))  # replaces the frame not yet taken
    box.event(SnapshotEvent("b", b"3"))
    box.write("update_job", "a", status="running")
    box.event(StatusEvent("a", "running", 0, 0))
    items, frames = box.take(wait=0)
    assert [i[0] for i in items] == ["write", "event"]
    assert [(f.job_id, f.data) for f in frames] == [("a", b"2"), ("b", b"3")]
    box.event(SnapshotEvent("a", b"4"))
    for epoch in range(1, 6):  # past max_items: frames go first, writes and metrics stay
        box.write("add_metrics", "a", [{"epoch": epoch}])
        box.event(MetricsEvent("a", [{"epoch": epoch}]))
    box.event(SnapshotEvent("a", b"5"))  # not kept while the outbox is over its size
    items, frames = box.take(wait=0)
    assert len(items) == 10 and frames == []
    assert box.dropped_frames == 2


def test_checkpoints_travel_as_the_bytes_of_the_servers_file(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    try:
        tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
        meta = {"engine": {"epoch": 7, "step": 70}, "trainer": {"lr": 0.1}}
        box = Outbox()
        actor = ActorStore(box, tmp_path / "scratch")
        actor.save_checkpoint("job", tensors, meta)
        items, _frames = box.take(wait=0)
        (_kind, method, (job_id, data), _kw), = items
        assert (method, job_id, checkpoint_header(data)) == ("checkpoint", "job", meta)
        write_atomic(store.checkpoint_path("job"), data)  # what the server does with it
        loaded, read_meta = store.load_checkpoint("job")
        assert read_meta == meta and torch.equal(loaded["w"], tensors["w"])
        store.save_checkpoint("other", tensors, meta)  # and back: the server's file to an actor
        other = ActorStore(Outbox(), tmp_path / "scratch")
        other.adopt("other", {"status": "paused", "owner": "o"},
                    store.checkpoint_path("other").read_bytes())
        again, again_meta = other.load_checkpoint("other")
        assert again_meta == meta and torch.equal(again["w"], tensors["w"])
        assert other.checkpoint_meta("other") == meta and other.get_job("other")["owner"] == "o"
    finally:
        store.close()


def test_placement_takes_the_least_measured_load_and_keeps_families_together():
    fast = placement.View("gpu", active=6, jobs=6, costs=[("k1", 0.001)] * 6)
    slow = placement.View("cpu", active=2, jobs=9, costs=[("k1", 0.004)] * 2)
    # (n + 1) x cost: 7 x 0.001 on the fast machine beats 3 x 0.004, whatever the job counts
    assert placement.choose([fast, slow], "k1") == "gpu"
    slow.active = 0  # an idle slow machine: 1 x 0.004 beats 7 x 0.001
    assert placement.choose([fast, slow], "k1") == "cpu"
    # A key never measured: the cluster's median, scaled by each machine's speed.
    assert placement.step_cost(fast, "k9", [fast, slow]) < placement.step_cost(
        slow, "k9", [fast, slow])
    # A family: its members' steps cost a tenth of a lone job's there, so a job of its key
    # joins it although that machine runs more jobs.
    family = placement.View("a", active=10, jobs=10, costs=[("k2", 0.0002)] * 10)
    alone = placement.View("b", active=4, jobs=4, costs=[("k3", 0.002)] * 4)
    assert placement.choose([family, alone], "k2") == "a"
    assert placement.choose([family, alone], "k3") == "b"
    assert placement.choose([], "k1") is None
    empty = [placement.View("x", 0), placement.View("y", 0)]
    assert placement.step_cost(empty[0], "k1", empty) == placement.DEFAULT_COST
    assert placement.choose(empty, "k1") == "x"


def test_a_dead_actors_jobs_go_back_to_their_checkpoint_and_fail_after_three_deaths(tmp_path):
    settings = Settings(data_dir=tmp_path, ray_address="127.0.0.1:1")
    store = Store(tmp_path / "playground.sqlite3")
    try:
        spec = JobSpec.model_validate(xor_spec(epochs=50)).model_dump(mode="json")
        running = store.create_job(token="t", owner="o", spec=spec, status="running")["id"]
        paused = store.create_job(token="t", owner="o", spec=spec, status="paused")["id"]
        store.save_checkpoint(running, {"w": torch.zeros(1)},
                              {"engine": {"epoch": 3, "step": 30}, "trainer": {}})
        engine = ClusterEngine(settings, store, datasets=None)
        slot = Slot("node", "10.0.0.9", 0, 0, 1.0)
        for death in (1, 2, 3):
            store.add_metrics(running, [{"epoch": e} for e in range(1, 6)], step=50)
            store.update_job(running, status="running", epoch=5, step=50)
            member = Member(slot, f"engine-{death}", None, {})
            member.jobs |= {running, paused}
            engine._died(member, "killed by the test")
            row = store.get_job(running)
            assert [r["epoch"] for r in store.history(running)] == [1, 2, 3]
            assert (row["epoch"], row["step"]) == (3, 30)
            if death < 3:
                assert row["status"] == "queued" and row["stop_reason"].startswith("moved:")
                assert engine.parked[running] == "running"  # waits for a live actor
            else:
                assert row["status"] == "failed"
                assert row["error"] == KILLED_TOO_OFTEN.format(n=3)
                assert engine.parked[running] == "failed"
            assert store.get_job(paused)["status"] == "paused"
            assert engine.parked[paused] == "paused"
        assert engine.progress(running)["status"] == "failed"
        assert engine.cluster() == {"actors": [], "waiting": 0}
    finally:
        store.close()


def test_an_answer_waits_until_the_writes_made_before_it_are_applied():
    member = Member(Slot("node", "10.0.0.9", 0, 0, 1.0), "engine-0", None, {})
    settled: list[str] = []
    member.after(0, lambda: settled.append("nothing owed"))
    member.after(5, lambda: settled.append("five"))
    member.after(7, lambda: settled.append("seven"))
    assert settled == ["nothing owed"]
    member.advance(3)
    assert settled == ["nothing owed"]
    member.advance(2)  # the fifth write is in the store: the answer that followed it goes out
    assert settled == ["nothing owed", "five"]
    member.release()  # the actor died: nothing more will come, nobody waits forever
    assert settled == ["nothing owed", "five", "seven"]
    box = Outbox()
    box.write("update_job", "a", status="paused")
    box.event(SnapshotEvent("a", b"frame"))  # frames are not counted: they are not ordered
    box.event(StatusEvent("a", "paused", 0, 0))
    assert box.appended == 2
