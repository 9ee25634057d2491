"""Families in the running server (issue 17): a class of jobs trains together, invisibly.

A real server on loopback with 12 jobs of one exercise (different widths, features, learning
rates, optimizers, batch sizes): /metrics shows them in families; each job's history equals the
same spec trained alone by the plain Trainer (the oracle) within 1e-5; pausing, PATCHing and
resetting one job touches that job only; a NaN in one job fails it alone; kill -9 while a
family trains loses nothing more than without families and every job resumes.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import JobSpec
from server.train.trainer import Trainer
from tests.conftest import start_server, stop_server
from tests.engine.common import (
    control,
    create,
    delete,
    get,
    history,
    wait_progress,
    wait_status,
)

FEATURES = [["x1", "x2"], ["x1", "x2", "x1^2", "x2^2"], ["x1", "x2", "x1*x2"]]


def exercise(rnd: random.Random, epochs: int | None = 6, **training) -> dict:
    """One class exercise: 2-?-?-1 tanh on circle, varied like students vary it."""
    return {"dataset": {"name": "circle", "features": rnd.choice(FEATURES)},
            "model": {"layers": [{"type": "dense", "units": rnd.randint(2, 8),
                                  "activation": "tanh"},
                                 {"type": "dense", "units": rnd.randint(2, 8),
                                  "activation": "tanh"}]},
            "training": {"epochs": epochs, "batch_size": rnd.choice([10, 30]),
                         "seed": rnd.randint(0, 999),
                         "optimizer": {"name": "sgd",
                                       "learning_rate": rnd.choice([0.01, 0.03])},
                         **training}}


def alone(spec: dict, tmp_path) -> list[dict]:
    """The oracle: the same spec trained by the plain Trainer in this process."""
    job = JobSpec.model_validate(spec)
    registry = DataRegistry(tmp_path, Settings(data_dir=tmp_path))
    trainer = Trainer(job, registry.load(job.dataset))
    records = []
    while not trainer.finished:
        records += trainer.train_batches(1000)
    return records


def families(client) -> tuple[int, list[int]]:
    text = client.get("/metrics").text
    count = int(float(re.search(r"^playground_families (\S+)$", text, re.M).group(1)))
    sizes = [int(float(v)) for v in re.findall(r'^playground_family_jobs\{[^}]*\} (\S+)$',
                                               text, re.M)]
    return count, sizes


@pytest.fixture()
def live(tmp_path):
    server = start_server(tmp_path / "data", env={"PLAYGROUND_CHECKPOINT_SECONDS": "0.2"})
    yield server
    stop_server(server)


def test_a_class_trains_in_families_and_each_history_is_its_solo_history(live, tmp_path):
    # Until stopped: a family trains a 6-epoch budget in milliseconds, before the next job's
    # trainer is even built, so the jobs run on until they are seen training together; each
    # one's first 6 epochs are then compared with the same spec trained alone for 6.
    rnd = random.Random(3)
    specs = [exercise(rnd, epochs=None) for _ in range(12)]
    with live.client() as client:
        jobs = [create(client, dict(s, start=False)) for s in specs]
        for job in jobs:
            control(client, job["id"], "resume")
        deadline = time.monotonic() + 30
        seen = families(client)
        while max(seen[1], default=0) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # trainers still being built
            seen = families(client)
        for job in jobs:
            wait_progress(client, job["id"], "epoch", 6)
            control(client, job["id"], "pause")
        for spec, job in zip(specs, jobs, strict=True):
            got = history(client, job["id"])[:6]
            spec["training"]["epochs"] = 6
            want = alone(spec, tmp_path / "oracle")
            assert [r["epoch"] for r in got] == list(range(1, 7))
            for a, b in zip(want, got, strict=True):
                for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
                    assert b[key] == pytest.approx(a[key], abs=1e-5), key
                assert b["step"] == a["step"]
    assert seen[0] >= 1 and max(seen[1]) >= 2, seen  # they trained together


def test_pause_patch_and_reset_touch_one_job_of_a_family(live):
    rnd = random.Random(5)
    specs = [exercise(rnd, epochs=None) for _ in range(8)]
    with live.client() as client:
        jobs = [create(client, s) for s in specs]
        target, others = jobs[0]["id"], [j["id"] for j in jobs[1:]]
        wait_progress(client, target, "epoch", 2)
        control(client, target, "pause")
        paused_at = get(client, target)["progress"]["step"]
        before = {j: get(client, j)["progress"]["step"] for j in others}
        time.sleep(1.0)
        assert get(client, target)["progress"]["step"] == paused_at
        assert all(get(client, j)["progress"]["step"] > before[j] for j in others)
        r = client.patch(f"/api/jobs/{target}",
                         json={"training": {"optimizer": {"learning_rate": 0.005}}})
        assert r.status_code == 200, r.text
        control(client, target, "resume")
        epoch = get(client, target)["progress"]["epoch"]
        wait_progress(client, target, "epoch", epoch + 2)
        assert history(client, target)[-1]["learning_rate"] == pytest.approx(0.005)
        assert all(history(client, j)[-1]["learning_rate"] in (0.01, 0.03) for j in others)
        control(client, target, "reset")
        progress = get(client, target)["progress"]
        assert progress["epoch"] <= 1
        assert all(get(client, j)["progress"]["epoch"] >= 2 for j in others)
        # a reset takes the job out of its family; the seven others form one again at the
        # engine's next turn
        deadline = time.monotonic() + 10
        while True:
            count, sizes = families(client)
            if (count >= 1 and sum(sizes) >= 7) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert count >= 1 and sum(sizes) >= 7, (count, sizes)
        for job in jobs:
            delete(client, job["id"])


def test_a_nan_in_one_job_pauses_that_job_alone(live):
    rnd = random.Random(7)
    specs = [exercise(rnd, epochs=4) for _ in range(5)]
    bad = exercise(rnd, epochs=4)
    bad["dataset"]["features"] = ["x1", "x2", "x1^2", "x2^2"]
    bad["training"]["optimizer"]["learning_rate"] = 100
    bad["training"]["loss"] = "mse"
    bad["training"]["optimizer"]["name"] = "sgd"
    for s in specs:
        s["training"]["loss"] = "mse"
    with live.client() as client:
        jobs = [create(client, s) for s in specs]
        broken = create(client, bad)
        failed = wait_status(client, broken["id"], ("failed", "completed", "paused"),
                             timeout=60)
        # Issue 16: paused at its last good state, not failed (tests/engine/test_rewind.py).
        assert failed["status"] == "paused" and failed["stop_reason"] == "diverged"
        assert failed["error"].startswith("diverged: loss became")
        for job in jobs:
            done = wait_status(client, job["id"], ("failed", "completed"), timeout=120)
            assert done["status"] == "completed", done["error"]
            assert len(history(client, job["id"])) == 4


def test_kill_9_with_a_family_training_and_every_job_resumes(tmp_path):
    rnd = random.Random(9)
    env = {"PLAYGROUND_CHECKPOINT_SECONDS": "0.05"}
    data = tmp_path / "data"
    server = start_server(data, env=env)
    specs = [exercise(rnd, epochs=None) for _ in range(6)]
    with server.client() as client:
        jobs = [create(client, s)["id"] for s in specs]
        for job in jobs:
            wait_progress(client, job, "epoch", 3)
        assert families(client)[0] >= 1
        time.sleep(0.3)
        before = {job: history(client, job) for job in jobs}
    server.kill()
    server = start_server(data, env=env)
    try:
        with server.client() as client:
            for job in jobs:
                again = get(client, job)
                assert again["status"] == "paused"
                epoch = again["progress"]["epoch"]
                kept = history(client, job)
                assert [r["epoch"] for r in kept] == list(range(1, epoch + 1))
                # epochs stored between the read above and the kill are kept too
                n = min(epoch, len(before[job]))
                assert kept[:n] == before[job][:n]
                control(client, job, "resume")
            for job in jobs:
                epoch = len(before[job])
                wait_progress(client, job, "epoch", epoch + 2)
                control(client, job, "pause")
                resumed = history(client, job)
                assert [r["epoch"] for r in resumed] == list(range(1, len(resumed) + 1))
                overlap = min(len(before[job]), len(resumed))
                assert [r["train_loss"] for r in resumed[:overlap]] == pytest.approx(
                    [r["train_loss"] for r in before[job][:overlap]], abs=1e-5)
    finally:
        stop_server(server)
