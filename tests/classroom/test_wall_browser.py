"""The class wall in a real headless Chromium with 30 students' runs (marked `browser`):
every tile draws, names toggle (kept in the URL), the spotlight opens and closes with the
keyboard, a student's new run replaces their tile, and who may open it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.classroom.conftest import BROWSER_TESTS, PASSWORD, ClassRoom, roomy_class

pytestmark = BROWSER_TESTS

STUDENTS = 30
STATS = "window.__wallStats ? window.__wallStats() : []"


@pytest.fixture(scope="module")
def wall_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClassRoom, list]]:
    """A class of 30 students, each with one small running job: (room, [(name, token, job)])."""
    # Its jobs end with the server (a temporary data directory).
    with roomy_class(tmp_path_factory.mktemp("wall") / "data") as room:
        students = []
        for i in range(STUDENTS):
            name = f"Student {chr(65 + i % 26)}{i}"
            token = room.join(name)
            students.append((name, token, room.create(token)["id"]))
        yield room, students


def teacher_page(room: ClassRoom, browser):
    """A browser signed in on /teacher that followed the link to the wall."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(room.url + "/teacher")
    page.fill("#password", PASSWORD)
    page.click("#login-form button")
    page.click("#wall-link")
    page.wait_for_url(room.url + "/teacher/wall")
    return context, page


def wait_stats(page, check, timeout: float = 120.0) -> list[dict]:
    """The wall's tiles (window.__wallStats) once `check` holds; frames come at the engine's
    pace (its frame budget: at least one every 2 s per watched job), so this waits long."""
    deadline = time.monotonic() + timeout
    stats: list[dict] = []
    while time.monotonic() < deadline:
        stats = page.evaluate(STATS)
        if check(stats):
            return stats
        time.sleep(0.3)
    raise AssertionError(f"the wall never got there: {stats}")


def test_thirty_tiles_names_spotlight_and_new_runs(wall_room, browser):
    room, students = wall_room
    context, page = teacher_page(room, browser)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # Every student has a tile following their run, and every tile has drawn frames.
        stats = wait_stats(page, lambda s: len(s) == STUDENTS and all(
            t["frames"] >= 2 and t["kind"] == "points2d" for t in s))
        assert {t["job"] for t in stats} == {job for _, _, job in students}
        assert [t["number"] for t in stats] == list(range(1, STUDENTS + 1))
        assert page.locator("article.tile").count() == STUDENTS
        names = page.locator("article.tile .name").all_inner_texts()
        assert names == [name for name, _, _ in students]  # in join order
        assert page.is_hidden("#board")  # no open challenge: no leaderboard

        # Names: hidden with the switch, kept in the URL (also after a reload), shown again.
        page.click("label.switch")
        assert page.url.endswith("/teacher/wall?names=hidden")
        assert page.locator("article.tile .name:visible").count() == 0
        assert page.get_attribute("article.tile >> nth=2", "aria-label") == "Student 3"
        page.reload()
        wait_stats(page, lambda s: len(s) == STUDENTS)
        assert not page.is_checked("#names")
        assert page.locator("article.tile .name:visible").count() == 0
        page.click("label.switch")
        assert page.url.endswith("/teacher/wall")
        assert page.locator("article.tile .name:visible").count() == STUDENTS

        # Spotlight: Enter on a tile enlarges it, the arrows move, Esc returns to the tile.
        third = f"article.tile[data-student-id='{stats[2]['student']}']"
        page.focus(third)
        page.keyboard.press("Enter")
        page.wait_for_selector("#spotlight[open]")
        assert page.inner_text("#spot-name") == students[2][0]
        assert page.get_attribute("#spotlight", "data-student-id") == stats[2]["student"]
        page.wait_for_function("""() => { const c = document.querySelector('#spot-main');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let blue = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > d[i] + 40) blue++;
            return blue > 1000; }""", timeout=20000)  # the boundary's blue side, enlarged
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(n) => document.querySelector('#spot-name').textContent === n",
                               arg=students[3][0])
        page.keyboard.press("Escape")
        page.wait_for_selector("#spotlight", state="hidden")
        focused = page.evaluate("document.activeElement.dataset.studentId")
        assert focused == stats[3]["student"]
        page.click(f"article.tile[data-student-id='{stats[5]['student']}']")
        page.wait_for_selector("#spotlight[open]")
        assert page.inner_text("#spot-name") == students[5][0]
        page.keyboard.press("Escape")
        page.wait_for_selector("#spotlight", state="hidden")

        # A student's new run replaces their tile (the old one stopped).
        name, token, old = students[7]
        with room.http(token) as c:
            c.post(f"/api/jobs/{old}/control", json={"action": "stop"})
        new = room.create(token, dataset={"name": "circle", "params": {"samples": 200}})["id"]
        student_id = stats[7]["student"]
        tile = f"article.tile[data-student-id='{student_id}']"
        page.wait_for_selector(f"{tile}[data-job-id='{new}']", timeout=15000)
        before = next(t for t in page.evaluate(STATS) if t["student"] == student_id)
        assert before["job"] == new
        wait_stats(page, lambda s: next(t for t in s if t["student"] == student_id)["frames"] >= 2)
        assert page.locator("article.tile").count() == STUDENTS
        assert errors == []
    finally:
        context.close()


def test_only_the_teacher_sees_the_wall(wall_room, browser):
    room, students = wall_room
    stranger = browser.new_context()
    student = browser.new_context()
    try:
        page = stranger.new_page()
        page.goto(room.url + "/teacher/wall")
        assert page.url == room.url + "/teacher"  # sent to sign in
        page.wait_for_selector("#login:not([hidden])")
        student.add_cookies([{"name": "playground_student", "value": students[0][1],
                              "url": room.url}])
        page = student.new_page()
        response = page.goto(room.url + "/teacher/wall")
        assert response.status == 403
        assert "Only the teacher can see this" in page.inner_text("body")
    finally:
        stranger.close()
        student.close()


CHALLENGE_SETUP = {
    "dataset": {"name": "circle", "params": {"samples": 200}, "features": ["x1^2", "x2^2"]},
    "model": {"layers": [{"type": "dense", "units": 3, "activation": "tanh"}]},
    "training": {"epochs": 20, "optimizer": {"name": "adam", "learning_rate": 0.05}}}


def test_the_leaderboard_follows_the_open_challenge(wall_room, browser):
    room, students = wall_room
    teacher = room.teacher()
    with room.http(teacher) as c:
        r = c.post("/api/challenges", json={
            "title": "Circle, small", "spec": CHALLENGE_SETUP,
            "editable": ["training.optimizer.learning_rate"],
            "goal": {"metric": "test_accuracy", "op": ">=", "value": 0.9, "max_epochs": 20}})
        assert r.status_code == 201, r.text
        challenge = r.json()["id"]
    for (_, token, _), rate in ((students[10], 0.05), (students[11], 0.0001)):
        spec = {**CHALLENGE_SETUP, "training": {**CHALLENGE_SETUP["training"],
                                                "optimizer": {"name": "adam",
                                                              "learning_rate": rate}}}
        with room.http(token) as c:
            r = c.post(f"/api/jobs?challenge={challenge}", json=spec)
            assert r.status_code == 201, r.text
    context, page = teacher_page(room, browser)
    try:
        page.wait_for_selector("#board:not([hidden]) #board-rows li >> nth=1", timeout=30000)
        assert page.inner_text("#board-challenge") == "Circle, small"
        assert page.inner_text("#board-goal") == "Goal: test_accuracy \u2265 0.9, within 20 epochs"
        page.wait_for_function("""() => document.querySelector('#board-rows li')
            ?.textContent.includes('goal met at epoch')""", timeout=60000)
        first = page.locator("#board-rows li").first
        assert first.locator(".who").inner_text() == students[10][0]
        page.click("label.switch")  # names hidden: the board shows tile numbers
        assert first.locator(".who").inner_text() == "Student 11"
        with room.http(teacher) as c:
            assert c.post(f"/api/challenges/{challenge}/close").status_code == 200
        page.wait_for_selector("#board", state="hidden", timeout=15000)
    finally:
        context.close()
