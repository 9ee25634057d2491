"""A diverging job pauses at its last good state, through a live server (issue 16, "See why"):
the status and GET /api/jobs/{id} carry `diverged`, the history is intact, resuming unchanged
diverges again and says so, a tenfold smaller learning rate or gradient clipping trains on to
the epoch limit, and in a family only the diverging member pauses."""

from __future__ import annotations

import random
import time

import pytest
import torch

from tests.conftest import start_server, stop_server
from tests.engine.common import control, create, delete, dense, get, history, wait_status
from tests.engine.test_families import exercise

pytestmark = pytest.mark.slow


def plane_spec(epochs: int = 12) -> dict:
    return {"dataset": {"name": "plane"}, "start": False,
            "model": {"layers": [dense(8, "relu"), dense(8, "tanh")]},
            "training": {"epochs": epochs, "batch_size": 10, "loss": "mse",
                         "optimizer": {"name": "sgd", "learning_rate": 0.01}}}


def patch(client, job_id: str, body: dict, status: int = 200) -> dict:
    r = client.patch(f"/api/jobs/{job_id}", json=body)
    assert r.status_code == status, r.text
    return r.json()


def epochs_of(client, job_id: str) -> list[int]:
    return [r["epoch"] for r in history(client, job_id)]


def diverge_after(client, job_id: str, good: int, lr: float = 100.0) -> dict:
    """Train `good` epochs by steps, then a learning rate that blows up, resumed."""
    for _ in range(good):
        control(client, job_id, "step", unit="epoch")
    patch(client, job_id, {"training": {"optimizer": {"learning_rate": lr}}})
    control(client, job_id, "resume")
    return wait_status(client, job_id, ("paused", "failed", "completed"))


def test_a_diverged_job_pauses_at_its_last_good_epoch_and_retries(server):
    with server.client() as client:
        job = create(client, plane_spec())
        paused = diverge_after(client, job["id"], good=3)
        assert paused["status"] == "paused" and paused["stop_reason"] == "diverged"
        d = paused["diverged"]
        assert d["rewound_to"]["epoch"] == paused["progress"]["epoch"] == 3
        assert d["epoch"] == 4 and d["loss"] in ("NaN", "infinite")
        assert d["where"] in ("values", "gradients") and d["what"] in ("NaN", "infinite")
        assert isinstance(d["layer"], int) and d["layer_type"] == "dense"
        assert d["repeated"] == 1 and d["message"] == paused["error"]
        assert paused["error"].startswith(f"diverged: loss became {d['loss']} at epoch 4; ")
        assert "paused at epoch 3, its last good state" in paused["error"]
        assert epochs_of(client, job["id"]) == [1, 2, 3]  # intact, nothing of the bad epoch

        # Resumed unchanged, it blows up again at the same place, and says so.
        control(client, job["id"], "resume")
        again = wait_status(client, job["id"], ("paused", "failed", "completed"))
        assert again["status"] == "paused" and again["diverged"]["repeated"] == 2
        assert "resuming unchanged diverges again" in again["error"]
        assert again["progress"]["epoch"] == 3 and epochs_of(client, job["id"]) == [1, 2, 3]

        # Retry with gradient clipping: a bad value is a clear 422, a good one is kept.
        for bad in (0, -1, "1", 1e7):
            r = client.patch(f"/api/jobs/{job['id']}", json={"training": {"gradient_clip": bad}})
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"][-1] == "gradient_clip" or "gradient_clip" in str(
                r.json()["detail"][0]["loc"])
        spec = patch(client, job["id"], {"training": {"gradient_clip": 1.0,
                                                      "optimizer": {"learning_rate": 0.01}}})
        assert spec["spec"]["training"]["gradient_clip"] == 1.0
        resumed = control(client, job["id"], "resume")
        assert resumed["status"] in ("running", "queued") and resumed["diverged"] is None
        done = wait_status(client, job["id"], ("completed", "failed", "paused"))
        assert done["status"] == "completed", done["error"]
        assert done["error"] is None and done["diverged"] is None
        assert epochs_of(client, job["id"]) == list(range(1, 13))
        delete(client, job["id"])


def test_a_tenfold_smaller_learning_rate_trains_on_to_the_epoch_limit(server):
    with server.client() as client:
        job = create(client, plane_spec(epochs=8))
        paused = diverge_after(client, job["id"], good=2, lr=50.0)
        assert paused["status"] == "paused" and paused["progress"]["epoch"] == 2
        lr = 50.0
        for _ in range(5):  # the page's button: a tenfold smaller rate, then resume
            lr /= 10
            patch(client, job["id"], {"training": {"optimizer": {"learning_rate": lr}}})
            control(client, job["id"], "resume")
            end = wait_status(client, job["id"], ("paused", "completed", "failed"))
            if end["status"] != "paused":
                break
            assert end["progress"]["epoch"] == 2 and end["diverged"]["repeated"] == 1
        assert end["status"] == "completed", end
        records = history(client, job["id"])
        assert [r["epoch"] for r in records] == list(range(1, 9))
        assert records[2]["learning_rate"] == pytest.approx(lr)
        delete(client, job["id"])


@pytest.fixture()
def live(tmp_path):
    server = start_server(tmp_path / "data", env={"PLAYGROUND_CHECKPOINT_SECONDS": "0.2"})
    yield server
    stop_server(server)


def test_in_a_family_only_the_diverging_member_pauses(live):
    rnd = random.Random(11)
    specs = [exercise(rnd, epochs=6, loss="mse") for _ in range(4)]
    bad = exercise(rnd, epochs=6, loss="mse")
    bad["training"]["optimizer"]["learning_rate"] = 100
    bad["dataset"]["features"] = ["x1", "x2", "x1^2", "x2^2"]
    with live.client() as client:
        jobs = [create(client, s) for s in specs]
        broken = create(client, bad)
        paused = wait_status(client, broken["id"], ("paused", "failed", "completed"), timeout=60)
        assert paused["status"] == "paused" and paused["stop_reason"] == "diverged"
        d = paused["diverged"]
        good = d["rewound_to"]["epoch"]
        assert d["epoch"] == good + 1 and paused["progress"]["epoch"] == good
        assert epochs_of(client, broken["id"]) == list(range(1, good + 1))
        for job in jobs:
            done = wait_status(client, job["id"], ("failed", "completed", "paused"),
                               timeout=120)
            assert done["status"] == "completed", done["error"]
            assert epochs_of(client, job["id"]) == list(range(1, 7))
        patch(client, broken["id"], {"training": {"optimizer": {"learning_rate": 0.01}}})
        control(client, broken["id"], "resume")
        done = wait_status(client, broken["id"], ("failed", "completed", "paused"), timeout=60)
        assert done["status"] == "completed", done["error"]
        assert epochs_of(client, broken["id"]) == list(range(1, 7))
        assert get(client, broken["id"])["diverged"] is None


def test_a_model_without_a_copy_in_memory_rewinds_to_its_checkpoint_and_replays(
        tmp_path, monkeypatch):
    """In process: with no copy of the last epoch in memory (as for a large model) the engine
    loads the checkpoint (epoch 3, written by the PATCH) and trains epoch 4 again alone; the
    state it pauses in is the plain trainer's at epoch 4, exactly."""
    from server.config import Settings
    from server.data.registry import DataRegistry
    from server.engine.engine import Engine
    from server.spec.job import JobSpec
    from server.store import Store
    from server.train.trainer import Trainer

    monkeypatch.setattr("server.train.trainer.REWIND_MAX_BYTES", 16)
    settings = Settings(data_dir=tmp_path, checkpoint_seconds=3600, families=False)
    store = Store(tmp_path / "db.sqlite3")
    registry = DataRegistry(tmp_path / "uploads", settings)
    engine = Engine(settings, store, registry)
    statuses = []

    class Loop:
        def call_soon_threadsafe(self, fn, *args):
            fn(*args)

    engine.start(Loop(), lambda event: statuses.append(event) if event.type == "status"
                 else None)
    try:
        raw = plane_spec(epochs=40)
        raw["training"]["optimizer"]["name"] = "momentum"
        spec = JobSpec.model_validate(raw)
        row = store.create_job(token="t", owner="o", spec=spec.model_dump(mode="json"),
                               status="paused")
        job_id = row["id"]
        engine.create(job_id, spec).result(10)
        for _ in range(3):
            engine.control(job_id, "step", "epoch").result(10)
        engine.patch(job_id, {"training": {"optimizer": {"learning_rate": 0.3}}}).result(10)
        engine.control(job_id, "resume").result(10)
        deadline = time.monotonic() + 30
        while store.get_job(job_id)["status"] != "paused" and time.monotonic() < deadline:
            time.sleep(0.05)
        row = store.get_job(job_id)
        assert row["status"] == "paused" and row["stop_reason"] == "diverged"
        assert row["error"].startswith("diverged: loss became infinite at epoch 5; ")
        assert [r["epoch"] for r in store.history(job_id)] == [1, 2, 3, 4]
        diverged = engine.progress(job_id)["diverged"]
        assert diverged["rewound_to"]["epoch"] == 4 and diverged["epoch"] == 5
        assert statuses[-1].status == "paused" and statuses[-1].diverged == diverged
        trainer = engine._jobs[job_id].trainer
        assert not trainer.rewind_in_memory and not trainer.finished
        oracle = Trainer(spec, registry.load(spec.dataset))
        for _ in range(3):
            oracle.train_epoch()
        oracle.set_learning_rate(0.3)
        oracle.train_epoch()
        mine, theirs = trainer.state_tensors(), oracle.state_tensors()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    finally:
        engine.stop()
        store.close()
