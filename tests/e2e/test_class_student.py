"""A student in class mode, in headless Chromium against a class-mode server (issue 11, items
1 and 12): reloading or closing the tab keeps their jobs (the teacher still lists them), the
page shows who they are joined as and signs out, tells them when the teacher stopped their
run, and the teacher page counts "1 student"."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.classroom.conftest import CODE, PASSWORD, class_env
from tests.conftest import LiveServer, start_server, stop_server
from tests.e2e.conftest import watch
from tests.e2e.test_page import chart_length, epoch, job, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("class-student") / "data",
                        env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    yield live
    stop_server(live)


def teacher_token(room: LiveServer) -> str:
    r = httpx.post(f"{room.url}/api/class/teacher/login", json={"password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["token"]


def class_jobs(room: LiveServer, token: str) -> dict[str, dict]:
    r = httpx.get(f"{room.url}/api/class/jobs", timeout=10,
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return {j["id"]: j for j in r.json()["jobs"]}


def join(context, room: LiveServer, name: str, hash_: str = ""):
    page = context.new_page()
    page.errors = watch(page)
    page.goto(f"{room.url}/join{('#' + hash_) if hash_ else ''}")
    page.fill("#name", name)
    page.fill("#code", CODE)
    page.click("#join-form button")
    page.wait_for_selector("body.ready", timeout=20_000)
    return page


def open_playground(context, room: LiveServer):
    page = context.new_page()
    page.errors = watch(page)
    page.goto(f"{room.url}/")
    page.wait_for_selector("body.ready", timeout=20_000)
    return page


def test_reload_and_close_keep_the_students_jobs(browser, room):
    teacher = teacher_token(room)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = join(ctx, room, "Ada Lovelace", "dataset=xor")
        assert page.inner_text("#who-name") == "Joined as Ada Lovelace"
        page.click("#play")
        wait_until(lambda: epoch(page) >= 2, 30, "two epochs")
        page.click("#play")
        wait_until(lambda: job(page)["status"] == "paused", 10, "paused")
        mine = job(page)["id"]
        points = chart_length(page)
        assert class_jobs(room, teacher)[mine]["student"] == "Ada Lovelace"

        page.reload()
        page.wait_for_selector("body.ready", timeout=20_000)
        wait_until(lambda: (job(page) or {}).get("id") == mine, 10, "the job re-attached")
        # the stream's hello carries at most 1,000 points, evenly spread (a family trains
        # thousands of epochs before the reload, so how many the chart keeps varies): drawn
        wait_until(lambda: chart_length(page) >= min(points, 500), 15, "its curves again")
        assert mine in class_jobs(room, teacher)

        page.close()  # the end of the lesson: the tab is closed
        assert class_jobs(room, teacher)[mine]["student"] == "Ada Lovelace"
        listed = httpx.get(f"{room.url}/api/jobs", timeout=10,
                           headers={"Authorization": f"Bearer {teacher}"}).json()["jobs"]
        assert mine in {j["id"] for j in listed}

        # A new tab (no memory of the last one) lists the job again, from the student's cookie.
        again = open_playground(ctx, room)
        rows = again.eval_on_selector_all("#runs tbody tr", "rs => rs.map(r => r.dataset.id)")
        assert rows == [mine]
        assert job(again) is None
        again.click(f"#runs tr[data-id='{mine}'] button.open-run")
        wait_until(lambda: (job(again) or {}).get("id") == mine, 10, "the run opened")
        wait_until(lambda: chart_length(again) >= min(points, 500), 15, "its curves")
        assert again.errors.real() == []
    finally:
        ctx.close()


def test_a_student_is_told_when_the_teacher_stops_their_run(browser, room):
    teacher = teacher_token(room)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = join(ctx, room, "Alan Turing", "dataset=xor")
        page.click("#play")
        wait_until(lambda: epoch(page) >= 1, 30, "an epoch")
        mine = job(page)["id"]
        assert page.is_hidden("#run-notice")
        r = httpx.post(f"{room.url}/api/jobs/{mine}/control", json={"action": "stop"},
                       headers={"Authorization": f"Bearer {teacher}"}, timeout=10)
        assert r.status_code == 200, r.text
        wait_until(lambda: page.is_visible("#run-notice"), 10, "the notice")
        assert page.inner_text("#run-notice").startswith("Your teacher stopped this run.")
        # Still told after a reload.
        page.reload()
        page.wait_for_selector("body.ready", timeout=20_000)
        wait_until(lambda: page.is_visible("#run-notice"), 10, "the notice after a reload")
    finally:
        ctx.close()


def test_sign_out_and_the_teacher_counts_one_student(browser, room):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = join(ctx, room, "Grace Hopper")
        page.once("dialog", lambda d: d.dismiss())
        page.click("#sign-out")
        assert page.is_visible("#who")  # dismissed: still joined
        page.once("dialog", lambda d: d.accept())
        page.click("#sign-out")
        page.wait_for_url("**/join", timeout=10_000)
        info = page.evaluate("() => fetch('/api/class').then((r) => r.json())")
        assert info["role"] is None and info["name"] is None

        # The teacher page's summary uses the plural table.
        t = teacher_ctx.new_page()
        t.goto(f"{room.url}/teacher")
        t.fill("#password", PASSWORD)
        t.click("#login-form button")
        t.wait_for_selector("#summary:not(:empty)", timeout=10_000)
        summary = t.inner_text("#summary")
        students = len({j["student"] for j in class_jobs(room, teacher_token(room)).values()
                        if j["student"]})
        word = "student" if students == 1 else "students"
        assert f"{students} {word}" in summary
        assert "1 students" not in summary
    finally:
        ctx.close()
        teacher_ctx.close()


def test_one_student_is_counted_in_the_singular(browser, tmp_path):
    live = start_server(tmp_path / "data", env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        r = httpx.post(f"{live.url}/api/class/join", json={"code": CODE, "name": "Solo"},
                       timeout=10)
        token = r.json()["token"]
        created = httpx.post(f"{live.url}/api/jobs", timeout=20,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"dataset": {"name": "xor"}, "model": {"layers": []},
                                   "start": False})
        assert created.status_code == 201, created.text
        t = ctx.new_page()
        t.goto(f"{live.url}/teacher")
        t.fill("#password", PASSWORD)
        t.click("#login-form button")
        t.wait_for_selector("#summary:not(:empty)", timeout=10_000)
        assert t.inner_text("#summary") == "1 job, 0 running or queued, 1 student"
    finally:
        ctx.close()
        stop_server(live)
