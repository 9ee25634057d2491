"""The timeline (issue 16): the scheme, and the pictures kept by a live server.

The scheme's functions are checked on their own; the rest runs `python -m server` on loopback
with SQLite on disk: the epochs kept follow the scheme exactly, a picture equals the frame
built from the checkpoint of that epoch, pictures survive a restart, go with a reset and with
the job, and the REST answers (404s, 403 in class mode).
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import numpy as np
import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine.snapshot import Snapshots
from server.engine.trainers import default_trainer_factory
from server.spec.job import JobSpec
from server.store import Store
from server.stream.wire import decode, values
from server.timeline import MAX_KEPT, count, density_for, kept, kept_epochs, next_wanted, spacing
from tests.classroom.conftest import class_env
from tests.conftest import start_server, stop_server

SPEC = {"dataset": {"name": "xor", "params": {"samples": 200}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": {"batch_size": 10, "seed": 7,
                     "optimizer": {"name": "sgd", "learning_rate": 0.03}}}


def spec(epochs: int, **training) -> dict:
    return {**SPEC, "training": {**SPEC["training"], "epochs": epochs, **training}}


# -- the scheme ---------------------------------------------------------------------------------

def test_the_scheme_keeps_every_epoch_to_31_then_16_per_doubling():
    assert kept_epochs(40) == [*range(33), 34, 36, 38, 40]
    assert kept_epochs(300)[-9:] == [208, 216, 224, 232, 240, 248, 256, 272, 288]
    assert [spacing(e) for e in (1, 31, 32, 63, 64, 128, 1024)] == [1, 1, 2, 2, 4, 8, 64]
    assert next_wanted(33) == 34 and next_wanted(65) == 68 and next_wanted(0) == 1


def test_the_scheme_stays_under_its_cap_and_sparser_schemes_are_subsets():
    for last in (0, 1, 100, 1000, 46_000, 50_000, 10**6, 10**9):
        assert count(last, density_for(last)) <= MAX_KEPT - 1
    assert density_for(46_000) == 16 and density_for(50_000) == 8
    for e in range(1, 5000):
        for density in (16, 8, 4, 2):
            if kept(e, density // 2):
                assert kept(e, density)
    assert all(count(last, 16) == len(kept_epochs(last)) for last in range(0, 2000, 37))


# -- a live server ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # Jobs train alone, so that every kept epoch is pictured at its end (families: below).
    server = start_server(tmp_path_factory.mktemp("timeline") / "data",
                          env={"PLAYGROUND_FAMILIES": "false"})
    yield server
    stop_server(server)


def create(client: httpx.Client, body: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.post("/api/jobs", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def wait_status(client: httpx.Client, job_id: str, status: str = "completed",
                headers: dict | None = None, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=headers or {}).json()
        if job["status"] == status:
            return job
        assert job["status"] != "failed", job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {status}")


def settled(client: httpx.Client, job_id: str, last: int, headers: dict | None = None) -> dict:
    """The job's timeline once its last epoch's picture is drawn (pictures are drawn within a
    budget, a moment after the epoch)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        timeline = client.get(f"/api/jobs/{job_id}/timeline", headers=headers or {}).json()
        if timeline["epochs"] and timeline["epochs"][-1] == last:
            return timeline
        time.sleep(0.1)
    raise AssertionError(f"job {job_id}: no picture of epoch {last}")


def picture(client: httpx.Client, job_id: str, epoch: int) -> tuple[dict, dict]:
    r = client.get(f"/api/jobs/{job_id}/timeline/{epoch}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    header, arrays = decode(r.content)
    assert int(r.headers["X-Timeline-Epoch"]) == header["epoch"]
    return header, arrays


def test_the_epochs_kept_follow_the_scheme_and_a_run_end(live):
    with live.client() as c:
        exact = create(c, spec(40))  # 40 is in the scheme
        extra = create(c, spec(45))  # 45 is not: kept as the run's end
        for job in (exact, extra):
            wait_status(c, job["id"])
        a = settled(c, exact["id"], 40)
        b = settled(c, extra["id"], 45)
    assert a["epochs"] == kept_epochs(40)
    assert b["epochs"] == [*kept_epochs(45), 45]
    assert a["epoch"] == 40 and a["density"] == 16 and a["max_kept"] == MAX_KEPT
    # Each picture's step is the epoch's last step: 100 training samples, batch 10.
    steps_per_epoch = 10
    assert a["steps"] == [e * steps_per_epoch for e in a["epochs"]]


def test_a_picture_is_the_frame_of_the_checkpoint_at_that_epoch(live):
    torch.set_num_threads(1)  # as the engine's thread
    with live.client() as c:
        job = create(c, spec(12))
        wait_status(c, job["id"])
        settled(c, job["id"], 12)
        header, arrays = picture(c, job["id"], 12)
        assert header["epoch"] == 12 and header["step"] == 120 and header["detail"] == "boundary"
        # A picture between kept epochs is the one at or before it.
        assert picture(c, job["id"], 5)[0]["epoch"] == 5
    job_spec = JobSpec.model_validate(spec(12))
    settings = Settings(data_dir=live.data_dir)
    dataset = DataRegistry(live.data_dir / "uploads", settings).load(job_spec.dataset)
    store = Store(live.data_dir / "playground.sqlite3")
    try:
        tensors, meta = store.load_checkpoint(job["id"])
    finally:
        store.close()
    trainer = default_trainer_factory(job_spec, dataset, torch.device("cpu"))
    trainer.load_state(tensors, meta.get("trainer", {}))
    assert trainer.epoch == 12
    built_header, built = decode(Snapshots().frame(trainer, dataset, {"detail": "boundary"}))
    assert set(arrays) == set(built) == {"output.boundary"}
    stored = values(header, arrays, "output.boundary")
    rebuilt = values(built_header, built, "output.boundary")
    assert stored.shape == (1, 100, 100)
    np.testing.assert_allclose(stored, rebuilt, atol=1e-6)


def test_the_same_seed_gives_the_same_initial_picture_and_weights(live):
    from server.nn.build import build_model

    with live.client() as c:
        first = create(c, spec(3))
        second = create(c, spec(3, optimizer={"name": "sgd", "learning_rate": 0.3}))
        other = create(c, spec(3, seed=8))
        for job in (first, second, other):
            wait_status(c, job["id"])
            settled(c, job["id"], 3)
        zero = [values(*picture(c, j["id"], 0), "output.boundary")
                for j in (first, second, other)]
        last = [values(*picture(c, j["id"], 3), "output.boundary") for j in (first, second)]
    np.testing.assert_array_equal(zero[0], zero[1])  # same seed and architecture
    assert not np.array_equal(zero[0], zero[2])  # another seed
    assert not np.array_equal(last[0], last[1])  # the learning rate made them part
    specs = [JobSpec.model_validate(spec(3)),
             JobSpec.model_validate(spec(3, optimizer={"name": "sgd", "learning_rate": 0.3}))]
    shape = DataRegistry(live.data_dir / "uploads",
                         Settings(data_dir=live.data_dir)).describe(specs[0].dataset)
    models = [build_model(s.model, shape, s.training.seed).state_dict() for s in specs]
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])


def test_unknown_epochs_and_jobs_are_404_with_a_reason(live):
    with live.client() as c:
        job = create(c, spec(3))
        wait_status(c, job["id"])
        settled(c, job["id"], 3)
        r = c.get(f"/api/jobs/{job['id']}/timeline/4")
        assert r.status_code == 404
        assert r.json()["detail"] == "Epoch 4 has not been trained yet: this job is at epoch 3."
        r = c.get("/api/jobs/nosuchjob/timeline")
        assert (r.status_code, r.json()["detail"]) == (404, "Job not found")
        assert c.get("/api/jobs/nosuchjob/timeline/0").status_code == 404
        r = c.get(f"/api/jobs/{job['id']}/timeline/-1")
        assert r.status_code == 422
        paused = create(c, {**spec(3), "start": False})
        r = c.get(f"/api/jobs/{paused['id']}/timeline/0")
        assert r.status_code == 404
        assert r.json()["detail"].startswith("This job has no pictures yet")
        assert c.get(f"/api/jobs/{paused['id']}/timeline").json()["epochs"] == []


def rows(data_dir, job_id: str) -> int:
    with sqlite3.connect(data_dir / "playground.sqlite3") as conn:
        return conn.execute("SELECT COUNT(*) FROM timeline WHERE job_id = ?",
                            (job_id,)).fetchone()[0]


def test_a_reset_clears_the_pictures_and_a_delete_removes_them(live):
    with live.client() as c:
        job = create(c, spec(4))
        wait_status(c, job["id"])
        settled(c, job["id"], 4)
        assert rows(live.data_dir, job["id"]) == 5
        r = c.post(f"/api/jobs/{job['id']}/control", json={"action": "reset"})
        assert r.status_code == 200, r.text
        assert c.get(f"/api/jobs/{job['id']}/timeline").json()["epochs"] == []
        c.post(f"/api/jobs/{job['id']}/control", json={"action": "resume"})
        wait_status(c, job["id"])
        assert settled(c, job["id"], 4)["epochs"] == [0, 1, 2, 3, 4]
        assert c.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert rows(live.data_dir, job["id"]) == 0
        assert c.get(f"/api/jobs/{job['id']}/timeline").status_code == 404


def test_family_members_are_pictured_exactly_and_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    first = start_server(data)  # families on (the default): a lone job is a family of one
    try:
        with first.client() as c:
            job = create(c, spec(300))
            wait_status(c, job["id"])
            before = settled(c, job["id"], 300)
            frame = c.get(f"/api/jobs/{job['id']}/timeline/17").content
    finally:
        stop_server(first)
    # Every kept epoch, with the weights the family snapshotted at that epoch's end (the
    # family's slices are not cut for it): 10 batches an epoch, so step = 10 x epoch.
    assert before["epochs"] == sorted({*kept_epochs(300), 300})
    assert before["steps"] == [10 * e for e in before["epochs"]]
    header, _ = decode(frame)
    assert (header["epoch"], header["step"]) == (17, 170)
    second = start_server(data)
    try:
        with second.client() as c:
            assert c.get(f"/api/jobs/{job['id']}/timeline").json() == before
            assert c.get(f"/api/jobs/{job['id']}/timeline/17").content == frame
    finally:
        stop_server(second)


def test_class_mode_reads_need_the_jobs_token(tmp_path):
    live = start_server(tmp_path / "data", env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    try:
        with live.client() as c:
            tokens = [c.post("/api/class/join", json={"code": "ROOM42", "name": n}).json()["token"]
                      for n in ("ana", "ben")]
            job = create(c, spec(2), token=tokens[0])
            mine = {"Authorization": f"Bearer {tokens[0]}"}
            wait_status(c, job["id"], headers=mine)
            settled(c, job["id"], 2, headers=mine)
            for path in (f"/api/jobs/{job['id']}/timeline", f"/api/jobs/{job['id']}/timeline/1"):
                assert c.get(path, headers=mine).status_code == 200
                r = c.get(path, headers={"Authorization": f"Bearer {tokens[1]}"})
                assert r.status_code == 403, r.text
                assert c.get(path).status_code in (401, 403)
    finally:
        stop_server(live)


# -- the engine's side, without a server --------------------------------------------------------

def test_a_picture_drawn_after_training_moved_on_shows_the_weights_of_its_epoch(tmp_path):
    """Pictures are drawn later than their epoch (within a budget): the copied state is what
    they show, and the live weights are left as they were."""
    from types import SimpleNamespace

    from server.timeline import Timeline

    torch.set_num_threads(1)
    job_spec = JobSpec.model_validate(spec(5))
    settings = Settings(data_dir=tmp_path)
    dataset = DataRegistry(tmp_path / "uploads", settings).load(job_spec.dataset)
    store = Store(tmp_path / "db.sqlite3")
    try:
        timeline = Timeline(store)
        trainer = default_trainer_factory(job_spec, dataset, torch.device("cpu"))
        fresh = default_trainer_factory(job_spec, dataset, torch.device("cpu"))  # same seed
        job = SimpleNamespace(id="j1", trainer=trainer, dataset=dataset, unwritten=[], step=0)
        jobs = {"j1": job}
        timeline.initial(job)
        for _ in range(2):
            records = trainer.train_epoch()
            job.step = trainer.step
            timeline.after(job, records)
        live = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        timeline.drain(jobs, busy=False)
        assert [e for e, _ in timeline.store.epochs("j1")] == [0, 1, 2]
        assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in live.items())
        stored = decode(timeline.store.at_or_before("j1", 0)[2])
        built = decode(Snapshots().frame(fresh, dataset, {"detail": "boundary"}))
        np.testing.assert_allclose(values(*stored, "output.boundary"),
                                   values(*built, "output.boundary"), atol=1e-6)
        # A picture noted before a reset (the job's step went back) is not drawn.
        trainer.train_epoch()
        timeline.after(job, [{"epoch": 3}])
        job.step = 0
        timeline.drain(jobs, busy=False)
        assert [e for e, _ in timeline.store.epochs("j1")] == [0, 1, 2]
    finally:
        store.close()
