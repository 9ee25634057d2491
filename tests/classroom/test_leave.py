"""POST /api/class/leave: a student signs out (issue 11, item 12). The cookie is cleared, the
student's jobs stay with the class (the teacher still lists them; H4 revokes the token, so
the listing no longer names the student), and the browser, now
without a token, can no longer create jobs until it joins again."""

from __future__ import annotations

from tests.classroom.conftest import CODE


def test_leave_clears_the_cookie_and_keeps_the_jobs(room):
    with room.http() as browser:  # one cookie jar, as a browser has
        r = browser.post("/api/class/join", json={"code": CODE, "name": "Grace Hopper"})
        assert r.status_code == 200, r.text
        assert browser.cookies.get("playground_student")
        job = browser.post("/api/jobs", json={"dataset": {"name": "xor"}, "model": {"layers": []},
                                              "start": False})
        assert job.status_code == 201, job.text
        assert browser.get("/api/class").json()["name"] == "Grace Hopper"

        r = browser.post("/api/class/leave")
        assert r.status_code == 200, r.text
        assert r.json() == {"role": None}
        assert "playground_student" not in browser.cookies
        info = browser.get("/api/class").json()
        assert info["role"] is None and info["name"] is None
        assert browser.get("/api/jobs").json() == {"jobs": []}
        refused = browser.post("/api/jobs", json={"dataset": {"name": "xor"},
                                                  "model": {"layers": []}})
        assert refused.status_code == 401, refused.text

    teacher = room.teacher()
    with room.http(teacher) as c:
        listed = {j["id"]: j["student"] for j in c.get("/api/class/jobs").json()["jobs"]}
    assert job.json()["id"] in listed, listed


def test_leave_without_a_cookie_is_harmless(room):
    with room.http() as c:
        r = c.post("/api/class/leave")
    assert r.status_code == 200 and r.json() == {"role": None}
