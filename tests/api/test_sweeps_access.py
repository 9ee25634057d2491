"""Sweeps in class mode (issue 14): who may read and act on a sweep and its jobs, the job
limits applied to a sweep as a whole (429, nothing created), and sweeps surviving a restart."""

from __future__ import annotations

import signal
import time

import pytest

from server.api.classroom.refusals import JOIN_FIRST
from tests.classroom.conftest import ClassRoom, class_env
from tests.conftest import start_server, stop_server

BASE = {"dataset": {"name": "xor", "params": {"samples": 100}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": {"epochs": None}}
LR = "training.optimizer.learning_rate"


def lrs(*values: float) -> list[dict]:
    return [{"path": LR, "values": list(values)}]


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("sweeps-class") / "data", env=class_env(
        PLAYGROUND_RATE_LIMIT_PER_SECOND="0", PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT="4",
        PLAYGROUND_MAX_SWEEP_VARIANTS="6", PLAYGROUND_QUOTA_KEY="token"))
    yield ClassRoom(live)
    stop_server(live)


def sweep(room: ClassRoom, token: str | None, axes: list[dict], status: int = 201,
          **base) -> dict:
    with room.http(token) as c:
        r = c.post("/api/sweeps", json={"base": {**BASE, **base}, "axes": axes})
    assert r.status_code == status, r.text
    return r.json()


def own_jobs(room: ClassRoom, token: str) -> list[str]:
    with room.http(token) as c:
        return [j["id"] for j in c.get("/api/jobs").json()["jobs"]]


def test_a_sweep_and_its_jobs_belong_to_its_token(room) -> None:
    ana, ben, teacher = room.join("Ana"), room.join("Ben"), room.teacher()
    made = sweep(room, ana, lrs(0.01, 0.1), start=False)
    assert made["token"] == ana  # a student's sweep runs under the student's own token
    with room.http(ana) as c:
        assert c.get(f"/api/sweeps/{made['id']}").status_code == 200
        assert [s["id"] for s in c.get("/api/sweeps").json()["sweeps"]] == [made["id"]]
        assert c.get(f"/api/jobs/{made['jobs'][0]}").json()["status"] == "paused"
    assert room.stream_outcome(made["jobs"][1], ana) == "hello"  # a variant is a normal run
    with room.http(ben) as c:
        for method, path, body in [("GET", "", None), ("POST", "/control", {"action": "stop"}),
                                   ("DELETE", "", None)]:
            r = c.request(method, f"/api/sweeps/{made['id']}{path}", json=body)
            assert (r.status_code, r.json()) == (
                403, {"detail": "This sweep belongs to someone else"}), path
        assert c.get("/api/sweeps").json() == {"sweeps": []}
        r = c.get(f"/api/jobs/{made['jobs'][0]}")
        assert (r.status_code, r.json()["detail"]) == (403, "This job belongs to someone else")
        assert c.get("/api/sweeps/nope").status_code == 404
    with room.http() as c:
        r = c.get(f"/api/sweeps/{made['id']}")
        assert (r.status_code, r.json()["detail"]) == (
            403, "This sweep needs its token: send the header Authorization: Bearer <token>")
        r = c.post("/api/sweeps", json={"base": BASE, "axes": lrs(0.1)})
        assert (r.status_code, r.json()["detail"]) == (401, JOIN_FIRST)
    with room.http(teacher) as c:  # the teacher sees every sweep and may act on it
        assert made["id"] in {s["id"] for s in c.get("/api/sweeps").json()["sweeps"]}
        mine = c.post("/api/sweeps", json={"base": {**BASE, "start": False},
                                           "axes": lrs(0.1, 0.2)}).json()
        assert mine["token"] != teacher  # the teacher's sweep gets a token of its own
        assert c.delete(f"/api/sweeps/{made['id']}").status_code == 204
        assert c.delete(f"/api/sweeps/{mine['id']}").status_code == 204
    assert own_jobs(room, ana) == []


def test_the_job_limits_refuse_a_sweep_as_a_whole(room) -> None:
    cy = room.join("Cy")
    first = sweep(room, cy, lrs(0.01, 0.02, 0.03))  # 3 running of the 4 allowed
    before = own_jobs(room, cy)
    r = sweep(room, cy, lrs(0.1, 0.2), status=429)
    assert r["detail"] == ("This sweep would run 2 jobs and you already have 3 running or "
                           "queued; at most 4 are allowed (PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT)."
                           " Pause, stop or delete jobs first, or sweep fewer values.")
    assert own_jobs(room, cy) == before
    with room.http(cy) as c:
        assert [s["id"] for s in c.get("/api/sweeps").json()["sweeps"]] == [first["id"]]
    r = sweep(room, cy, lrs(*[0.01 * i for i in range(1, 8)]), status=422)
    assert r["detail"][0]["msg"].startswith("this sweep has 7 variants; this server allows at "
                                            "most 6 per sweep")
    sweep(room, cy, lrs(0.1, 0.2), start=False)  # paused variants count only as kept jobs
    with room.http(cy) as c:
        r = c.post(f"/api/sweeps/{first['id']}/control", json={"action": "pause"})
        assert {v["status"] for v in r.json()["variants"]} == {"paused"}
        c.post("/api/jobs", json=BASE).raise_for_status()
        c.post("/api/jobs", json=BASE).raise_for_status()  # 2 running: resuming 3 passes 4
        r = c.post(f"/api/sweeps/{first['id']}/control", json={"action": "resume"})
        assert r.status_code == 429, r.text
        assert r.json()["detail"].startswith("This sweep would run 3 jobs and you already "
                                             "have 2 running or queued")
        state = c.get(f"/api/sweeps/{first['id']}").json()
        assert {v["status"] for v in state["variants"]} == {"paused"}  # none was resumed
        for job_id in own_jobs(room, cy):
            assert c.delete(f"/api/jobs/{job_id}").status_code == 204
        assert {v["status"] for v in c.get(f"/api/sweeps/{first['id']}").json()["variants"]} \
            == {"deleted"}
        assert c.delete(f"/api/sweeps/{first['id']}").status_code == 204


def test_sweeps_survive_a_restart(tmp_path) -> None:
    data = tmp_path / "data"
    live = start_server(data)
    try:
        with live.client() as c:
            r = c.post("/api/sweeps", json={
                "base": {**BASE, "training": {"epochs": 2}},
                "axes": [{"path": "model.layers.0.units", "values": [2, 3]}]})
            assert r.status_code == 201, r.text
            made = r.json()
            deadline = time.monotonic() + 60
            while c.get(f"/api/sweeps/{made['id']}").json()["status"] != "finished":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            before = c.get(f"/api/sweeps/{made['id']}").json()
    finally:
        live.kill(signal.SIGKILL)
    live = start_server(data)
    try:
        with live.client() as c:
            after = c.get(f"/api/sweeps/{made['id']}").json()
            assert after == before
            assert [v["status"] for v in after["variants"]] == ["completed", "completed"]
            assert after["variants"][0]["metrics"]["epoch"] == 2
            assert c.delete(f"/api/sweeps/{made['id']}").status_code == 204
            assert c.get("/api/sweeps").json() == {"sweeps": []}
    finally:
        stop_server(live)
