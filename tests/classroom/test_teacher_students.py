"""The teacher page's student list (issue 12, item 3) in a real headless Chromium: every
student who joined is listed with their jobs and address, and Remove deletes their jobs and
signs them out."""

from __future__ import annotations

from tests.classroom.conftest import BROWSER_TESTS, PASSWORD, SPEC

pytestmark = BROWSER_TESTS


def test_teacher_lists_and_removes_a_student(room, browser):
    una = room.join("Una Page")
    jobs = [room.create(una, start=False)["id"] for _ in range(2)]
    vic = room.join("Vic Page")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before removing
    try:
        page.goto(room.url + "/teacher?lang=en")
        page.fill("#password", PASSWORD)
        page.click("#login-form button")
        una_row = "#students li:has(.name:text-is('Una Page'))"
        page.wait_for_selector(f"{una_row} .detail:has-text('2 jobs, 0 running')")
        page.wait_for_selector(f"{una_row} .detail:has-text('127.0.0.1')")
        page.wait_for_selector("#students li:has(.name:text-is('Vic Page'))")
        page.click(f"{una_row} button.remove")
        page.wait_for_selector("#students-note:has-text('Una Page was removed; 2 jobs deleted.')")
        page.wait_for_selector(una_row, state="detached")
        for job in jobs:
            page.wait_for_selector(f"article.job[data-job-id='{job}']", state="detached")
        assert page.locator("#students li:has(.name:text-is('Vic Page'))").count() == 1
        assert errors == []
    finally:
        page.close()
    with room.http(una) as c:
        assert c.post("/api/jobs", json=SPEC).status_code == 401
    with room.http(vic) as c:
        assert c.get("/api/class").json()["name"] == "Vic Page"
