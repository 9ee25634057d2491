"""Uploads belong to their uploader in class mode (issue 11, item 8), through a live
class-mode server: a student lists, previews and trains on only their own uploads and those
the teacher shared; the teacher sees all; a visitor who has not joined sees none; names never
collide between students; the owner (or the teacher) deletes an upload, refused with 409
while a job trains on it; only the teacher shares one with the class."""

from __future__ import annotations

import httpx

from tests.classroom.conftest import ClassRoom


def csv_bytes(rows: int = 30, shift: int = 0) -> bytes:
    lines = ["a,b,label"] + [f"{i + shift},{i * i % 7},{'yes' if i % 2 else 'no'}"
                             for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(client: httpx.Client, name: str, content: bytes | None = None) -> httpx.Response:
    return client.post("/api/datasets", data={"target": "label", "name": name},
                       files={"file": ("data.csv", content or csv_bytes(), "text/csv")})


def uploads(client: httpx.Client) -> dict[str, dict]:
    r = client.get("/api/datasets")
    assert r.status_code == 200, r.text
    return {e["name"]: e for e in r.json() if e["uploaded"]}


def job_on(name: str) -> dict:
    return {"dataset": {"name": name}, "model": {"layers": [{"type": "dense", "units": 4}]},
            "training": {"epochs": 5}, "start": False}


def test_uploads_are_private_shared_by_the_teacher_and_deleted_by_their_owner(tmp_room):
    room: ClassRoom = tmp_room(PLAYGROUND_RATE_LIMIT_PER_SECOND="0")
    ana_token, ben_token, teacher_token = room.join("Ana"), room.join("Ben"), room.teacher()
    with room.http(ana_token) as ana, room.http(ben_token) as ben, \
            room.http(teacher_token) as teacher, room.http() as visitor:
        # Both name their upload "grades": no collision, each is used by its own name.
        r = upload(ana, "grades")
        assert r.status_code == 201, r.text
        mine = r.json()
        assert mine["name"].startswith("upload:") and mine["title"] == "grades"
        assert mine["owner"] == "Ana" and mine["shared"] is False and mine["deletable"] is True
        r = upload(ben, "grades", csv_bytes(shift=100))
        assert r.status_code == 201, r.text
        his = r.json()
        assert his["name"] != mine["name"] and his["title"] == "grades"
        again = upload(ana, "Grades")
        assert again.status_code == 422 and "You already have a data set named 'Grades'" in \
            again.json()["detail"][0]["msg"]

        # Each student sees only their own; the teacher sees both; a visitor none.
        assert list(uploads(ana)) == [mine["name"]]
        assert list(uploads(ben)) == [his["name"]]
        assert set(uploads(teacher)) == {mine["name"], his["name"]}
        assert uploads(visitor) == {} and "circle" in [e["name"] for e in
                                                       visitor.get("/api/datasets").json()]
        assert mine["name"] not in [e["name"] for e in
                                    ben.get("/api/catalog").json()["datasets"]]
        for path in (f"/api/datasets/{his['name']}", f"/api/datasets/{his['name']}/preview"):
            r = ana.get(path)
            assert r.status_code == 403 and r.json()["detail"] == \
                "This data set belongs to someone else"
            r = visitor.get(path)
            assert r.status_code == 401 and "Join the class first" in r.json()["detail"]
            assert teacher.get(path).status_code == 200
        assert ana.get(f"/api/datasets/{mine['name']}/preview").json()["rows"][0][0] == 0
        assert teacher.get(f"/api/datasets/{his['name']}/preview").json()["rows"][0][0] == 100
        assert upload(visitor, "sneaky").status_code == 401
        unknown = ana.get("/api/datasets/nope")  # the choices named are Ana's to see
        assert unknown.status_code == 404 and mine["name"] in unknown.json()["detail"]
        assert his["name"] not in unknown.json()["detail"]

        # Nobody trains on another student's upload; it is not found for them.
        r = ana.post("/api/jobs", json=job_on(his["name"]))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == \
            ["body", "dataset", "name"]
        choices = r.json()["detail"][0]["msg"].split("Choose one of:")[1]
        assert mine["name"] in choices and his["name"] not in choices
        r = ana.post("/api/models/check", json={"dataset": {"name": his["name"]},
                                                "model": {"layers": []}})
        assert r.status_code == 422
        r = ana.post("/api/jobs", json=job_on(mine["name"]))
        assert r.status_code == 201, r.text
        ana_job = r.json()["id"]

        # Only the teacher shares; a shared upload is everyone's to see and train on.
        r = ana.post(f"/api/datasets/{mine['name']}/share")
        assert r.status_code == 403 and r.json()["detail"] == \
            "Only the teacher can share a data set with the class."
        r = teacher.post(f"/api/datasets/{his['name']}/share")
        assert r.status_code == 200 and r.json()["shared"] is True
        assert uploads(ana)[his["name"]]["shared"] is True
        assert uploads(ana)[his["name"]]["deletable"] is False
        assert ana.get(f"/api/datasets/{his['name']}/preview").status_code == 200
        r = ana.post("/api/jobs", json=job_on(his["name"]))
        assert r.status_code == 201, r.text
        shared_job = r.json()["id"]
        assert ana.delete(f"/api/datasets/{his['name']}").status_code == 403
        assert uploads(visitor) == {}
        r = teacher.delete(f"/api/datasets/{his['name']}/share")
        assert r.status_code == 200 and r.json()["shared"] is False
        assert his["name"] not in uploads(ana)

        # The owner deletes: refused while a job trains on it, then gone with its files.
        r = ana.delete(f"/api/datasets/{mine['name']}")
        assert r.status_code == 409
        assert "used by 1 job" in r.json()["detail"] and "Delete that job first" in \
            r.json()["detail"]
        assert ana.delete(f"/api/jobs/{ana_job}").status_code == 204
        assert ana.delete(f"/api/datasets/{mine['name']}").status_code == 204
        assert uploads(ana) == {} and mine["name"] not in uploads(teacher)
        assert ana.get(f"/api/datasets/{mine['name']}").status_code == 404
        upload_id = mine["name"].removeprefix("upload:")
        assert list((room.live.data_dir / "uploads").glob(f"{upload_id}.*")) == []
        # The teacher may delete anyone's once no job uses it.
        assert ben.delete(f"/api/datasets/{his['name']}").status_code == 409
        assert ana.delete(f"/api/jobs/{shared_job}").status_code == 204
        assert teacher.delete(f"/api/datasets/{his['name']}").status_code == 204
        assert uploads(teacher) == {}
        assert teacher.delete("/api/datasets/circle").status_code == 409
