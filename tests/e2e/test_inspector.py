"""The glass box in the page (issue 16), in headless Chromium against a live server: a neuron's
equation with the numbers of the frame on screen, a weight edited while paused redraws the
boundary, a point clicked on the map shows its forward pass and gradient arrow, a hovered neuron
is shown on the big map, a link is read and edited, and for images the misclassified test
samples make a gallery whose items show their feature maps.

Screenshots at 1024x768 and 1440x900 go to /tmp/shots/inspector/ (and artifacts/).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import watch
from tests.e2e.test_page import job, output_pixels, wait_until

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/inspector")
CIRCLE = "dataset=circle&layers=" + json.dumps(
    [{"type": "dense", "units": 4, "activation": "tanh"},
     {"type": "dense", "units": 2, "activation": "tanh"}])


def shot(page, name: str, artifacts: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name))
    page.screenshot(path=str(artifacts / f"inspector-{name}"))


def step_epoch(page) -> None:
    """One epoch from the page's step button; waits for the paused job's first frame."""
    page.click("#step")
    wait_until(lambda: job(page) and job(page)["status"] == "paused", 20, "a paused job")
    wait_until(lambda: page.evaluate("() => Boolean(window.__playground.page.job) && "
                                     "document.querySelector('#epoch').textContent !== '000,000'"),
               20, "an epoch")
    wait_until(lambda: page.evaluate(
        "() => document.querySelector('.neuron.hidden canvas') !== null"), 10, "the diagram")


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)]


@pytest.mark.parametrize("size", [(1024, 768), (1440, 900)])
def test_neuron_equation_edit_point_and_hover(browser, server, artifacts, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    try:
        page = context.new_page()
        page.errors = watch(page)
        page.goto(f"{server.url}/#{CIRCLE}")
        page.wait_for_selector("body.ready", timeout=20_000)
        step_epoch(page)
        wait_until(lambda: page.evaluate(
            "() => window.__playground.page.job && "
            "document.getElementById('output-figure').hidden === false"), 10, "the output map")

        # Click a neuron of the first hidden layer: its equation, with numbers that add up.
        page.locator(".neuron-column").nth(1).locator(".neuron").first.click()
        assert page.locator("#neuron-zoom").is_visible()
        wait_until(lambda: page.locator("#neuron-equation table.equation").count() == 1, 10,
                   "the equation")
        eq = page.inner_text("#neuron-equation")
        assert "At the point (0.000, 0.000)" in eq
        rows = page.locator("#neuron-equation table.equation tr")
        assert rows.count() == 1 + 2 + 1  # head, x1 and x2, bias
        products = [numbers(rows.nth(i).inner_text())[-1] for i in (1, 2)]
        bias = float(page.locator("#neuron-equation .bias-row input").input_value())
        z = float(page.inner_text("#neuron-equation .eq-z"))
        assert z == pytest.approx(sum(products) + bias, abs=2e-3)
        out = float(page.inner_text("#neuron-equation .eq-out"))
        assert out == pytest.approx(math.tanh(z), abs=2e-3)
        # Pick another point on the enlarged picture: the numbers follow it.
        box = page.locator("#neuron-zoom-canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
        wait_until(lambda: "At the point (3.0" in page.inner_text("#neuron-equation"), 5,
                   "the picked point")
        shot(page, f"equation-{size[0]}x{size[1]}.png", artifacts)
        page.keyboard.press("Escape")

        # Paused: edit the output neuron's bias; the boundary is drawn again.
        before = output_pixels(page)
        page.locator(".neuron-column").nth(3).locator(".neuron").first.click()
        field = page.locator("#neuron-equation .bias-row input")
        field.fill("4")
        field.press("Enter")
        wait_until(lambda: output_pixels(page) != before, 10, "the boundary to change")
        wait_until(lambda: page.inner_text("#neuron-equation").count("4.000") >= 1, 5,
                   "the new bias in the equation")
        page.keyboard.press("Escape")
        r = page.request.get(f"{server.url}/api/jobs/{job(page)['id']}/model",
                             headers={"Authorization": f"Bearer {job(page)['token']}"})
        assert r.ok

        # Click a training point: its forward pass, layer by layer, and the gradient arrow.
        before = output_pixels(page)
        j = job(page)
        r = page.request.post(f"{server.url}/api/jobs/{j['id']}/inspect",
                              data={"split": "train", "index": 0},
                              headers={"Authorization": f"Bearer {j['token']}"})
        x, y = r.json()["point"]  # the plane is [-6, 6] on both axes
        canvas = page.locator("#output-map").bounding_box()
        page.mouse.click(canvas["x"] + (x + 6) / 12 * canvas["width"],
                         canvas["y"] + (6 - y) / 12 * canvas["height"])
        wait_until(lambda: page.locator("#inspector table.forward").count() == 1, 10,
                   "the forward pass")
        text = page.inner_text("#inspector")
        assert "Training sample 0" in text
        rows = page.locator("#inspector table.forward tr")
        assert rows.count() == 1 + 1 + 3  # head, input, 3 layers
        for word in ("target", "prediction", "loss", "gradient of the loss"):
            assert word in text
        assert output_pixels(page) != before  # the marker and the arrow
        # Hover a neuron: the big map shows its heatmap, and says whose.
        with_marks = output_pixels(page)
        page.locator(".neuron-column").nth(1).locator(".neuron").nth(1).hover()
        wait_until(lambda: page.locator("#output-overlay").is_visible(), 5, "the overlay label")
        assert page.inner_text("#output-overlay") == "Showing layer 1, neuron 2"
        assert output_pixels(page) != with_marks
        shot(page, f"hover-{size[0]}x{size[1]}.png", artifacts)
        page.mouse.move(2, 2)
        wait_until(lambda: not page.locator("#output-overlay").is_visible(), 5, "no overlay")
        assert output_pixels(page) == with_marks

        # Click a link: its weight, editable while paused.
        a = page.locator(".neuron-column").nth(0).locator(".neuron").first.bounding_box()
        b = page.locator(".neuron-column").nth(1).locator(".neuron").first.bounding_box()
        x1, y1 = a["x"] + a["width"], a["y"] + a["height"] / 2
        x2, y2 = b["x"], b["y"] + b["height"] / 2
        page.mouse.click((x1 + x2) / 2, (y1 + y2) / 2)  # the curve's middle
        wait_until(lambda: page.locator("#inspector .inspector-link input").count() == 1, 5,
                   "the link's field")
        assert "\u2192" in page.inner_text("#inspector .inspector-link h4")
        before = output_pixels(page)
        page.locator("#inspector .inspector-link input").fill("-6")
        page.locator("#inspector .inspector-link input").press("Enter")
        wait_until(lambda: output_pixels(page) != before, 10, "the boundary after the link edit")
        shot(page, f"panel-{size[0]}x{size[1]}.png", artifacts)
        assert page.errors.real() == []
    finally:
        context.close()


def test_misclassified_gallery_and_feature_maps(browser, server, artifacts):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.errors = watch(page)
        page.goto(f"{server.url}/")
        page.wait_for_selector("body.ready", timeout=20_000)
        page.click(".thumb[data-name='digits']")  # its starter: conv2d, maxpool2d, flatten, dense
        wait_until(lambda: "(8, 8, 8)" in page.inner_text("#layers"), 10, "the conv2d")
        page.click("#step")
        wait_until(lambda: job(page) and job(page)["status"] == "paused", 30, "a paused job")
        page.click("#gallery-load")
        wait_until(lambda: page.locator(".gallery-item").count() > 0, 15, "the gallery")
        title = page.inner_text("#inspector .gallery-head h4")
        count, total = (int(v) for v in re.findall(r"\d+", title))
        assert page.locator(".gallery-item").count() == min(count, 48)
        assert 0 < count < total
        page.locator(".gallery-item").first.click()
        wait_until(lambda: page.locator("#inspector .inspector-maps canvas").count() > 0, 10,
                   "the feature maps")
        assert "Test sample" in page.inner_text("#inspector")
        assert page.locator("#inspector .inspector-maps h5").count() == 2  # conv2d, maxpool2d
        page.locator("#inspector").scroll_into_view_if_needed()
        shot(page, "gallery-1440x900.png", artifacts)
        assert page.errors.real() == []
    finally:
        context.close()


def test_the_inspector_speaks_chinese(browser, server):
    """In Chinese, the equation, the forward pass and the hover label hold no English word
    (tests/e2e/test_i18n.py's rule)."""
    from tests.e2e.test_i18n import english_nodes

    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.errors = watch(page)
        page.goto(f"{server.url}/?lang=zh#{CIRCLE}")
        page.wait_for_selector("body.ready", timeout=20_000)
        step_epoch(page)
        canvas = page.locator("#output-map").bounding_box()
        page.mouse.click(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
        wait_until(lambda: page.locator("#inspector table.forward").count() == 1, 10,
                   "the forward pass")
        assert re.fullmatch(r"训练样本 \d+|点 \(.*\)", page.inner_text("#inspector h4"))
        # Keyboard: the arrows move the picked point, Enter shows its forward pass.
        page.focus("#output-map")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("Enter")
        wait_until(lambda: page.inner_text("#inspector h4").startswith("点 ("), 10,
                   "the point's forward pass")
        assert job(page)["status"] == "paused"  # Enter on the map did not press play
        page.locator(".neuron-column").nth(1).locator(".neuron").first.hover()
        wait_until(lambda: page.locator("#output-overlay").is_visible(), 5, "the overlay label")
        assert page.inner_text("#output-overlay") == "正在显示 " + page.get_attribute(
            ".neuron-column:nth-child(2) .neuron", "aria-label")
        page.locator(".neuron-column").nth(1).locator(".neuron").first.click()
        wait_until(lambda: page.locator("#neuron-equation table.equation").count() == 1, 10,
                   "the equation")
        bad = [n for n in english_nodes(page) if "#inspector" in n or "#neuron-zoom" in n
               or "#neuron-equation" in n or "#output-overlay" in n]
        assert bad == []
        assert page.errors.real() == []
    finally:
        context.close()
