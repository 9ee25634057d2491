"""Who may open the class wall (/teacher/wall), and the student id it groups runs by."""

from __future__ import annotations

import uuid

from server.api.classroom.teacher import TEACHER_ONLY


def test_the_wall_is_the_teachers_page(room):
    ada = room.join("Ada")
    with room.http() as c:  # nobody signed in: to the sign-in page
        r = c.get("/teacher/wall")
    assert (r.status_code, r.headers["location"]) == (303, "/teacher")
    with room.http(ada) as c:  # a student: refused, with a way to the sign-in page
        r = c.get("/teacher/wall")
    assert r.status_code == 403
    assert TEACHER_ONLY in r.text and 'href="/teacher"' in r.text
    with room.http(cookies={"playground_student": ada}) as c:  # the student's browser
        assert c.get("/teacher/wall").status_code == 403
    with room.http("t.not-a-real-token") as c:
        assert c.get("/teacher/wall").status_code == 403
    teacher = room.teacher()
    with room.http(teacher) as c:
        r = c.get("/teacher/wall")
    assert r.status_code == 200
    assert "/static/js/wall.js" in r.text and 'id="tiles"' in r.text
    with room.http(cookies={"playground_teacher": teacher}) as c:  # the teacher's browser
        page = c.get("/teacher/wall")
        assert page.status_code == 200
        for asset in ("/static/js/wall.js", "/static/js/controllers/wall_tiles.js",
                      "/static/js/views/wall_board.js", "/static/css/wall.css"):
            assert c.get(asset).status_code == 200, asset
        assert 'href="/teacher/wall"' in c.get("/teacher").text  # linked from the teacher page


def test_class_jobs_name_each_jobs_student_by_id(room):
    name = f"Grace {uuid.uuid4().hex[:6]}"  # the room is shared with other tests
    grace = room.join(name)
    other_grace = room.join(name)  # two of the same name are two students
    first = room.create(grace)["id"]
    second = room.create(other_grace)["id"]
    mine = room.create(room.teacher())["id"]
    try:
        with room.http(room.teacher()) as c:
            jobs = {j["id"]: j for j in c.get("/api/class/jobs").json()["jobs"]}
            students = c.get("/api/class/students").json()["students"]
        ids = {s["id"] for s in students if s["name"] == name}
        assert len(ids) == 2
        assert {jobs[first]["student_id"], jobs[second]["student_id"]} == ids
        assert jobs[mine]["student_id"] is None and jobs[mine]["student"] is None
    finally:
        with room.http(room.teacher()) as c:
            for job in (first, second, mine):
                c.post(f"/api/jobs/{job}/control", json={"action": "stop"})
