"""Vmap families in the running server (issue 17): a class's CNN jobs train together.

A real server on loopback with five small CNN jobs on digits (different seeds, learning rates and
optimizers): /metrics shows them in a family; each job's history equals the same spec trained
alone by the plain Trainer (the oracle) within 1e-5; pausing one touches that job only and its
history stays its solo history; a job that diverges stops alone (paused at its last good state);
a PATCH (batch size, learning rate) changes that job only.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import start_server, stop_server
from tests.engine.common import control, create, get, history, wait_progress, wait_status
from tests.engine.test_families import alone, families

CNN = [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
       {"type": "maxpool2d", "pool_size": 2},
       {"type": "flatten"},
       {"type": "dense", "units": 8, "activation": "relu"}]
OPTIMIZERS = [("sgd", 0.05), ("momentum", 0.02), ("adam", 0.003), ("adam", 0.002),
              ("sgd", 0.03), ("adamw", 0.003)]


def cnn(seed: int, optimizer: str, lr: float, epochs: int = 2) -> dict:
    return {"dataset": {"name": "digits", "train_fraction": 0.2, "validation_fraction": 0.1},
            "model": {"layers": CNN},
            "training": {"epochs": epochs, "batch_size": 32, "seed": seed,
                         "optimizer": {"name": optimizer, "learning_rate": lr,
                                       "momentum": 0.5}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("vmap-families") / "data"
    server = start_server(data, env={"PLAYGROUND_CHECKPOINT_SECONDS": "0.2"})
    yield server
    stop_server(server)


def same_history(got: list[dict], want: list[dict]) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for a, b in zip(want, got, strict=True):
        for key in ("train_loss", "validation_loss", "test_loss"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
        assert b["step"] == a["step"]


def test_five_cnn_jobs_train_as_one_family_each_with_its_solo_history(live, tmp_path):
    specs = [cnn(10 + i, name, lr) for i, (name, lr) in enumerate(OPTIMIZERS[:5])]
    with live.client() as client:
        jobs = [create(client, dict(s, start=False)) for s in specs]
        for job in jobs:
            control(client, job["id"], "resume")
        deadline = time.monotonic() + 30
        seen = families(client)
        while max(seen[1], default=0) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = families(client)
        for job in jobs:
            wait_status(client, job["id"], "completed", timeout=120)
        for spec, job in zip(specs, jobs, strict=True):
            same_history(history(client, job["id"]), alone(spec, tmp_path / "oracle"))
    assert max(seen[1]) >= 2, seen  # they trained together


def test_pause_one_cnn_job_and_a_diverging_one_stops_alone(live, tmp_path):
    specs = [cnn(20 + i, name, lr, epochs=3) for i, (name, lr) in enumerate(OPTIMIZERS[:3])]
    bad = cnn(30, "sgd", 100, epochs=3)  # its outputs become infinite at step 8
    for s in [*specs, bad]:
        s["training"]["loss"] = "mse"  # one family with the diverging job
    # the paused one trains until stopped (3 epochs could end before the pause came)
    until_stopped = dict(specs[0], training={**specs[0]["training"], "epochs": None})
    with live.client() as client:
        jobs = [create(client, dict(s, start=False)) for s in [until_stopped, *specs[1:]]]
        broken = create(client, dict(bad, start=False))
        for job in [*jobs, broken]:
            control(client, job["id"], "resume")
        target = jobs[0]["id"]
        control(client, target, "pause")
        paused_at = get(client, target)["progress"]["step"]
        time.sleep(0.5)
        assert get(client, target)["progress"]["step"] == paused_at
        deadline = time.monotonic() + 60
        while get(client, broken["id"]).get("stop_reason") != "diverged":
            assert time.monotonic() < deadline, get(client, broken["id"])
            time.sleep(0.05)
        diverged = get(client, broken["id"])  # paused at its last good state (issue 16)
        assert diverged["status"] == "paused"
        assert diverged["error"].startswith("diverged: loss became infinite at epoch 1")
        control(client, target, "resume")
        wait_progress(client, target, "epoch", 3)
        control(client, target, "stop")
        same_history(history(client, target)[:3], alone(specs[0], tmp_path / "oracle"))
        for spec, job in zip(specs[1:], jobs[1:], strict=True):
            done = wait_status(client, job["id"], ("failed", "completed"), timeout=120)
            assert done["status"] == "completed", done["error"]
            same_history(history(client, job["id"]), alone(spec, tmp_path / "oracle"))


def test_patch_one_cnn_job_of_a_family_touches_that_job_alone(live, tmp_path):
    specs = [cnn(40 + i, name, lr, epochs=3) for i, (name, lr) in enumerate(OPTIMIZERS[:3])]
    specs[0] = dict(specs[0], training={**specs[0]["training"], "epochs": None})  # until stopped
    with live.client() as client:
        jobs = [create(client, dict(s, start=False)) for s in specs]
        target = jobs[0]["id"]
        for job in jobs:
            control(client, job["id"], "resume")
        wait_progress(client, target, "epoch", 1)  # training in the family when patched
        r = client.patch(f"/api/jobs/{target}",
                         json={"training": {"batch_size": 16,
                                            "optimizer": {"learning_rate": 0.001}}})
        assert r.status_code == 200, r.text
        patched_at = get(client, target)["progress"]["epoch"]
        for spec, job in zip(specs[1:], jobs[1:], strict=True):
            done = wait_status(client, job["id"], ("failed", "completed"), timeout=120)
            assert done["status"] == "completed", done["error"]
            same_history(history(client, job["id"]), alone(spec, tmp_path / "oracle"))
        wait_progress(client, target, "epoch", patched_at + 1)
        control(client, target, "stop")
        last = history(client, target)[-1]
        assert (last["learning_rate"], last["batch_size"]) == (pytest.approx(0.001), 16)
