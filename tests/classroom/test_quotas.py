"""One student cannot fill the server (issue 12, item 3): the jobs a student keeps are limited
whatever their state, the limits count the student's address as well as their token (so
joining again under another name gives no fresh quota), and the teacher sees every student
and can remove one with all their jobs.

Every client of a test is on loopback, which names no one; a trusted proxy's
X-Forwarded-For gives each simulated student their own address (that is also how the address
of a student behind a configured reverse proxy is found).
"""

from __future__ import annotations

import pytest

from server.api.classroom import refusals
from server.api.classroom.teacher import STUDENT_NOT_FOUND
from tests.classroom.conftest import CODE, SPEC, ClassRoom, class_env
from tests.conftest import start_server, stop_server

PAUSED = {**SPEC, "start": False}
KEPT = 3


@pytest.fixture(scope="module")
def quota_room(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("quota") / "data", env=class_env(
        PLAYGROUND_MAX_JOBS_PER_STUDENT_TOTAL=str(KEPT), PLAYGROUND_RATE_LIMIT_PER_SECOND="0",
        PLAYGROUND_TRUSTED_PROXIES="127.0.0.1"))
    yield ClassRoom(live)
    stop_server(live)


def from_address(address: str) -> dict:
    return {"X-Forwarded-For": address}


def join(room: ClassRoom, name: str, address: str) -> str:
    with room.http() as c:
        r = c.post("/api/class/join", json={"code": CODE, "name": name},
                   headers=from_address(address))
    assert r.status_code == 200, r.text
    return r.json()["token"]


def create(room: ClassRoom, token: str, address: str, spec: dict = PAUSED):
    with room.http(token) as c:
        return c.post("/api/jobs", json=spec, headers=from_address(address))


def test_paused_jobs_count_toward_the_jobs_a_student_keeps(quota_room):
    ada = join(quota_room, "Ada", "10.0.0.1")
    for _ in range(KEPT):
        assert create(quota_room, ada, "10.0.0.1").status_code == 201
    r = create(quota_room, ada, "10.0.0.1")
    assert (r.status_code, r.json()["detail"]) == (429, (
        f"You already have {KEPT} jobs kept, the most allowed ({KEPT}); delete old runs you "
        "no longer need to make room."))
    with quota_room.http(ada) as c:
        first = c.get("/api/jobs").json()["jobs"][0]["id"]
        assert c.delete(f"/api/jobs/{first}").status_code == 204
    assert create(quota_room, ada, "10.0.0.1").status_code == 201  # room again


def test_joining_again_under_another_name_gives_no_fresh_quota(quota_room):
    bob = join(quota_room, "Bob", "10.0.0.2")
    for _ in range(KEPT):
        assert create(quota_room, bob, "10.0.0.2").status_code == 201
    bobby = join(quota_room, "Bobby", "10.0.0.2")  # same computer, new name, new token
    assert bobby != bob
    r = create(quota_room, bobby, "10.0.0.2")
    assert (r.status_code, r.json()["detail"]) == (429, (
        f"This computer's address (10.0.0.2) already has {KEPT} jobs kept, the most allowed "
        f"({KEPT}) (students on one address share this limit; the teacher can set "
        "PLAYGROUND_QUOTA_KEY=token); delete old runs you no longer need to make room."))
    # Another student on another computer is not affected.
    cy = join(quota_room, "Cy", "10.0.0.3")
    assert create(quota_room, cy, "10.0.0.3").status_code == 201


def test_running_jobs_are_limited_by_address_too(tmp_room):
    room = tmp_room(PLAYGROUND_MAX_ACTIVE_JOBS_PER_CLIENT="1", PLAYGROUND_RATE_LIMIT_PER_SECOND="0",
                    PLAYGROUND_TRUSTED_PROXIES="127.0.0.1")
    dee = join(room, "Dee", "10.0.0.4")
    assert create(room, dee, "10.0.0.4", SPEC).status_code == 201
    deedee = join(room, "Dee Dee", "10.0.0.4")
    r = create(room, deedee, "10.0.0.4", SPEC)
    assert r.status_code == 429 and "(10.0.0.4) already has 1 jobs running" in r.json()["detail"]
    paused = create(room, deedee, "10.0.0.4")
    assert paused.status_code == 201
    with room.http(deedee) as c:  # resuming counts the same way
        r = c.post(f"/api/jobs/{paused.json()['id']}/control", json={"action": "resume"},
                   headers=from_address("10.0.0.4"))
        assert r.status_code == 429 and "(10.0.0.4)" in r.json()["detail"]
    with room.http(room.teacher()) as c:
        for job in c.get("/api/jobs").json()["jobs"]:
            c.post(f"/api/jobs/{job['id']}/control", json={"action": "stop"})


def test_quota_by_token_alone_when_the_class_shares_one_address(tmp_room):
    room = tmp_room(PLAYGROUND_MAX_JOBS_PER_STUDENT_TOTAL="1", PLAYGROUND_QUOTA_KEY="token",
                    PLAYGROUND_RATE_LIMIT_PER_SECOND="0", PLAYGROUND_TRUSTED_PROXIES="127.0.0.1")
    for name in ("Eve", "Fay", "Gus"):  # one NAT address, three students
        token = join(room, name, "10.9.9.9")
        assert create(room, token, "10.9.9.9").status_code == 201
        assert create(room, token, "10.9.9.9").status_code == 429


def test_the_teacher_sees_and_removes_a_student(quota_room):
    hal = join(quota_room, "Hal", "10.0.0.5")
    ids = [create(quota_room, hal, "10.0.0.5", spec).json()["id"] for spec in (SPEC, PAUSED)]
    ivy = join(quota_room, "Ivy", "10.0.0.6")
    kept = create(quota_room, ivy, "10.0.0.6").json()["id"]
    teacher = quota_room.teacher()
    with quota_room.http(hal) as c:  # students may not list or remove anyone
        assert c.get("/api/class/students").status_code == 403
        assert c.delete("/api/class/students/x").status_code == 403
    with quota_room.http(teacher) as c:
        students = {s["name"]: s for s in c.get("/api/class/students").json()["students"]}
        assert students["Hal"]["jobs"] == 2 and students["Hal"]["active_jobs"] == 1
        assert students["Hal"]["address"] == "10.0.0.5" and students["Hal"]["state"] == "joined"
        assert students["Ivy"]["jobs"] == 1
        hal_id = students["Hal"]["id"]
        r = c.delete(f"/api/class/students/{hal_id}")
        assert r.status_code == 200, r.text
        assert r.json() == {"id": hal_id, "name": "Hal", "deleted_jobs": 2}
        assert "Hal" not in {s["name"] for s in c.get("/api/class/students").json()["students"]}
        for job_id in ids:
            assert c.get(f"/api/jobs/{job_id}").status_code == 404
        assert c.get(f"/api/jobs/{kept}").status_code == 200  # Ivy keeps hers
        r = c.delete(f"/api/class/students/{hal_id}")
        assert (r.status_code, r.json()["detail"]) == (404, STUDENT_NOT_FOUND)
    # Hal's token is revoked: no more jobs, no streams, and the page sends him to join.
    with quota_room.http(hal) as c:
        r = c.post("/api/jobs", json=SPEC)
        assert (r.status_code, r.json()["detail"]) == (401, refusals.SIGNED_OUT)
        assert c.get("/api/jobs").status_code == 401
        assert c.get("/api/class").json()["role"] is None
    assert quota_room.stream_outcome(kept, hal) == refusals.CLOSE_SIGNED_OUT == 4401
    assert refusals.SIGNED_OUT.startswith("This sign-in has ended")
