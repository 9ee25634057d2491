"""Challenges over real HTTP (issue 14): a class-mode server on loopback, a teacher and two
students. Creation and its 422s, locked fields and max_params refused, the goal met at the
epoch the job's own history says, close and reopen, the CSV byte for byte, and the results
after a restart."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator

import pytest

from tests.classroom.conftest import ClassRoom, class_env
from tests.conftest import start_server, stop_server

# x1^2 and x2^2 make the circle linearly separable: Adam meets 90% within a few epochs.
SETUP = {"dataset": {"name": "circle", "params": {"samples": 200}, "features": ["x1^2", "x2^2"]},
         "model": {"layers": [{"type": "dense", "units": 3, "activation": "tanh"}]},
         "training": {"epochs": 20, "optimizer": {"name": "adam", "learning_rate": 0.05}}}
GOAL = {"metric": "test_accuracy", "op": ">=", "value": 0.9, "max_params": 30,
        "max_epochs": 20}
BODY = {"title": "Circle, small", "instructions": "Reach 90% with few units.", "spec": SETUP,
        "editable": ["layers", "training.optimizer.learning_rate"], "hidden": ["seed"],
        "goal": GOAL}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("challenges") / "data"


@pytest.fixture(scope="module")
def room(data_dir) -> Iterator[ClassRoom]:
    live = start_server(data_dir, env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    room = ClassRoom(live)
    yield room
    stop_server(room.live)  # the restart test replaces it


def post(room: ClassRoom, token: str | None, path: str, body: dict | None = None):
    with room.http(token) as c:
        return c.post(path, json=body) if body is not None else c.post(path)


def get(room: ClassRoom, token: str | None, path: str):
    with room.http(token) as c:
        return c.get(path)


def make(room: ClassRoom, teacher: str, **changes) -> dict:
    r = post(room, teacher, "/api/challenges", {**BODY, **changes})
    assert r.status_code == 201, r.text
    return r.json()


def run(room: ClassRoom, token: str, challenge: str, **training) -> dict:
    spec = json.loads(json.dumps(SETUP))
    spec["training"].update(training)
    r = post(room, token, f"/api/jobs?challenge={challenge}", spec)
    assert r.status_code == 201, r.text
    return r.json()


def finished(room: ClassRoom, token: str, job_id: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = get(room, token, f"/api/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "stopped"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def detail(r) -> list[dict]:
    assert r.status_code == 422, r.text
    return r.json()["detail"]


def test_create_list_and_who_may(room):
    teacher, ada = room.teacher(), room.join("Ada")
    c = make(room, teacher)
    assert len(c["code"]) == 6 and c["code"].isupper()
    assert c["link"] == f"/join?challenge={c['code']}"
    assert c["state"] == "open" and c["task"] == "classification"
    assert c["editable"] == ["layers", "training.optimizer.learning_rate"]
    assert c["controls"]["hidden"] == ["seed"]
    assert "learning_rate" in c["controls"]["editable"] and "layers" in c["controls"]["editable"]
    assert "activation" in c["controls"]["editable"]  # the layers carry it
    assert "batch_size" in c["controls"]["locked"] and "optimizer" in c["controls"]["locked"]
    assert "test_f1" in c["metrics"] and "test_r2" not in c["metrics"]
    assert c["spec"]["training"]["batch_size"] == 10  # defaults filled in
    # a student reads it by id or by code (any case) and sees it listed; may not make one
    assert get(room, ada, f"/api/challenges/{c['code'].lower()}").json()["id"] == c["id"]
    assert c["id"] in [x["id"] for x in get(room, ada, "/api/challenges").json()["challenges"]]
    assert post(room, ada, "/api/challenges", BODY).status_code == 403
    assert post(room, None, "/api/challenges", BODY).status_code == 401
    assert get(room, None, "/api/challenges").status_code == 401
    assert get(room, ada, f"/api/challenges/{c['id']}/results").status_code == 403
    assert get(room, teacher, "/api/challenges/NOSUCH").status_code == 404


@pytest.mark.parametrize(("changes", "loc", "words"), [
    ({"goal": {**GOAL, "metric": "test_r2"}}, ["body", "goal", "metric"],
     "'test_r2' is not a metric of this classification setup; choose one of: test_loss, "
     "test_accuracy"),
    ({"goal": {**GOAL, "value": 1.5}}, ["body", "goal", "value"],
     "test_accuracy lies between 0 and 1; got 1.5"),
    ({"goal": {**GOAL, "op": "<"}}, ["body", "goal", "op"], "'<=' or '>='"),
    ({"goal": {**GOAL, "max_epochs": 10**9}}, ["body", "goal", "max_epochs"],
     "this server allows at most"),
    ({"editable": ["layers", "lerning_rate"]}, ["body", "editable", 1],
     "'lerning_rate' is neither a control nor a path in the challenge's spec; controls: "
     "dataset, params,"),
    ({"hidden": ["layers"]}, ["body", "hidden", 0], "'layers' is also editable"),
    ({"spec": {**SETUP, "dataset": {"name": "nope"}}}, ["body", "spec", "dataset", "name"],
     "Students can use the built-in data sets"),
    ({"title": "   "}, ["body", "title"], "Give the challenge a title"),
])
def test_bad_challenges_are_refused_naming_the_field(room, changes, loc, words):
    teacher = room.teacher()
    found = detail(post(room, teacher, "/api/challenges", {**BODY, **changes}))
    assert found[0]["loc"] == loc, found
    assert words in found[0]["msg"], found


def test_locked_fields_and_max_params_are_refused(room):
    teacher, ada = room.teacher(), room.join("Ada")
    c = make(room, teacher)
    spec = json.loads(json.dumps(SETUP))
    spec["training"]["batch_size"] = 20
    found = detail(post(room, ada, f"/api/jobs?challenge={c['code']}", spec))
    assert found == [{"loc": ["body", "training", "batch_size"], "type": "value_error",
                      "msg": "This challenge does not let you change training.batch_size (it "
                             "stays 10); you may change: layers, "
                             "training.optimizer.learning_rate"}]
    spec = json.loads(json.dumps(SETUP))
    spec["model"]["layers"] = [{"type": "dense", "units": 8, "activation": "tanh"}]
    found = detail(post(room, ada, f"/api/jobs?challenge={c['id']}", spec))
    assert found[0]["loc"] == ["body", "model", "layers"]
    assert found[0]["msg"] == ("This challenge allows at most 30 parameters; this model has 33. "
                               "Use fewer or smaller layers.")
    # what the challenge lets them change passes, and no job was stored for the refusals
    job = run(room, ada, c["id"], optimizer={"name": "adam", "learning_rate": 0.1})
    mine = get(room, ada, f"/api/challenges/{c['id']}/mine").json()
    assert [r["job_id"] for r in mine["runs"]] == [job["id"]]
    assert mine["runs"][0]["setup"] == {"training.optimizer.learning_rate": 0.1}
    assert post(room, ada, "/api/jobs?challenge=NOSUCH", SETUP).status_code == 404


def first_met(history: list[dict]) -> int | None:
    return next((h["epoch"] for h in history if h["test_accuracy"] >= GOAL["value"]), None)


def test_goal_met_results_csv_close_reopen_and_restart(room, data_dir):
    teacher, ada, bo = room.teacher(), room.join("Ada"), room.join("Bo")
    c = make(room, teacher, title="Race")
    a1 = run(room, ada, c["id"])
    a2 = run(room, ada, c["id"], optimizer={"name": "adam", "learning_rate": 0.0001})
    b1 = run(room, bo, c["code"], optimizer={"name": "adam", "learning_rate": 0.0001})
    histories = {}
    for token, job in ((ada, a1), (ada, a2), (bo, b1)):
        assert finished(room, token, job["id"])["status"] == "completed"
        histories[job["id"]] = get(room, token, f"/api/jobs/{job['id']}/metrics").json()["history"]
    met = first_met(histories[a1["id"]])
    assert met is not None and met <= 20  # the setup surely meets it
    time.sleep(0.5)
    body = get(room, teacher, f"/api/challenges/{c['id']}/results").json()
    assert body["challenge"]["id"] == c["id"]
    rows = body["rows"]
    assert [r["student"] for r in rows] == ["Ada", "Bo"]
    ada_row, bo_row = rows
    assert ada_row["best_job"] == a1["id"] and ada_row["met"] is True
    assert ada_row["met_epoch"] == met and ada_row["runs"] == 2 and ada_row["setup"] == {}
    assert ada_row["value"] == max(h["test_accuracy"] for h in histories[a1["id"]])
    bo_history = histories[b1["id"]]
    assert bo_row["met"] is (first_met(bo_history) is not None)
    assert bo_row["met_epoch"] == first_met(bo_history)
    assert bo_row["value"] == max(h["test_accuracy"] for h in bo_history)
    assert bo_row["setup"] == {"training.optimizer.learning_rate": 0.0001}
    assert set(ada_row) == {"student_id", "student", "best_job", "met", "met_epoch", "value",
                            "runs", "setup"}

    r = get(room, teacher, f"/api/challenges/{c['id']}/results.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="challenge-{c["code"]}.csv"'
    bo_epoch = "" if bo_row["met_epoch"] is None else bo_row["met_epoch"]
    expected = (
        "student_id,student,best_job,met,met_epoch,value,runs,setup\r\n"
        f"{ada_row['student_id']},Ada,{a1['id']},true,{met},{ada_row['value']},2,{{}}\r\n"
        f"{bo_row['student_id']},Bo,{b1['id']},{str(bo_row['met']).lower()},{bo_epoch},"
        f"{bo_row['value']},1,\"{{\"\"training.optimizer.learning_rate\"\":0.0001}}\"\r\n")
    assert r.text == expected
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert json.loads(parsed[1]["setup"]) == {"training.optimizer.learning_rate": 0.0001}

    # closed: students no longer see it or make runs; reopened: they do again
    assert post(room, teacher, f"/api/challenges/{c['id']}/close").json()["state"] == "closed"
    assert c["id"] not in [x["id"] for x in get(room, bo, "/api/challenges").json()["challenges"]]
    assert c["id"] in [x["id"] for x in get(room, teacher, "/api/challenges").json()["challenges"]]
    r = post(room, bo, f"/api/jobs?challenge={c['id']}", SETUP)
    assert r.status_code == 409 and r.json()["detail"] == (
        "This challenge is closed; ask your teacher to reopen it.")
    assert post(room, teacher, f"/api/challenges/{c['id']}/reopen").json()["state"] == "open"

    # a restart keeps the challenge and every result
    stop_server(room.live)
    room.live = start_server(data_dir, env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    teacher = room.teacher()
    assert get(room, teacher, f"/api/challenges/{c['id']}/results").json() == body
    assert get(room, teacher, f"/api/challenges/{c['id']}/results.csv").text == expected

    # deleted: gone, the jobs stay
    with room.http(teacher) as client:
        assert client.delete(f"/api/challenges/{c['id']}").status_code == 204
    assert get(room, teacher, f"/api/challenges/{c['id']}").status_code == 404
    assert get(room, ada, f"/api/jobs/{a1['id']}").status_code == 200


def test_a_reset_run_starts_its_standing_again(room):
    teacher, cy = room.teacher(), room.join("Cy")
    c = make(room, teacher, title="Reset")
    job = run(room, cy, c["id"])
    assert finished(room, cy, job["id"])["status"] == "completed"
    mine = get(room, cy, f"/api/challenges/{c['id']}/mine").json()["runs"][0]
    assert mine["met"] and mine["latest_epoch"] == 20
    assert post(room, cy, f"/api/jobs/{job['id']}/control", {"action": "reset"}).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = get(room, cy, f"/api/challenges/{c['id']}/mine").json()["runs"][0]
        if mine["latest_epoch"] is None:
            break
        time.sleep(0.2)
    assert mine == {**mine, "met": False, "met_epoch": None, "best_value": None,
                    "latest_epoch": None}
