"""A challenge from the teacher page to the CSV, in headless Chromium (issue 14): the teacher
makes one from a job spec, two students in their own browser contexts join with its code, see
its goal with locked and hidden controls, train, and the teacher's results table lists both
(Open shows a best run in the watch view) and downloads the CSV. Screenshots of the panel and
of a student's challenge view at 1024x768 and 1440x900 go to /tmp/shots/challenges/. A student
who joins in Chinese reads the challenge in Chinese."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.classroom.conftest import BROWSER_TESTS, CODE, PASSWORD, class_env
from tests.conftest import LiveServer, start_server, stop_server

pytestmark = BROWSER_TESTS

SHOTS = Path("/tmp/shots/challenges")
SPEC = {"dataset": {"name": "circle", "params": {"samples": 200}, "features": ["x1^2", "x2^2"]},
        "model": {"layers": [{"type": "dense", "units": 3, "activation": "tanh"}]},
        "training": {"epochs": 15, "optimizer": {"name": "adam", "learning_rate": 0.05}}}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("challenge-page") / "data",
                          env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    yield server
    stop_server(server)


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def errors_of(page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: found.append(str(e)))
    return found


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1024, 768), (1440, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.mouse.move(width - 4, height - 4)  # no hover or focus tip over what is shown
        page.evaluate("() => document.activeElement?.blur()")
        time.sleep(0.3)
        page.screenshot(path=str(SHOTS / f"{name}-{width}x{height}.png"))


def student(browser, live: LiveServer, name: str, code: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.errors = errors_of(page)
    page.goto(f"{live.url}/join?challenge={code}")
    assert page.input_value("#challenge") == code
    page.fill("#name", name)
    page.fill("#code", CODE)
    page.click("#join-form button")
    page.wait_for_selector("body.ready", timeout=30_000)
    page.wait_for_selector("#challenge-banner .challenge-goal:not(:empty)", timeout=10_000)
    return ctx, page


def test_a_challenge_from_the_teacher_page_to_the_csv(browser, live):
    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 800},
                                      accept_downloads=True)
    contexts = [teacher_ctx]
    try:
        t = teacher_ctx.new_page()
        t.errors = errors_of(t)
        t.goto(f"{live.url}/teacher")
        t.fill("#password", PASSWORD)
        t.click("#login-form button")
        t.wait_for_selector("#challenges-root #challenge-new", timeout=10_000)
        t.wait_for_selector("#challenges-empty", state="visible", timeout=10_000)
        t.click("#challenge-new summary")
        t.fill("#challenge-source", json.dumps(SPEC))
        t.fill("#challenge-title", "Circle with few units")
        t.fill("#challenge-instructions", "Reach 90% test accuracy with at most 30 parameters.")
        t.select_option("select[data-control=seed]", "hidden")
        t.select_option("#challenge-metric", "test_accuracy")
        assert t.input_value("#challenge-op") == ">="
        t.fill("#challenge-value", "0.9")
        t.fill("#challenge-max-params", "30")
        t.fill("#challenge-max-epochs", "15")
        shoot(t, "teacher-form")
        t.set_viewport_size({"width": 1280, "height": 800})
        t.click("#challenge-create")
        t.wait_for_selector("#challenge-list li", timeout=10_000)
        code = t.inner_text("#challenge-list li .code")
        assert len(code) == 6
        assert t.inner_text("#challenge-list li .goal") == (
            "Goal: test accuracy \u2265 0.9, at most 30 parameters, within 15 epochs")
        challenge = t.evaluate("(c) => fetch('/api/challenges/' + c).then((r) => r.json())", code)

        pages = []
        for name, lr in (("Ada", None), ("Bo", "0.1")):
            ctx, page = student(browser, live, name, code)
            contexts.append(ctx)
            assert page.inner_text("#challenge-banner .challenge-title") == "Circle with few units"
            assert page.is_disabled("#optimizer") and page.is_disabled("#epochs")
            assert not page.is_disabled("#batch_size")  # editable by default
            assert not page.is_disabled("#learning_rate")
            assert page.eval_on_selector_all(
                "#dataset-params input", "els => els.length > 0 && els.every((e) => e.disabled)")
            assert page.is_hidden("#seed")
            assert page.input_value("#optimizer") == "adam"
            if lr:
                page.fill("#learning_rate", lr)
                page.dispatch_event("#learning_rate", "change")
            page.click("#play")
            pages.append(page)
        for page in pages:
            wait_until(lambda p=page: p.evaluate(
                "() => window.__playground.page.job?.status") == "completed", 60, "a finished run")
            wait_until(lambda p=page: "Goal met at epoch" in p.inner_text(
                "#challenge-banner .challenge-progress"), 15, "the goal met")
        shoot(pages[0], "student")
        # A locked control refuses a change from a link too.
        pages[0].evaluate("() => { location.hash = 'optimizer=sgd&learning_rate=0.2'; }")
        wait_until(lambda: pages[0].input_value("#learning_rate") == "0.2", 10, "the link")
        assert pages[0].input_value("#optimizer") == "adam"
        assert "Optimizer" in pages[0].inner_text("#challenge-banner .challenge-note")

        t.click(f"#challenge-list li[data-challenge='{challenge['id']}'] button.results")
        wait_until(lambda: t.locator("#challenge-results tbody tr").count() == 2, 15,
                   "both students in the table")
        names = t.eval_on_selector_all("#challenge-results tbody tr",
                                       "rs => rs.map((r) => r.cells[1].textContent)")
        assert sorted(names) == ["Ada", "Bo"]
        def goals():  # the board follows the engine's events: read the table again until then
            shown = t.eval_on_selector_all("#challenge-results tbody tr .goal",
                                           "cs => cs.map((c) => c.textContent)")
            if all(g.startswith("met at epoch ") for g in shown):
                return shown
            t.click(f"#challenge-list li[data-challenge='{challenge['id']}'] button.results")
            t.wait_for_timeout(300)
            return None

        wait_until(goals, 15, "both goals met in the table")
        names = t.eval_on_selector_all("#challenge-results tbody tr",
                                       "rs => rs.map((r) => r.cells[1].textContent)")
        shoot(t, "teacher")
        t.set_viewport_size({"width": 1280, "height": 800})
        t.click("#challenge-results tbody tr:first-child button.open-run")
        t.wait_for_selector("#watch[open]", timeout=10_000)
        assert t.inner_text("#watch-title").startswith(names[0] + " \u00b7 ")
        t.click("#watch-close")

        with t.expect_download() as download:
            t.click("#challenge-csv")
        text = Path(download.value.path()).read_text()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["student"] for r in rows] == names
        assert all(r["met"] == "true" for r in rows)
        bo = next(r for r in rows if r["student"] == "Bo")
        assert json.loads(bo["setup"]) == {"training.optimizer.learning_rate": 0.1}
        for page in (t, *pages):
            assert [e for e in page.errors if "status of 4" not in e] == []
    finally:
        for ctx in contexts:
            ctx.close()


def test_a_student_in_chinese_reads_the_challenge_in_chinese(browser, live):
    from tests.e2e.test_i18n import english_nodes

    with httpx.Client(base_url=live.url, timeout=30) as c:
        teacher = c.post("/api/class/teacher/login", json={"password": PASSWORD}).json()["token"]
        made = c.post("/api/challenges", headers={"Authorization": f"Bearer {teacher}"}, json={
            "title": "螺旋", "instructions": "用尽量少的参数。", "spec": SPEC,
            "editable": ["learning_rate"], "hidden": ["seed"],
            "goal": {"metric": "test_loss", "op": "<=", "value": 0.05, "max_params": 30,
                     "max_epochs": 15}})
    assert made.status_code == 201, made.text
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = ctx.new_page()
        page.goto(f"{live.url}/join?challenge={made.json()['code']}&lang=zh")
        page.fill("#name", "小明")
        page.fill("#code", CODE)
        page.click("#join-form button")
        page.wait_for_selector("body.ready", timeout=30_000)
        page.wait_for_selector("#challenge-banner .challenge-best:not(:empty)", timeout=10_000)
        assert page.inner_text("#challenge-banner .challenge-goal") == (
            "目标：测试损失 ≤ 0.05，参数不超过 30 个，在 15 轮之内")
        code = made.json()["code"]  # an identifier, in Latin letters in every language
        assert [n for n in english_nodes(page) if f"代码 {code}" not in n] == []
    finally:
        ctx.close()
