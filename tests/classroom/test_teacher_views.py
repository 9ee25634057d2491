"""The teacher page draws with the student page's views (issue 13): the same class colours in
the decision boundary and the loss chart of views/charts.js, in a real headless Chromium."""

from __future__ import annotations

from tests.classroom.conftest import BROWSER_TESTS, PASSWORD

pytestmark = BROWSER_TESTS

BLOBS = {"dataset": {"name": "blobs", "params": {"samples": 200, "classes": 3}},
         "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
         "training": {"epochs": None}}

# Whether more than 20 pixels of a canvas have exactly the colour `rgb` (data points' fill).
HAS_COLOUR = """([sel, rgb]) => { const c = document.querySelector(sel);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 0; i < d.length; i += 4)
      if (d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) n++;
    return n > 20; }"""


def test_teacher_sees_the_student_pages_class_colours_and_loss_chart(room, browser):
    student = room.join("Colour Check")
    job = room.create(student, **BLOBS)["id"]
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(room.url + "/teacher?lang=en")
        page.fill("#password", PASSWORD)
        page.click("#login-form button")
        card = f"article.job[data-job-id='{job}']"
        page.wait_for_selector(f"{card} .who:has-text('Colour Check')")
        # The third class's colour, as the student page's views draw it (views/heatmap.js).
        third = page.evaluate(
            "import('/static/js/views/heatmap.js').then((m) => m.CLASS_COLOURS[2])")
        page.click(f"{card} button.open")
        page.wait_for_function(HAS_COLOUR, arg=["#watch-boundary", third], timeout=20000)
        # The loss is the student page's uPlot chart with its training and test curves.
        page.wait_for_selector("#watch-loss .uplot")
        legend = page.locator("#watch-loss .u-legend .u-label").all_inner_texts()
        assert legend == ["training", "test"]
        assert page.locator("#watch-loss .u-title").inner_text() == "Loss"
        page.click("#watch-close")
        assert errors == []
    finally:
        page.close()
        with room.http(student) as c:
            c.delete(f"/api/jobs/{job}")
