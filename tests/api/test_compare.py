"""Comparing runs: histories aligned on the union of epochs (None where a job has no such
epoch), spec summaries, and the spec fields that differ; then the route on a live server with
jobs of different lengths."""

from __future__ import annotations

import time

import pytest

from server.api.compare import align_histories, compare_jobs, spec_differences, spec_summary

SPEC_A = {
    "name": "a", "start": True,
    "dataset": {"name": "xor", "params": {"noise": 0.1}, "features": ["x1", "x2"]},
    "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
    "training": {"optimizer": {"name": "sgd", "learning_rate": 0.03}, "batch_size": 10,
                 "regularization": {"kind": "none", "rate": 0.0}, "epochs": 3},
}
SPEC_B = {
    "name": "b", "start": False,
    "dataset": {"name": "xor", "params": {"noise": 0.1}, "features": ["x1", "x2"]},
    "model": {"layers": [{"type": "dense", "units": 4, "activation": "relu"},
                         {"type": "dense", "units": 2, "activation": "relu"}]},
    "training": {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "batch_size": 10,
                 "regularization": {"kind": "l2", "rate": 0.001}, "epochs": 5},
}


def history(epochs, offset=0.0):
    return [{"epoch": e, "train_loss": 1.0 / e + offset, "test_loss": 2.0 / e,
             "confusion": [[1, 2], [3, 4]]} for e in epochs]


def test_histories_of_different_lengths_align_on_the_union_of_epochs():
    epochs, aligned = align_histories([history([1, 2, 3]), history([1, 2, 3, 4, 5], 0.5),
                                       history([2, 4])])
    assert epochs == [1, 2, 3, 4, 5]
    assert aligned[0]["train_loss"] == [1.0, 0.5, 1 / 3, None, None]
    assert aligned[1]["train_loss"] == [1.5, 1.0, 1 / 3 + 0.5, 0.75, 0.7]
    assert aligned[2]["test_loss"] == [None, 1.0, None, 0.5, None]
    assert "confusion" not in aligned[0]  # only numbers are plotted


def test_a_job_without_history_gives_empty_series():
    epochs, aligned = align_histories([history([1, 2]), []])
    assert epochs == [1, 2] and aligned[1] == {}


def test_spec_differences_name_every_field_that_differs():
    diffs = {d["field"]: d["values"] for d in spec_differences([SPEC_A, SPEC_B])}
    assert diffs == {
        "model.layers.0.activation": ["tanh", "relu"],
        "model.layers.1.type": [None, "dense"],
        "model.layers.1.units": [None, 2],
        "model.layers.1.activation": [None, "relu"],
        "training.optimizer.learning_rate": [0.03, 0.1],
        "training.regularization.kind": ["none", "l2"],
        "training.regularization.rate": [0.0, 0.001],
        "training.epochs": [3, 5],
    }  # name and start are labels, not settings
    assert spec_differences([SPEC_A, SPEC_A]) == []


def test_spec_summary():
    assert spec_summary(SPEC_B) == {
        "name": "b", "dataset": "xor", "features": ["x1", "x2"],
        "layers": ["dense 4 relu", "dense 2 relu"], "optimizer": "sgd", "learning_rate": 0.1,
        "batch_size": 10, "regularization": "l2", "regularization_rate": 0.001, "epochs": 5,
    }


def test_compare_jobs_shape():
    result = compare_jobs([
        {"id": "a", "status": "completed", "spec": SPEC_A, "history": history([1, 2, 3])},
        {"id": "b", "status": "running", "spec": SPEC_B, "history": history([1, 2, 3, 4, 5])},
    ])
    assert result["epochs"] == [1, 2, 3, 4, 5]
    assert result["metrics"] == ["train_loss", "test_loss"]
    assert [j["id"] for j in result["jobs"]] == ["a", "b"]
    assert result["jobs"][0]["metrics"]["test_loss"][3:] == [None, None]
    assert result["jobs"][1]["summary"]["learning_rate"] == 0.1
    assert {d["field"] for d in result["differences"]} >= {"training.optimizer.learning_rate"}


# Through the real server (passes once the compare router is in create_app and jobs train).

def wait_for(client, job_id, headers, status="completed", timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).json()
        if job["status"] == status:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {status}: {job}")


def small_job(epochs, lr, activation):
    return {"dataset": {"name": "xor", "params": {"samples": 100}},
            "model": {"layers": [{"type": "dense", "units": 4, "activation": activation}]},
            "training": {"epochs": epochs, "optimizer": {"learning_rate": lr},
                         "batch_size": 25}}


@pytest.fixture(scope="module")
def two_jobs(server):
    with server.client() as c:
        made = []
        for epochs, lr, act in ((3, 0.03, "tanh"), (5, 0.1, "relu")):
            r = c.post("/api/jobs", json=small_job(epochs, lr, act))
            assert r.status_code == 201, r.text
            made.append(r.json())
        for job in made:
            wait_for(c, job["id"], {"Authorization": f"Bearer {job['token']}"})
        return made


def test_compare_route_aligns_jobs_of_different_lengths(server, two_jobs):
    a, b = two_jobs
    with server.client() as c:
        r = c.get("/api/compare", params={"ids": f"{a['id']},{b['id']}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["epochs"] == [1, 2, 3, 4, 5]
    first, second = body["jobs"]
    assert first["id"] == a["id"] and first["status"] == "completed"
    assert first["metrics"]["train_loss"][3:] == [None, None]
    assert None not in first["metrics"]["train_loss"][:3]
    assert None not in second["metrics"]["train_loss"]
    diffs = {d["field"]: d["values"] for d in body["differences"]}
    assert diffs["training.optimizer.learning_rate"] == [0.03, 0.1]
    assert diffs["model.layers.0.activation"] == ["tanh", "relu"]
    assert diffs["training.epochs"] == [3, 5]
    assert first["summary"]["layers"] == ["dense 4 tanh"]


def test_compare_route_errors(server, two_jobs):
    a, _ = two_jobs
    with server.client() as c:
        one = c.get("/api/compare", params={"ids": a["id"]})
        assert one.status_code == 422
        assert one.json()["detail"] == "Give at least two job ids to compare, e.g. ?ids=a,b"
        missing = c.get("/api/compare", params={"ids": f"{a['id']},nope"})
        assert missing.status_code == 404
        assert missing.json()["detail"] == "Job not found: nope"
        assert c.get("/api/compare").status_code == 422


def test_compare_needs_the_right_to_read_every_job(tmp_path):
    """On a server that is not open, a caller compares only jobs it may read."""
    from tests.conftest import start_server, stop_server

    live = start_server(tmp_path / "data", env={"PLAYGROUND_OPEN_MODE": "false",
                                                "PLAYGROUND_TEACHER_TOKEN": "teacher-secret"})
    try:
        teacher = {"Authorization": "Bearer teacher-secret"}
        with live.client() as c:
            spec = {**small_job(3, 0.03, "tanh"), "start": False}
            a = c.post("/api/jobs", json=spec, headers=teacher).json()
            b = c.post("/api/jobs", json=spec, headers=teacher).json()
            ids = {"ids": f"{a['id']},{b['id']}"}
            alone = c.get("/api/compare", params={"ids": f"{a['id']},{a['id']}x"},
                          headers={"Authorization": f"Bearer {a['token']}"})
            assert alone.status_code == 404  # its own job passes, the unknown one is named
            mine = c.get("/api/compare", params=ids,
                         headers={"Authorization": f"Bearer {a['token']}"})
            assert mine.status_code == 403
            assert mine.json()["detail"] == "This job belongs to someone else"
            assert c.get("/api/compare", params=ids).status_code in (401, 403)
            teacher = c.get("/api/compare", params=ids, headers=teacher)
            assert teacher.status_code == 200, teacher.text
            assert [j["id"] for j in teacher.json()["jobs"]] == [a["id"], b["id"]]
            assert teacher.json()["differences"] == []
    finally:
        stop_server(live)
