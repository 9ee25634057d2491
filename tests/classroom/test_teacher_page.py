"""The teacher page and the join page in a real headless Chromium (marked `browser`)."""

from __future__ import annotations

import time

from tests.classroom.conftest import BROWSER_TESTS, CODE, PASSWORD

pytestmark = BROWSER_TESTS


PAINTED = """(sel) => { const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n > c.width * c.height / 2; }"""


def test_teacher_signs_in_sees_watches_and_stops(room, browser):
    ada = room.join("Ada Lovelace")
    job = room.create(ada)["id"]  # running xor: a decision boundary to draw
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(room.url + "/teacher")
        page.fill("#password", "not it")
        page.click("#login-form button")
        page.wait_for_selector("#login-error:has-text('Wrong teacher password')")
        page.fill("#password", PASSWORD)
        page.click("#login-form button")
        page.wait_for_selector(f"#class-code:has-text('{CODE}')")
        card = f"article.job[data-job-id='{job}']"
        page.wait_for_selector(f"{card} .who:has-text('Ada Lovelace')")
        page.wait_for_selector(f"{card} .status:has-text('running')")
        page.wait_for_function(PAINTED, arg=f"{card} canvas", timeout=20000)
        page.click(f"{card} button.open")
        page.wait_for_selector("#watch[open] #watch-status:has-text('running')")
        page.wait_for_function(PAINTED, arg="#watch-boundary", timeout=20000)
        page.click("#watch-close")
        page.click(f"{card} button.stop")
        page.wait_for_selector(f"{card} .status:has-text('stopped')")
        assert errors == []
    finally:
        page.close()
        with room.http(ada) as c:
            c.post(f"/api/jobs/{job}/control", json={"action": "stop"})


def test_student_joins_from_the_front_page(room, browser):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(room.url + "/")
        assert page.url.endswith("/join")
        page.fill("#name", "Grace")
        page.fill("#code", CODE.lower())
        page.click("#join-form button")
        page.wait_for_url(room.url + "/")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["playground_student"]["httpOnly"]
        assert cookies["playground_student"]["sameSite"] == "Strict"
        info = page.evaluate("fetch('/api/class').then(r => r.json())")
        assert (info["role"], info["name"]) == ("student", "Grace")
        # Play on the student page trains under Grace's token: the teacher sees it as hers.
        page.wait_for_selector("body.ready")  # main.js has loaded the catalogue
        page.click("#play")
        with room.http(room.teacher()) as c:
            deadline = time.monotonic() + 30
            graces: list = []
            while not graces and time.monotonic() < deadline:
                time.sleep(0.5)
                graces = [j for j in c.get("/api/class/jobs").json()["jobs"]
                          if j["student"] == "Grace"]
            assert graces, "the student's job did not reach the teacher"
            for job in graces:
                c.post(f"/api/jobs/{job['id']}/control", json={"action": "stop"})
    finally:
        context.close()
