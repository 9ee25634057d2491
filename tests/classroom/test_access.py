"""Two students and a teacher on one class-mode server: who may read, stream, control and
delete what. Every cell of the matrix is asserted, with the exact status (and close code)."""

from __future__ import annotations

import json

import pytest

from server.api.classroom import refusals, sessions, tokens
from server.api.classroom.teacher import TEACHER_ONLY
from server.api.deps import NOT_YOURS, TOKEN_NEEDED
from tests.classroom.conftest import CODE, PASSWORD, SPEC

FORGED = "s.0123456789ab.RXZl.AAAAAAAAAAAAAAAAAAAAAAAA"  # looks like a student token; bad sig


@pytest.fixture(scope="module")
def cast(room):
    """ada's and bob's tokens, the teacher's session, and one paused job of each student."""
    ada, bob, teacher = room.join("Ada"), room.join("Bob"), room.teacher()
    job_a = room.create(ada, start=False)["id"]
    job_b = room.create(bob, start=False)["id"]
    return {"ada": ada, "bob": bob, "teacher": teacher, "nobody": None, "forged": FORGED,
            "job_a": job_a, "job_b": job_b}


# Who may touch ada's job: expected HTTP status per actor.
READ = {"ada": 200, "bob": 403, "teacher": 200, "nobody": 403, "forged": 403}


@pytest.mark.parametrize("actor", list(READ))
@pytest.mark.parametrize("path", ["/api/jobs/{id}", "/api/jobs/{id}/metrics"])
def test_read(room, cast, actor, path):
    with room.http(cast[actor]) as c:
        r = c.get(path.format(id=cast["job_a"]))
    assert r.status_code == READ[actor], r.text
    if actor == "bob":
        assert r.json()["detail"] == NOT_YOURS
    if actor == "nobody":
        assert r.json()["detail"] == TOKEN_NEEDED


@pytest.mark.parametrize("actor", list(READ))
def test_control_and_patch(room, cast, actor):
    job = cast["job_a"]
    with room.http(cast[actor]) as c:
        step = c.post(f"/api/jobs/{job}/control", json={"action": "step"})
        lr = {"training": {"optimizer": {"learning_rate": 0.05}}}
        patch = c.patch(f"/api/jobs/{job}", json=lr)
        pause = c.post(f"/api/jobs/{job}/control", json={"action": "pause"})
    assert (step.status_code, patch.status_code, pause.status_code) == (READ[actor],) * 3, \
        (step.text, patch.text, pause.text)


@pytest.mark.parametrize("actor", ["bob", "nobody", "forged"])
def test_others_cannot_delete_or_download(room, cast, actor):
    with room.http(cast[actor]) as c:
        assert c.delete(f"/api/jobs/{cast['job_a']}").status_code == 403
        assert c.get(f"/api/jobs/{cast['job_a']}/model").status_code == 403
    with room.http(cast["ada"]) as c:
        assert c.get(f"/api/jobs/{cast['job_a']}").status_code == 200  # still there


STREAM = {"ada": "hello", "bob": 4403, "teacher": "hello", "nobody": 4401, "forged": 4403}


@pytest.mark.parametrize("actor", list(STREAM))
def test_stream(room, cast, actor):
    assert room.stream_outcome(cast["job_a"], cast[actor]) == STREAM[actor]


def test_lists(room, cast):
    def ids(token, path="/api/jobs"):
        with room.http(token) as c:
            r = c.get(path)
        assert r.status_code == 200, r.text
        return {j["id"] for j in r.json()["jobs"]}

    assert cast["job_a"] in ids(cast["ada"]) and cast["job_b"] not in ids(cast["ada"])
    assert cast["job_b"] in ids(cast["bob"]) and cast["job_a"] not in ids(cast["bob"])
    assert {cast["job_a"], cast["job_b"]} <= ids(cast["teacher"])
    assert ids(None) == set()
    with room.http(cast["teacher"]) as c:
        names = {j["id"]: j["student"] for j in c.get("/api/class/jobs").json()["jobs"]}
    assert names[cast["job_a"]] == "Ada" and names[cast["job_b"]] == "Bob"


@pytest.mark.parametrize("actor, status", [("ada", 403), ("nobody", 401), ("forged", 403)])
def test_class_jobs_is_the_teachers(room, cast, actor, status):
    with room.http(cast[actor]) as c:
        r = c.get("/api/class/jobs")
    assert r.status_code == status
    assert r.json()["detail"] == TEACHER_ONLY


def test_delete_own_and_teacher_deletes_any(room, cast):
    mine = room.create(cast["ada"], start=False)["id"]
    bobs = room.create(cast["bob"], start=False)["id"]
    with room.http(cast["ada"]) as c:
        assert c.delete(f"/api/jobs/{bobs}").status_code == 403
        assert c.delete(f"/api/jobs/{mine}").status_code == 204
        assert c.get(f"/api/jobs/{mine}").status_code == 404
    with room.http(cast["teacher"]) as c:
        assert c.delete(f"/api/jobs/{bobs}").status_code == 204


def test_teacher_stops_a_running_job(room, cast):
    job = room.create(cast["bob"])["id"]  # starts running, no epoch limit
    with room.http(cast["teacher"]) as c:
        r = c.post(f"/api/jobs/{job}/control", json={"action": "stop"})
        assert r.status_code == 200, r.text
        assert c.get(f"/api/jobs/{job}").json()["status"] == "stopped"
    with room.http(cast["bob"]) as c:
        assert c.get(f"/api/jobs/{job}").json()["status"] == "stopped"


@pytest.mark.parametrize("actor, status", [("nobody", 401), ("forged", 401), ("ada", 201),
                                           ("teacher", 201)])
def test_who_may_create(room, cast, actor, status):
    with room.http(cast[actor]) as c:
        r = c.post("/api/jobs", json={**SPEC, "start": False})
    assert r.status_code == status, r.text
    if status == 401:
        assert r.json()["detail"] == refusals.JOIN_FIRST
    if actor == "ada":
        assert r.json()["token"] == cast["ada"]  # the student's token is the job's token


def test_join_and_login_refusals(room):
    with room.http() as c:
        r = c.post("/api/class/join", json={"code": "WRONG1", "name": "Eve"})
        assert (r.status_code, r.json()["detail"]) == (403, sessions.WRONG_CODE)
        r = c.post("/api/class/join", json={"code": CODE, "name": "   "})
        assert (r.status_code, r.json()["detail"]) == (422, sessions.BAD_NAME)
        r = c.post("/api/class/join", json={"code": CODE.lower(), "name": "Cy"})
        assert r.status_code == 200  # codes are read aloud: case does not matter
        r = c.post("/api/class/teacher/login", json={"password": "guess"})
        assert (r.status_code, r.json()["detail"]) == (401, sessions.WRONG_PASSWORD)
    with room.http() as c:
        assert c.get("/api/class").json()["role"] is None


def test_cookies(room, cast):
    """Join and sign-in set HttpOnly SameSite=Strict cookies; the cookie alone is enough."""
    with room.http() as c:
        r = c.post("/api/class/join", json={"code": CODE, "name": "Dee"})
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(tokens.STUDENT_COOKIE + "=")
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        token = r.json()["token"]
        # The page's requests carry only the cookie (and the browser's same-site Origin).
        origin = {"Origin": room.url}
        created = c.post("/api/jobs", json={**SPEC, "start": False}, headers=origin)
        assert created.status_code == 201 and created.json()["token"] == token
        job = created.json()["id"]
        assert c.get(f"/api/jobs/{cast['job_a']}").status_code == 403
        info = c.get("/api/class").json()
        assert (info["role"], info["name"]) == ("student", "Dee") and "class_code" not in info
        again = c.post("/api/class/join", json={"code": CODE, "name": "Dee"}).json()["token"]
        assert again == token  # joining again from the same browser keeps the jobs
        cookie_header = {"Cookie": f"{tokens.STUDENT_COOKIE}={token}"}
    assert room.stream_outcome(job, headers=cookie_header) == "hello"
    assert room.stream_outcome(cast["job_a"], headers=cookie_header) == 4403

    with room.http() as t:
        r = t.post("/api/class/teacher/login", json={"password": PASSWORD})
        assert tokens.TEACHER_COOKIE in r.headers["set-cookie"]
        info = t.get("/api/class").json()
        assert info["role"] == "teacher" and info["class_code"] == CODE
        assert info["student_urls"][0] == room.url + "/"
        assert t.get("/api/class/jobs").status_code == 200
        t.post("/api/class/teacher/logout")
        assert t.get("/api/class/jobs").status_code == 401


def test_pages(room, cast):
    with room.http() as c:
        r = c.get("/", follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/join")
        assert "Join the class" in c.get("/join").text
        page = c.get("/teacher")
        assert 'src="/static/js/teacher.js' in page.text
        assert page.headers["x-frame-options"] == "SAMEORIGIN"  # no clickjacking "Stop all"
        assert page.headers["content-security-policy"] == "frame-ancestors 'self'"
    with room.http(cast["ada"]) as c:
        assert c.get("/", follow_redirects=False).status_code == 200


def test_tokens_are_signed(tmp_path):
    from server.config import Settings

    settings = Settings(data_dir=tmp_path, open_mode="false", teacher_password="abcdefg")
    token = tokens.student_token(settings, "Zoë Ünal")
    assert tokens.student_name(settings, token) == "Zoë Ünal"
    head, _, sig = token.rpartition(".")
    other = "A" if sig[0] != "A" else "B"
    assert tokens.student_name(settings, f"{head}.{other}{sig[1:]}") is None
    assert tokens.student_name(settings, head.replace(head.split(".")[2], "Qm9i") + "." + sig) \
        is None  # a changed name breaks the signature
    session = tokens.teacher_session(settings)
    assert tokens.is_teacher_session(settings, session)
    assert not tokens.is_teacher_session(settings, token)
    changed = settings.model_copy(update={"teacher_password": "another-one"})
    assert not tokens.is_teacher_session(changed, session)  # new password: signed out


def test_student_plays_and_pauses_over_the_stream(room, cast):
    job = room.create(cast["ada"], start=False)["id"]
    with room.ws(job, cast["ada"]) as ws:
        assert json.loads(ws.recv(timeout=15))["type"] == "hello"
        for n, action in enumerate(("resume", "pause")):
            ws.send(json.dumps({"type": "control", "action": action, "id": n}))
            while True:
                message = ws.recv(timeout=15)
                if isinstance(message, str) and json.loads(message)["type"] in ("reply", "error"):
                    break
            assert json.loads(message)["ok"] is True, message
