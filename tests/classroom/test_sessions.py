"""Sessions end when they should, and the server believes only what it should (issue 12,
item 9): a teacher's logout ends the session on the server (a copied token too, after a
restart too); a student's sign-out revokes their token; X-Forwarded-For counts only from
configured proxies; /metrics, /docs and /openapi.json each follow their setting."""

from __future__ import annotations

import pytest

from server.api import prometheus
from server.api.classroom import limits, refusals
from server.api.classroom.teacher import TEACHER_ONLY
from tests.classroom.conftest import CODE, PASSWORD, ClassRoom, class_env
from tests.conftest import start_server, stop_server


def test_teacher_logout_ends_the_session_even_after_a_restart(tmp_path):
    live = start_server(tmp_path / "data", env=class_env())
    try:
        room = ClassRoom(live)
        session = room.teacher()
        other = room.teacher()  # a second tab or device: its own session
        with room.http(session) as c:
            assert c.get("/api/class/jobs").status_code == 200
            assert c.post("/api/class/teacher/logout").status_code == 200
            r = c.get("/api/class/jobs")
            assert (r.status_code, r.json()["detail"]) == (403, TEACHER_ONLY)
        with room.http(other) as c:
            assert c.get("/api/class/jobs").status_code == 200  # others stay signed in
    finally:
        stop_server(live)
    live = start_server(tmp_path / "data", port=live.port, env=class_env())
    try:
        room = ClassRoom(live)
        with room.http(session) as c:
            assert c.get("/api/class/jobs").status_code == 403
            assert c.get("/api/class").json()["role"] is None
        with room.http(other) as c:
            assert c.get("/api/class/jobs").status_code == 200
    finally:
        stop_server(live)


def test_a_cookie_logout_ends_the_session_for_a_copied_token(room):
    with room.http() as browser:
        r = browser.post("/api/class/teacher/login", json={"password": PASSWORD})
        copied = r.json()["token"]
        browser.post("/api/class/teacher/logout")  # the page's button: the cookie only
    with room.http(copied) as c:
        assert c.get("/api/class/jobs").status_code == 403


def test_a_students_sign_out_revokes_every_copy_of_the_token(room):
    with room.http() as browser:
        token = browser.post("/api/class/join", json={"code": CODE, "name": "Kim"}).json()["token"]
        job = browser.post("/api/jobs", json={"dataset": {"name": "xor"}, "model": {"layers": []},
                                              "start": False}).json()["id"]
        assert browser.post("/api/class/leave").status_code == 200
    with room.http(token) as c:  # the same token from another tab or a script
        r = c.get(f"/api/jobs/{job}")
        assert (r.status_code, r.json()["detail"]) == (401, refusals.SIGNED_OUT)
        assert c.post("/api/jobs", json={"dataset": {"name": "xor"},
                                         "model": {"layers": []}}).status_code == 401
    with room.http(room.teacher()) as c:  # the teacher still sees Kim and the job
        kim = [s for s in c.get("/api/class/students").json()["students"] if s["name"] == "Kim"]
        assert kim and kim[0]["state"] == "left" and kim[0]["jobs"] == 1
        assert c.delete(f"/api/class/students/{kim[0]['id']}").json()["deleted_jobs"] == 1


def wrong_joins_until_refused(room: ClassRoom, spoof: bool) -> int:
    """Wrong class codes sent until a 429, each claiming another address; how many."""
    with room.http() as c:
        for i in range(1, 80):
            headers = {"X-Forwarded-For": f"10.1.{i}.1"} if spoof else {}
            r = c.post("/api/class/join", json={"code": "NOPE", "name": "X"}, headers=headers)
            if r.status_code == 429:
                return i
    return 0


def test_forwarded_for_is_believed_only_from_configured_proxies(tmp_room):
    plain = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0")
    # Not a proxy of ours: X-Forwarded-For is ignored, so spoofing it buys no fresh budget.
    refused_at = wrong_joins_until_refused(plain, spoof=True)
    # The burst, plus the one or two the budget refills (one per 2 s) on a slow machine.
    assert limits.WRONG_CODES_BURST + 1 <= refused_at <= limits.WRONG_CODES_BURST + 3
    proxied = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0", PLAYGROUND_TRUSTED_PROXIES="127.0.0.1")
    assert wrong_joins_until_refused(proxied, spoof=True) == 0  # each address its own budget
    with proxied.http() as c:
        r = c.post("/api/class/join", json={"code": CODE, "name": "Lee"},
                   headers={"X-Forwarded-For": "10.2.3.4"})
        assert r.status_code == 200, r.text
    with proxied.http(proxied.teacher()) as c:
        lee = [s for s in c.get("/api/class/students").json()["students"] if s["name"] == "Lee"]
    assert lee[0]["address"] == "10.2.3.4"


def test_metrics_and_api_docs_follow_their_settings(tmp_room, room):
    teacher = room.teacher()
    with room.http() as c:  # class mode, defaults: /metrics for the teacher, no docs
        r = c.get("/metrics")
        assert (r.status_code, r.json()["detail"]) == (401, prometheus.METRICS_TEACHER)
        for path in ("/docs", "/redoc", "/openapi.json"):
            r = c.get(path)
            assert (r.status_code, r.json()["detail"]) == (404, refusals.DOCS_OFF), path
    with room.http(room.join("Mo")) as c:
        assert c.get("/metrics").status_code == 403
    with room.http(teacher) as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/openapi.json").status_code == 404  # off for the teacher too
    opened = tmp_room(PLAYGROUND_METRICS_ACCESS="open", PLAYGROUND_API_DOCS="on")
    with opened.http() as c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/openapi.json").json()["info"]["title"] == "Neural network playground"
        assert c.get("/docs").status_code == 200
    off = tmp_room(PLAYGROUND_METRICS_ACCESS="off")
    with off.http(off.teacher()) as c:
        r = c.get("/metrics")
        assert (r.status_code, r.json()["detail"]) == (404, prometheus.METRICS_OFF)


@pytest.mark.parametrize("name", ["a\x00b", "line\nbreak", "bell\x07"])
def test_control_characters_in_a_job_name_are_refused(room, name):
    with room.http(room.join("Nia")) as c:
        r = c.post("/api/jobs", json={"name": name, "dataset": {"name": "xor"},
                                      "model": {"layers": []}, "start": False})
        assert r.status_code == 422, r.text
        (entry,) = r.json()["detail"]
        assert entry["loc"] == ["body", "name"]
        assert "must not hold control characters" in entry["msg"]
