"""Long histories (issue 12, item 7): hello carries a downsampled history and says so, the whole
one pages from GET /api/jobs/{id}/metrics?since=&limit=, stored records past a count keep
their confusion matrices only every Nth epoch, and a job that trains until stopped is paused
when nobody watched it, whether the page or a script made it."""

from __future__ import annotations

import time

import pytest

from tests.conftest import start_server, stop_server
from tests.stream.conftest import Client, connect, run

FAST = {"dataset": {"name": "xor", "params": {"samples": 40}},
        "model": {"layers": [{"type": "dense", "units": 2, "activation": "tanh"}]},
        "training": {"epochs": None, "batch_size": 64}}  # one step an epoch


@pytest.fixture()
def live(tmp_path):
    server = start_server(tmp_path / "data", env={
        "PLAYGROUND_HELLO_MAX_POINTS": "50", "PLAYGROUND_HISTORY_DETAIL_EPOCHS": "20",
        "PLAYGROUND_HISTORY_DETAIL_EVERY": "5", "PLAYGROUND_UNWATCHED_JOB_SECONDS": "3"})
    yield server
    stop_server(server)


def _listed(http, job_id: str) -> dict:
    """The job as GET /api/jobs lists it (a list read does not count as watching one job)."""
    return next(j for j in http.get("/api/jobs").json()["jobs"] if j["id"] == job_id)


def _train_until(http, job_id: str, epochs: int) -> int:
    deadline = time.monotonic() + 60
    while _listed(http, job_id)["progress"]["epoch"] < epochs:
        assert time.monotonic() < deadline, "training too slow"
        time.sleep(0.1)
    assert http.post(f"/api/jobs/{job_id}/control", json={"action": "pause"}).status_code == 200
    return http.get(f"/api/jobs/{job_id}").json()["progress"]["epoch"]


def test_hello_history_is_downsampled_and_the_whole_pages_from_rest(live):
    with live.client() as http:
        job_id = http.post("/api/jobs", json=FAST).json()["id"]
        total = _train_until(http, job_id, 230)

        async def hello():
            async with connect(live, job_id) as ws:
                return await Client(ws).recv()

        hello = run(hello())
        points = hello["metrics"]
        assert hello["history_total"] == total
        stride = hello["history_stride"]
        assert stride == -(-total // 49) and len(points) <= 50
        epochs = [p["epoch"] for p in points]
        assert epochs[:-1] == list(range(1, total, stride))[: len(epochs) - 1]
        assert epochs[-1] == total  # the last point is always there

        pages, since = [], None
        while True:
            params = {"limit": 64, **({"since": since} if since is not None else {})}
            body = http.get(f"/api/jobs/{job_id}/metrics", params=params).json()
            assert len(body["history"]) <= 64
            pages += body["history"]
            since = body["next_since"]
            if since is None:
                break
        assert [p["epoch"] for p in pages] == list(range(1, total + 1))
        whole = http.get(f"/api/jobs/{job_id}/metrics").json()
        assert whole["history"] == pages and whole["next_since"] is None
        for bad in ({"limit": 0}, {"limit": 100_001}, {"limit": "ten"}, {"since": -1}):
            r = http.get(f"/api/jobs/{job_id}/metrics", params=bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["detail"][0]["loc"][-1] in bad


def test_long_histories_keep_confusion_matrices_only_every_nth_epoch(live):
    with live.client() as http:
        job_id = http.post("/api/jobs", json=FAST).json()["id"]
        total = _train_until(http, job_id, 60)
        history = http.get(f"/api/jobs/{job_id}/metrics").json()["history"]
        assert [p["epoch"] for p in history] == list(range(1, total + 1))
        for point in history:
            kept = point["epoch"] <= 20 or point["epoch"] % 5 == 0
            assert ("train_confusion_matrix" in point) is kept, point["epoch"]
            assert ("test_confusion_matrix" in point) is kept, point["epoch"]
            assert isinstance(point["train_loss"], float)  # every number stays
            assert "test_accuracy" in point


def test_a_script_made_job_nobody_watches_is_paused_and_a_polled_one_is_not(live):
    with live.client() as http:
        left = http.post("/api/jobs", json=FAST).json()["id"]
        polled = http.post("/api/jobs", json=FAST).json()["id"]
        budgeted = http.post("/api/jobs", json={
            **FAST, "training": {**FAST["training"], "epochs": 100_000}}).json()["id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # a script that polls one of its jobs
            assert http.get(f"/api/jobs/{polled}").json()["status"] == "running"
            time.sleep(0.3)
        job = _listed(http, left)
        assert job["status"] == "paused"
        assert job["stop_reason"].startswith("paused: nobody was watching it")
        assert _listed(http, polled)["status"] == "running"
        assert _listed(http, budgeted)["status"] in ("running", "completed")
        deadline = time.monotonic() + 10  # the script stops polling: paused in turn
        while _listed(http, polled)["status"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.2)
