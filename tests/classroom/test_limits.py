"""Every classroom limit answered with its status code, and nothing lost when one is hit.

Limits: running or queued jobs per student (429) and in total (429 with Retry-After), epochs and
parameters per job (422 naming the field), request body (413) and CSV upload (413), live
streams per student (closed with 4429), request rate (429 with Retry-After), idle jobs (stopped,
kept) and idle streams (closed with 4408).
"""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from server.api.classroom import limits, refusals, sweeper
from server.store import SERVER_FULL
from tests.classroom.conftest import CODE, SPEC

PER_STUDENT = ("You already have 2 jobs running or queued, the most allowed; pause, stop or "
               "delete one first.")


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    from tests.classroom.conftest import ClassRoom, class_env
    from tests.conftest import start_server, stop_server

    live = start_server(tmp_path_factory.mktemp("tight") / "data", env=class_env(
        PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT="2", PLAYGROUND_MAX_ACTIVE_JOBS="3",
        PLAYGROUND_MAX_RUNNING_JOBS="1", PLAYGROUND_MAX_EPOCHS="50",
        PLAYGROUND_MAX_PARAMETERS="500", PLAYGROUND_MAX_BODY_BYTES="4096",
        PLAYGROUND_MAX_UPLOAD_BYTES="2048", PLAYGROUND_MAX_SOCKETS_PER_CLIENT="2",
        PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    room = ClassRoom(live)
    yield room
    with room.http(room.teacher()) as c:  # leave no job training on a shared machine
        for job in c.get("/api/jobs").json()["jobs"]:
            if job["status"] in ("running", "queued"):
                c.post(f"/api/jobs/{job['id']}/control", json={"action": "stop"})
    stop_server(live)


def statuses(room, token) -> list[str]:
    with room.http(token) as c:
        return sorted(j["status"] for j in c.get("/api/jobs").json()["jobs"])


def stream_resume(room, job_id: str, token: str) -> dict:
    """Send `resume` over the job's stream; the reply or error that answers it."""
    with room.ws(job_id, token) as ws:
        assert json.loads(ws.recv(timeout=15))["type"] == "hello"
        ws.send(json.dumps({"type": "control", "action": "resume", "id": 7}))
        while True:
            message = ws.recv(timeout=15)
            if isinstance(message, str) and json.loads(message)["type"] in ("error", "reply"):
                return json.loads(message)


def test_job_limits_per_student_and_in_total(tight):
    ada, bob, teacher = tight.join("Ada"), tight.join("Bob"), tight.teacher()
    tight.create(ada)
    tight.create(ada)
    with tight.http(ada) as c:
        r = c.post("/api/jobs", json=SPEC)
        assert (r.status_code, r.json()["detail"]) == (429, PER_STUDENT)
        paused = c.post("/api/jobs", json={**SPEC, "start": False})
        assert paused.status_code == 201  # a paused job takes no place
        r = c.post(f"/api/jobs/{paused.json()['id']}/control", json={"action": "resume"})
        assert (r.status_code, r.json()["detail"]) == (429, PER_STUDENT)
    # The same resume over the job's stream (how the page plays) is refused the same way.
    assert stream_resume(tight, paused.json()["id"], ada) == {
        "type": "error", "job_id": paused.json()["id"], "message": PER_STUDENT,
        "request": "control", "id": 7}
    with tight.http(ada) as c:
        assert c.get(f"/api/jobs/{paused.json()['id']}").json()["status"] == "paused"
    tight.create(bob)  # the class's third running or queued job: the server's limit
    with tight.http(bob) as c:
        r = c.post("/api/jobs", json=SPEC)
        assert (r.status_code, r.json()["detail"]) == (429, SERVER_FULL)
        assert int(r.headers["retry-after"]) > 0
        waiting = c.post("/api/jobs", json={**SPEC, "start": False}).json()["id"]
        r = c.post(f"/api/jobs/{waiting}/control", json={"action": "resume"})
        assert (r.status_code, r.json()["detail"]) == (429, SERVER_FULL)
        assert stream_resume(tight, waiting, bob)["message"] == SERVER_FULL
        assert c.post(f"/api/jobs/{waiting}/control", json={"action": "stop"}).status_code == 200
    tight.create(teacher, start=False)  # the teacher is never locked out
    # Nothing lost: exactly the accepted jobs exist, in the states they were given.
    assert statuses(tight, ada) == ["paused", "queued", "running"] or \
        statuses(tight, ada) == ["paused", "queued", "queued"]
    assert statuses(tight, bob) in (["running", "stopped"], ["queued", "stopped"])
    with tight.http(teacher) as c:
        jobs = c.get("/api/class/jobs").json()["jobs"]
    assert sorted(j["student"] or "-" for j in jobs) == ["-", "Ada", "Ada", "Ada", "Bob", "Bob"]


def test_epochs_and_parameters_per_job(tight):
    cy = tight.join("Cy")
    with tight.http(cy) as c:
        r = c.post("/api/jobs", json={**SPEC, "start": False, "training": {"epochs": 51}})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "training", "epochs"]
        big = {"layers": [{"type": "dense", "units": 64}, {"type": "dense", "units": 64}]}
        r = c.post("/api/jobs", json={**SPEC, "start": False, "model": big})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][:3] == ["body", "model", "layers"]
        assert c.get("/api/jobs").json()["jobs"] == []  # nothing half-made


def test_body_and_upload_size(tight):
    dee = tight.join("Dee")
    with tight.http(dee) as c:
        padded = json.dumps({**SPEC, "start": False}) + " " * 5000
        r = c.post("/api/jobs", content=padded, headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["detail"]) == (413, refusals.BODY_TOO_LARGE)

        def chunks():  # no Content-Length: counted as it arrives
            yield json.dumps({**SPEC, "start": False}).encode()
            for _ in range(10):
                yield b" " * 1000

        r = c.post("/api/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["detail"]) == (413, refusals.BODY_TOO_LARGE)
        csv = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(400))
        assert len(csv) > 2048
        r = c.post("/api/datasets", files={"file": ("big.csv", csv, "text/csv")},
                   data={"target": "y"})
        assert r.status_code == 413, r.text
        assert c.get("/api/jobs").json()["jobs"] == []


def test_streams_per_student(tight):
    eve, teacher = tight.join("Eve"), tight.teacher()
    job = tight.create(eve, start=False)["id"]
    with tight.ws(job, eve) as first, tight.ws(job, eve) as second:
        for ws in (first, second):
            assert json.loads(ws.recv(timeout=15))["type"] == "hello"
        with tight.ws(job, eve) as third, pytest.raises(ConnectionClosed) as closed:
            third.recv(timeout=15)
        refusal = closed.value.rcvd
        assert (refusal.code, refusal.reason) == (4429, refusals.TOO_MANY_STREAMS)
        assert tight.stream_outcome(job, teacher) == "hello"  # the teacher is not counted
        first.close()
        time.sleep(0.3)
        assert tight.stream_outcome(job, eve) == "hello"  # a place is free again


def test_rate_limit_idle_jobs_and_idle_streams(tmp_room):
    room = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="2", PLAYGROUND_RATE_LIMIT_BURST="5",
                    PLAYGROUND_IDLE_JOB_SECONDS="1", PLAYGROUND_IDLE_SOCKET_SECONDS="1.5")
    fay, gus = room.join("Fay"), room.join("Gus")
    job = room.create(fay, start=False)["id"]
    with room.http(fay) as c:
        answers = [c.get(f"/api/jobs/{job}") for _ in range(8)]
        codes = [r.status_code for r in answers]
        assert 429 in codes and codes[0] == 200, codes
        refused = answers[codes.index(429)]
        assert refused.json()["detail"] == refusals.TOO_MANY_REQUESTS
        assert int(refused.headers["retry-after"]) >= 1
        assert c.get("/api/health").status_code == 200  # never limited
        with room.http(gus) as other:
            assert other.get("/api/class").status_code == 200  # a bucket per student
        time.sleep(int(refused.headers["retry-after"]))
        assert c.get(f"/api/jobs/{job}").status_code == 200

        # A job paused longer than idle_job_seconds is stopped, with its history kept.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.6)
            row = c.get(f"/api/jobs/{job}").json()
            if row["status"] == "stopped":
                break
        assert (row["status"], row["stop_reason"]) == ("stopped", sweeper.IDLE_STOPPED)

    # A stream whose client sends nothing is closed with 4408.
    start = time.monotonic()
    with room.ws(job, fay) as ws, pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=15)
    assert closed.value.rcvd.code == refusals.CLOSE_IDLE
    assert 1.0 < time.monotonic() - start < 12


def test_made_up_tokens_share_their_address_bucket(tmp_room):
    room = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="1", PLAYGROUND_RATE_LIMIT_BURST="4")
    codes = []
    for i in range(8):
        with room.http(f"s.made.up.{i}") as c:
            codes.append(c.get("/api/class").status_code)
    assert codes.count(429) >= 3, codes


def test_guessing_the_password_or_code_is_slowed(tmp_room):
    room = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0")
    with room.http() as c:
        # Each wrong password costs 0.5 s, in which the budget refills a little: the refusal
        # comes after the burst, give or take one attempt on a busy machine.
        codes = [c.post("/api/class/teacher/login", json={"password": "guess"}).status_code
                 for _ in range(limits.WRONG_ATTEMPTS_BURST + 2)]
        assert codes[:limits.WRONG_ATTEMPTS_BURST] == [401] * limits.WRONG_ATTEMPTS_BURST
        r = c.post("/api/class/teacher/login", json={"password": "guess"})
        assert (r.status_code, r.json()["detail"]) == (429, limits.TOO_MANY_ATTEMPTS)
        assert int(r.headers["retry-after"]) >= 1
        # The class behind this one address still joins: codes have their own budget.
        assert c.post("/api/class/join", json={"code": CODE, "name": "Ada"}).status_code == 200
        codes = [c.post("/api/class/join", json={"code": "NOPE", "name": "X"}).status_code
                 for _ in range(limits.WRONG_CODES_BURST)]
        assert codes == [403] * limits.WRONG_CODES_BURST
        for _ in range(3):  # at most what refilled (one per 2 s) while those were sent
            r = c.post("/api/class/join", json={"code": "NOPE", "name": "X"})
            if r.status_code == 429:
                break
        assert (r.status_code, r.json()["detail"]) == (429, limits.TOO_MANY_ATTEMPTS)
        assert c.get("/api/class").status_code == 200  # only guessing is slowed
