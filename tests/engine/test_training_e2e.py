"""The engine as a client sees it, on a live server: training outcomes, determinism, pause and
resume, step, divergence, fairness, and a SIGKILL in mid-training."""

from __future__ import annotations

import time

import pytest

from tests.conftest import start_server, stop_server
from tests.engine.common import (
    circle_spec,
    control,
    create,
    delete,
    dense,
    digits_spec,
    get,
    history,
    wait_progress,
    wait_status,
    xor_spec,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("spec, metric, target", [
    (xor_spec(epochs=100), "test_accuracy", 1.0),
    (circle_spec(epochs=100), "test_accuracy", 0.98),
    (digits_spec(epochs=15), "test_accuracy", 0.95),
], ids=["xor", "circle", "digits"])
def test_known_problems_reach_their_accuracy(server, spec, metric, target):
    with server.client() as client:
        job = create(client, spec)
        done = wait_status(client, job["id"], ("completed", "failed"), timeout=120)
        assert done["status"] == "completed", done["error"]
        assert done["stop_reason"] == "epochs"
        assert done["metrics"][metric] >= target, done["metrics"]
        records = history(client, job["id"])
        assert [r["epoch"] for r in records] == list(range(1, spec["training"]["epochs"] + 1))
        delete(client, job["id"])


def test_the_same_seed_twice_gives_the_same_loss_histories(server):
    # Two jobs with one seed train together (one family) or alone depending on timing: their
    # histories agree within float rounding (docs/INTERNALS.md, "Families").
    with server.client() as client:
        jobs = [create(client, xor_spec(epochs=20, seed=7)) for _ in range(2)]
        for job in jobs:
            wait_status(client, job["id"], "completed")
        a, b = (history(client, job["id"]) for job in jobs)
        assert len(a) == len(b) == 20
        for key in ("train_loss", "test_loss"):
            assert [r[key] for r in a] == pytest.approx([r[key] for r in b], abs=1e-5)
        for job in jobs:
            delete(client, job["id"])


def test_pause_stops_progress_step_works_and_resume_continues(server):
    with server.client() as client:
        job = create(client, xor_spec(epochs=None))
        wait_progress(client, job["id"], "step", 50)
        paused = control(client, job["id"], "pause")
        assert paused["status"] == "paused"
        time.sleep(0.5)
        assert get(client, job["id"])["progress"] == paused["progress"]
        stepped = control(client, job["id"], "step")
        assert stepped["status"] == "paused"
        assert stepped["progress"]["step"] == paused["progress"]["step"] + 1
        by_epoch = control(client, job["id"], "step", unit="epoch")
        # One epoch on from where the batch step left it (which may be a new epoch already).
        assert by_epoch["progress"]["epoch"] == stepped["progress"]["epoch"] + 1
        assert control(client, job["id"], "resume")["status"] == "running"
        wait_progress(client, job["id"], "step", by_epoch["progress"]["step"] + 50)
        stopped = control(client, job["id"], "stop")
        assert stopped["status"] == "stopped" and stopped["finished_at"]
        delete(client, job["id"])


def test_a_learning_rate_of_100_diverges_and_the_next_job_trains_fine(server):
    with server.client() as client:
        bad = create(client, {"dataset": {"name": "plane"},
                              "model": {"layers": [dense(8, "relu")]},
                              "training": {"epochs": 50, "optimizer": {"name": "sgd",
                                                                       "learning_rate": 100}}})
        failed = wait_status(client, bad["id"], ("failed", "completed", "paused"))
        # Issue 16: paused at its last good state (tests/engine/test_rewind.py), not failed.
        assert failed["status"] == "paused" and failed["stop_reason"] == "diverged"
        assert failed["error"].startswith("diverged: loss became ")
        assert failed["error"].endswith(": try a lower learning rate or gradient clipping")
        history(client, bad["id"])  # strict JSON: no NaN anywhere
        good = create(client, xor_spec(epochs=30))
        done = wait_status(client, good["id"], ("completed", "failed"))
        assert done["status"] == "completed" and done["metrics"]["test_accuracy"] >= 0.9
        for job in (bad, good):
            delete(client, job["id"])


def test_three_concurrent_jobs_progress_within_ten_percent(server):
    with server.client() as client:
        # Progress is counted in steps, and an epoch's evaluation is charged to the job that
        # ends the epoch: many steps per epoch keep that lumpiness well under the 10%.
        spec = circle_spec(epochs=None)
        spec["dataset"]["params"] = {"samples": 2000}
        ids = [create(client, {**spec, "start": False})["id"] for _ in range(3)]
        for job_id in ids:
            control(client, job_id, "resume")
        time.sleep(0.5)

        def steps() -> dict[str, int]:
            jobs = client.get("/api/jobs").json()["jobs"]
            return {j["id"]: j["progress"]["step"] for j in jobs if j["id"] in ids}

        before = steps()
        time.sleep(3.0)
        after = steps()
        gains = [after[i] - before[i] for i in ids]
        for job_id in ids:
            delete(client, job_id)
        assert min(gains) > 0
        assert max(gains) / min(gains) <= 1.10, gains


def test_sigkill_mid_training_keeps_every_history_and_the_job_resumes(tmp_path):
    # Checkpoints every 50 ms: the kill often lands in the middle of writing one.
    env = {"PLAYGROUND_CHECKPOINT_SECONDS": "0.05"}
    data = tmp_path / "data"
    live = start_server(data, env=env)
    with live.client() as client:
        job = create(client, circle_spec(epochs=None))
        done = create(client, xor_spec(epochs=5))
        wait_status(client, done["id"], "completed")
        wait_progress(client, job["id"], "epoch", 8)
        time.sleep(0.4)
        before = history(client, job["id"])
    live.kill()  # SIGKILL: no shutdown, no last checkpoint
    live = start_server(data, env=env)
    try:
        assert not list((data / "checkpoints").glob(".*"))  # no half-written file is left
        with live.client() as client:
            again = get(client, job["id"])
            assert again["status"] == "paused"
            epoch = again["progress"]["epoch"]
            assert epoch >= 1
            kept = history(client, job["id"])
            assert [r["epoch"] for r in kept] == list(range(1, epoch + 1))
            # The history up to the checkpoint is unchanged.
            assert kept[:len(before)] == before[:epoch]
            finished = history(client, done["id"])
            assert [r["epoch"] for r in finished] == [1, 2, 3, 4, 5]
            assert get(client, done["id"])["status"] == "completed"
            control(client, job["id"], "resume")
            wait_progress(client, job["id"], "epoch", epoch + 3)
            control(client, job["id"], "pause")
            resumed = history(client, job["id"])
            assert [r["epoch"] for r in resumed] == list(range(1, len(resumed) + 1))
            # Replayed epochs are the same numbers: training resumed from the checkpoint.
            overlap = min(len(before), len(resumed))
            # (Within float rounding: before the kill the two jobs may have trained as one
            # family, after it this one trains alone.)
            assert [r["train_loss"] for r in resumed[:overlap]] == pytest.approx(
                [r["train_loss"] for r in before[:overlap]], abs=1e-5)
    finally:
        stop_server(live)
