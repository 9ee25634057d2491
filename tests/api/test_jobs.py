"""The jobs API as a client sees it: every error status with its exact message, tokens,
limits, PATCH, DELETE and the model download, on a live server."""

from __future__ import annotations

import pytest
from safetensors.torch import load

from tests.conftest import start_server, stop_server
from tests.engine.common import (
    control,
    create,
    delete,
    get,
    history,
    strict_json,
    wait_progress,
    wait_status,
    xor_spec,
)

TEACHER = "teacher-secret-token"
CLASS_CODE = "CLASS-42"


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory):
    """A server that is not open: tokens needed; a teacher token; small job limits."""
    live = start_server(tmp_path_factory.mktemp("closed"), env={
        "PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_TEACHER_TOKEN": TEACHER,
        "PLAYGROUND_CLASS_CODE": CLASS_CODE,
        "PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT": "2", "PLAYGROUND_MAX_JOBS_TOTAL": "4",
    })
    yield live
    stop_server(live)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def join(live, name: str) -> str:
    """A student's token (in class mode only members and the teacher create jobs)."""
    with live.client() as client:  # a client of its own: the join cookie stays in it
        r = client.post("/api/class/join", json={"name": name, "code": CLASS_CODE})
        assert r.status_code == 200, r.text
        return r.json()["token"]


def test_an_unknown_job_is_404_everywhere(server):
    with server.client() as client:
        for method, path, body in [
            ("GET", "/api/jobs/nope", None), ("GET", "/api/jobs/nope/metrics", None),
            ("POST", "/api/jobs/nope/control", {"action": "pause"}),
            ("PATCH", "/api/jobs/nope", {"name": "x"}), ("DELETE", "/api/jobs/nope", None),
            ("GET", "/api/jobs/nope/model", None),
        ]:
            r = client.request(method, path, json=body)
            assert (r.status_code, r.json()) == (404, {"detail": "Job not found"}), path


def test_bad_specs_are_422_before_anything_is_queued(server):
    with server.client() as client:
        count = len(client.get("/api/jobs").json()["jobs"])
        r = client.post("/api/jobs", json={"dataset": {"name": "no-such-set"},
                                           "model": {"layers": []}})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "dataset", "name"]
        r = client.post("/api/jobs", json={**xor_spec(), "colour": "red"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "colour"]
        r = client.post("/api/jobs", json={
            "dataset": {"name": "xor"},
            "model": {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}]}})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][:4] == ["body", "model", "layers", 0]
        r = client.post("/api/jobs", json=xor_spec(epochs=10**9))
        assert r.status_code == 422
        assert r.json()["detail"] == [{
            "loc": ["body", "training", "epochs"], "type": "value_error",
            "msg": "epochs is 1000000000; this server allows at most 100000"}]
        r = client.post("/api/jobs", content=b"{not json",
                        headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert len(client.get("/api/jobs").json()["jobs"]) == count


def test_impossible_transitions_are_409_and_more_epochs_make_it_resumable(server):
    with server.client() as client:
        job = create(client, xor_spec(epochs=5))
        wait_status(client, job["id"], "completed")
        for action, message in [
            ("resume", "This job has completed its 5 epochs; raise its epochs with PATCH or "
                       "reset it to train it again."),
            ("stop", "This job has already completed."),
            ("pause", "This job has completed; there is nothing to pause."),
            ("step", "This job has completed; reset it to train it again."),
        ]:
            r = client.post(f"/api/jobs/{job['id']}/control", json={"action": action})
            assert (r.status_code, r.json()) == (409, {"detail": message}), action
        r = client.post(f"/api/jobs/{job['id']}/control", json={"action": "fly"})
        assert r.status_code == 422
        r = client.patch(f"/api/jobs/{job['id']}", json={"training": {"epochs": 8}})
        assert r.status_code == 200 and r.json()["progress"]["epochs"] == 8
        assert control(client, job["id"], "resume")["status"] == "running"
        done = wait_status(client, job["id"], "completed")
        assert done["progress"]["epoch"] == 8
        assert [r["epoch"] for r in history(client, job["id"])] == list(range(1, 9))
        reset = control(client, job["id"], "reset")
        assert reset["status"] == "paused" and reset["progress"] == {
            "epoch": 0, "step": 0, "epochs": 8}
        assert history(client, job["id"]) == []
        stopped = control(client, job["id"], "stop")
        r = client.post(f"/api/jobs/{job['id']}/control", json={"action": "resume"})
        assert (r.status_code, r.json()["detail"]) == (
            409, "This job has been stopped; reset it to train it again.")
        assert stopped["stop_reason"] == "stopped by request"
        delete(client, job["id"])


def test_patch_changes_the_learning_rate_mid_run(server):
    with server.client() as client:
        job = create(client, xor_spec(epochs=None))
        wait_progress(client, job["id"], "epoch", 2)
        r = client.patch(f"/api/jobs/{job['id']}",
                         json={"training": {"optimizer": {"learning_rate": 0.01}},
                               "name": "slower"})
        assert r.status_code == 200, r.text
        patched = strict_json(r)
        assert patched["spec"]["training"]["optimizer"]["learning_rate"] == 0.01
        assert patched["name"] == "slower"
        at = patched["progress"]["epoch"]
        wait_progress(client, job["id"], "epoch", at + 3)
        rates = [r["learning_rate"] for r in history(client, job["id"])]
        assert rates[0] == 0.03 and rates[-1] == 0.01
        r = client.patch(f"/api/jobs/{job['id']}", json={"training": {"batch_size": 10**5}})
        assert r.status_code == 422
        r = client.patch(f"/api/jobs/{job['id']}", json={"training": {"optimizer": {"lr": 1}}})
        assert r.status_code == 422
        delete(client, job["id"])


def test_model_download_and_delete(server):
    with server.client() as client:
        job = create(client, xor_spec(epochs=3))
        wait_status(client, job["id"], "completed")
        r = client.get(f"/api/jobs/{job['id']}/model?format=safetensors")
        assert r.status_code == 200
        assert r.headers["content-disposition"].endswith('.safetensors"')
        weights = load(r.content)
        assert weights and all(t.dtype.is_floating_point for t in weights.values())
        r = client.get(f"/api/jobs/{job['id']}/model?format=pickle")
        assert r.status_code == 422
        detail = r.json()["detail"][0]
        assert detail["loc"] == ["query", "format"]
        assert detail["msg"].startswith("format 'pickle' is not offered; offered formats: ")
        assert "safetensors" in detail["msg"]
        checkpoint = server.data_dir / "checkpoints" / f"{job['id']}.safetensors"
        assert checkpoint.exists()
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404
        assert not checkpoint.exists()


def test_tokens_guard_jobs_when_the_server_is_not_open(closed_server):
    token, other = join(closed_server, "Ada"), join(closed_server, "Grace")
    with closed_server.client() as client:
        mine = create(client, xor_spec(epochs=2), headers=bearer(token))
        assert mine["token"] == token  # a student's jobs all carry the student's token
        theirs = create(client, xor_spec(epochs=2), headers=bearer(other))
        url = f"/api/jobs/{mine['id']}"
        for headers, status, detail in [
            ({}, 403, "This job needs its token: send the header Authorization: Bearer <token>"),
            (bearer(theirs["token"]), 403, "This job belongs to someone else"),
            (bearer("made-up"), 403, "This job belongs to someone else"),
        ]:
            for method, path, body in [("GET", url, None), ("GET", url + "/metrics", None),
                                       ("POST", url + "/control", {"action": "pause"}),
                                       ("PATCH", url, {"name": "x"}), ("DELETE", url, None),
                                       ("GET", url + "/model", None)]:
                r = client.request(method, path, json=body, headers=headers)
                assert (r.status_code, r.json()) == (status, {"detail": detail}), (method, path)
        assert client.get(url, headers=bearer(token)).status_code == 200
        assert client.get(url, headers=bearer(TEACHER)).status_code == 200
        assert client.get("/api/jobs/nope", headers=bearer(token)).status_code == 404
        # One token for several jobs: create under the token you hold.
        second = create(client, xor_spec(epochs=2), headers=bearer(token))
        assert second["token"] == token
        listed = client.get("/api/jobs", headers=bearer(token)).json()["jobs"]
        assert {j["id"] for j in listed} == {mine["id"], second["id"]}
        assert "token" not in listed[0]
        assert client.get("/api/jobs").json() == {"jobs": []}
        everything = client.get("/api/jobs", headers=bearer(TEACHER)).json()["jobs"]
        assert {mine["id"], second["id"], theirs["id"]} <= {j["id"] for j in everything}
        for job in (mine, second, theirs):
            assert client.delete(f"/api/jobs/{job['id']}",
                                 headers=bearer(TEACHER)).status_code == 204


def test_job_limits_are_429(closed_server):
    with closed_server.client(headers=bearer(join(closed_server, "Alan"))) as client:
        jobs = [create(client, xor_spec(epochs=None)) for _ in range(2)]
        r = client.post("/api/jobs", json=xor_spec(epochs=None))
        assert (r.status_code, r.json()["detail"]) == (
            429, "You already have 2 jobs running or queued, the most allowed; pause, stop or "
                 "delete one first.")
        control(client, jobs[0]["id"], "pause")
        jobs.append(create(client, xor_spec(epochs=None)))
        r = client.post(f"/api/jobs/{jobs[0]['id']}/control", json={"action": "resume"})
        assert r.status_code == 429
        jobs.append(create(client, {**xor_spec(epochs=None), "start": False}))
        r = client.post("/api/jobs", json={**xor_spec(), "start": False})
        assert (r.status_code, r.json()["detail"]) == (
            429, "The server holds its maximum of 4 jobs; delete finished jobs to make room.")
        for job in jobs:
            assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert get(client, create(client, xor_spec(epochs=1))["id"])["status"] in (
            "queued", "running", "completed")


def test_metrics_since_gives_the_later_epochs_and_refuses_out_of_range(server):
    with server.client() as client:
        job = create(client, xor_spec(epochs=4))
        wait_status(client, job["id"], "completed")
        later = client.get(f"/api/jobs/{job['id']}/metrics", params={"since": 2}).json()
        assert [r["epoch"] for r in later["history"]] == [3, 4]
        for bad in (-1, 2**31, -661953705921642758144):
            r = client.get(f"/api/jobs/{job['id']}/metrics", params={"since": bad})
            assert r.status_code == 422
            assert r.json()["detail"][0]["loc"] == ["query", "since"]
        delete(client, job["id"])
