"""The playground page in a real headless Chromium against a real server on loopback: a student
builds a network, presses play and watches it learn; the page shows what the server computes.

Screenshots go to artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.e2e.conftest import watch
from tests.e2e.shown import shown

pytestmark = pytest.mark.browser


def wait_until(check: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def epoch(page) -> int:
    return int(page.inner_text("#epoch").replace(",", ""))


def job(page) -> dict | None:
    return page.evaluate("() => { const j = window.__playground.page.job; "
                         "return j && {id: j.id, token: j.token, status: j.status}; }")


def chart_length(page, name: str = "loss") -> int:
    return page.evaluate(f"() => window.__playground.page.charts.{name}.length")


def output_pixels(page) -> str:
    return page.evaluate("() => document.getElementById('output-map').toDataURL()")


def get_job(server, j: dict) -> dict:
    r = httpx.get(f"{server.url}/api/jobs/{j['id']}",
                  headers={"Authorization": f"Bearer {j['token']}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def play_until_epoch(page, n: int = 2, timeout: float = 30.0) -> None:
    page.click("#play")
    wait_until(lambda: epoch(page) >= n, timeout, f"epoch {n}")


def test_page_loads_with_options_from_the_catalogue(server, playground, artifacts: Path):
    page = playground()
    catalog = httpx.get(f"{server.url}/api/catalog", timeout=10).json()
    time.sleep(0.5)  # thumbnails and the model check arrive in the background
    assert page.errors.real() == []

    thumbs = page.eval_on_selector_all(".thumb", "els => els.map(e => e.dataset.name)")
    assert thumbs == [d["name"] for d in catalog["datasets"] if d["task"] == "classification"]
    layer_types = page.eval_on_selector_all("#layer-0-type option", "els => els.map(e => e.value)")
    assert layer_types == [entry["type"] for entry in catalog["layers"]]
    assert page.eval_on_selector_all("#optimizer option", "els => els.map(e => e.value)") \
        == catalog["optimizers"]
    # The default network: two dense layers on spiral, drawn as neurons with parameter counts.
    assert page.inner_text("#layer-count") == "2 hidden layers"
    assert page.locator(".neuron.hidden").count() == 4 + 2 + 1
    wait_until(lambda: "parameters" in page.inner_text("#param-count"), 10, "the model check")
    assert page.inner_text("#epoch") == "000,000"
    page.screenshot(path=str(artifacts / "page-initial.png"), full_page=True)


def test_build_play_watch_change_learning_rate_and_pause(server, playground, artifacts: Path):
    page = playground()
    # Build a two-layer network from nothing with the + and - buttons.
    page.click("#remove-layer")
    page.click("#remove-layer")
    assert page.inner_text("#layer-count") == "0 hidden layers"
    page.click("#add-layer")
    page.click("#add-layer")
    assert page.inner_text("#layer-count") == "2 hidden layers"
    page.click("button[aria-label='Add a neuron to layer 1']")
    page.click("button[aria-label='Remove a neuron from layer 2']")
    columns = page.eval_on_selector_all(
        ".neuron-column", "cols => cols.map(c => c.querySelectorAll('.neuron').length)")
    assert columns[1:] == [5, 3, 1]  # after the 9 offered features: 5 and 3 neurons, 1 output
    assert page.input_value("#layer-0-units") == "5"

    before = output_pixels(page)
    play_until_epoch(page, 2)
    assert page.get_attribute("#play", "aria-label") == "Pause"
    j = job(page)
    assert j and j["status"] == "running"
    # Curves grow and the output heatmap changes while it trains.
    wait_until(lambda: chart_length(page) >= 1 and output_pixels(page) != before, 10,
               "a loss point and a drawn frame")
    first_len, first_epoch, first_pixels = chart_length(page), epoch(page), output_pixels(page)
    wait_until(lambda: chart_length(page) > first_len + 2, 20, "more loss points")
    # The counter is written when the page paints, which may come after the points.
    wait_until(lambda: epoch(page) > first_epoch, 10, "the epoch counter to move")
    wait_until(lambda: output_pixels(page) != first_pixels, 10, "the output heatmap to change")
    assert page.evaluate("() => window.__frameStats.count") >= 2

    # The learning rate changes on the running job, without a new job.
    page.fill("#learning_rate", "0.1")
    page.press("#learning_rate", "Enter")
    page.locator("#learning_rate").blur()

    def lr_changed():
        view = get_job(server, j)
        return view["spec"]["training"]["optimizer"]["learning_rate"] == pytest.approx(0.1)

    wait_until(lr_changed, 10, "the job's learning rate to become 0.1")
    assert job(page)["id"] == j["id"]
    assert "learning_rate=0.1" in page.evaluate("location.hash")

    # Pause stops the counter.
    page.click("#play")
    wait_until(lambda: job(page)["status"] == "paused", 10, "paused")
    time.sleep(0.5)  # metrics of the last epochs before the pause may still be on their way
    stopped_at = epoch(page)
    time.sleep(1.2)
    assert epoch(page) == stopped_at
    assert get_job(server, j)["status"] == "paused"
    assert page.get_attribute("#play", "aria-label") == "Play"

    # "Discretize output" and "Show test data" redraw the output from the last frame.
    paused_pixels = output_pixels(page)
    page.check("#discretize")
    discrete_pixels = output_pixels(page)
    assert discrete_pixels != paused_pixels
    page.check("#show_test")
    assert output_pixels(page) != discrete_pixels
    assert "discretize=true" in page.evaluate("location.hash")

    # Hover a link for its weight; click a neuron to enlarge it.
    box = page.locator(".neuron-column").nth(1).locator(".neuron").first.bounding_box()
    page.mouse.move(box["x"] - 8, box["y"] + box["height"] / 2)
    wait_until(lambda: "weight" in page.inner_text("#tooltip"), 5, "a weight tooltip")
    page.locator(".neuron-column").nth(2).locator(".neuron").first.click()
    assert page.locator("#neuron-zoom").is_visible()
    page.screenshot(path=str(artifacts / "page-neuron-zoom.png"))
    page.keyboard.press("Escape")
    page.screenshot(path=str(artifacts / "page-spiral-paused.png"), full_page=True)
    assert page.errors.real() == []


def test_space_plays_and_pauses_and_step_trains_one_batch(server, playground):
    page = playground("dataset=xor&layers=" + json.dumps([{"type": "dense", "units": 3}]))
    page.click("#step")
    wait_until(lambda: job(page) and job(page)["status"] == "paused", 10, "a paused job")
    wait_until(lambda: get_job(server, job(page))["progress"]["step"] >= 1, 10, "one step")
    page.click("#data-heading")  # focus off the buttons, as a student would
    page.keyboard.press("Space")
    wait_until(lambda: job(page)["status"] == "running", 10, "running after space")
    wait_until(lambda: epoch(page) >= 1, 20, "an epoch")
    page.keyboard.press("Space")
    wait_until(lambda: job(page)["status"] == "paused", 10, "paused after space")
    assert page.errors.real() == []


def test_shape_error_shows_on_the_layer_that_causes_it(playground, artifacts: Path):
    page = playground()
    page.select_option("#layer-1-type", "conv2d")
    card = page.locator(".layer-card[data-index='1']")
    wait_until(lambda: "has-error" in (card.get_attribute("class") or ""), 10, "the error")
    message = card.locator(".layer-error").inner_text()
    # The server's sentence, without its "layer 1 (conv2d)" prefix: the card says which layer.
    assert "image" in message and not message.startswith("layer")
    assert "has-error" not in page.locator(".layer-card[data-index='0']").get_attribute("class")
    # Not drawn as neurons any more: a block diagram with shapes.
    assert page.locator("#network").is_hidden()
    page.screenshot(path=str(artifacts / "page-shape-error.png"), full_page=True)
    # Play is refused with the error still on the layer.
    page.click("#play")
    wait_until(lambda: "has-error" in (card.get_attribute("class") or ""), 10, "the error")
    assert job(page) is None


def test_server_errors_appear_next_to_their_control(server, playground):
    page = playground("dataset=xor&learning_rate=1000")
    page.click("#play")
    slot = page.locator("[data-error-for='learning_rate']")
    wait_until(lambda: "100" in slot.inner_text(), 10, "the learning rate error")
    assert job(page) is None
    # Fixed, it plays; a bad value sent to the running job is refused beside the same control.
    page.fill("#learning_rate", "0.03")
    page.press("#learning_rate", "Enter")
    play_until_epoch(page, 1)
    page.evaluate("() => { const e = document.getElementById('batch_size'); e.min = '0'; "
                  "e.value = '0'; e.dispatchEvent(new Event('change')); }")
    wait_until(lambda: page.locator("[data-error-for='batch_size']").inner_text() != "", 10,
               "the batch size error")
    assert job(page)["status"] == "running"
    page.click("#play")


def test_digits_show_feature_maps_filters_and_predictions(playground, artifacts: Path):
    page = playground()
    page.click(".thumb[data-name='digits']")
    wait_until(lambda: "(8, 8, 8)" in page.inner_text("#layers"), 10, "the conv2d output shape")
    assert page.locator("#layers.diagram").count() == 1
    play_until_epoch(page, 1)
    wait_until(lambda: page.locator("canvas.feature-map").count() >= 8, 10, "feature maps")
    wait_until(lambda: "%" in page.locator(".prediction figcaption").first.inner_text(), 10,
               "predictions")
    assert page.locator("canvas.filter").count() == 8
    assert page.locator("table.confusion td").count() == 100
    page.click("#play")
    page.screenshot(path=str(artifacts / "page-digits.png"), full_page=True)
    assert page.errors.real() == []


def test_sequences_show_predictions_and_attention(playground, artifacts: Path):
    page = playground()
    page.select_option("#problem", "regression")
    page.click(".thumb[data-name='sine']")
    wait_until(lambda: "lstm" in page.input_value("#layer-0-type"), 5, "a recurrent starter")
    play_until_epoch(page, 1)
    wait_until(lambda: "predicted" in page.locator(".seq-text").first.inner_text(), 10,
               "predictions against targets")
    page.click("#play")
    page.screenshot(path=str(artifacts / "page-sine.png"), full_page=True)

    page.select_option("#problem", "classification")
    page.click(".thumb[data-name='recall']")
    wait_until(lambda: page.input_value("#layer-1-type") == "attention", 5, "attention")
    play_until_epoch(page, 1)
    wait_until(lambda: page.locator("canvas.attention-map").count() == 2, 10, "two heads")
    page.click("#play")
    page.screenshot(path=str(artifacts / "page-recall-attention.png"), full_page=True)
    assert page.errors.real() == []


def test_share_link_restores_the_setup_in_a_fresh_page(browser, playground):
    page = playground()
    page.click(".thumb[data-name='xor']")
    page.click("[aria-label='Input feature x1*x2: off']")
    page.fill("#learning_rate", "0.3")
    page.press("#learning_rate", "Enter")
    page.click("button[aria-label='Add a neuron to layer 1']")
    page.check("#show_test")
    page.select_option("#regularization", "l2")
    settings = shown(page)
    assert settings["features"] == ["x1", "x2", "x1*x2"]
    link = page.url

    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        fresh = playground(link.split("#", 1)[1], ctx=other)
        assert shown(fresh) == settings
        assert fresh.get_attribute(".thumb[data-name='xor']", "aria-checked") == "true"
        assert fresh.input_value("#learning_rate") == "0.3"
        assert fresh.input_value("#regularization") == "l2"
        assert fresh.is_checked("#show_test")
        # xor's starter (issue 11: picking a set applies its starter) plus the neuron added.
        assert fresh.input_value("#layer-0-units") == page.input_value("#layer-0-units")
        assert int(fresh.input_value("#layer-0-units")) == settings["layers"][0]["units"]
        switch = fresh.locator("[aria-label='Input feature x1*x2: on']")
        assert switch.get_attribute("aria-checked") == "true"
    finally:
        other.close()


def test_save_and_load_the_spec_as_a_json_file(playground, tmp_path: Path):
    page = playground("dataset=circle")
    with page.expect_download() as download:
        page.click("#save-spec")
    path = tmp_path / "spec.json"
    download.value.save_as(path)
    spec = json.loads(path.read_text())
    assert spec["dataset"]["name"] == "circle"
    spec["model"]["layers"] = [{"type": "dense", "units": 6, "activation": "relu"}]
    spec["training"]["optimizer"]["learning_rate"] = 0.01
    path.write_text(json.dumps(spec))

    fresh = playground()
    fresh.set_input_files("#load-spec", str(path))
    wait_until(lambda: fresh.input_value("#learning_rate") == "0.01", 5, "the loaded spec")
    assert fresh.get_attribute(".thumb[data-name='circle']", "aria-checked") == "true"
    assert fresh.input_value("#layer-0-units") == "6"
    assert fresh.inner_text("#layer-count") == "1 hidden layer"

    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    fresh.set_input_files("#load-spec", str(bad))
    wait_until(lambda: "not a job spec" in fresh.inner_text("[data-error-for='load']"), 5,
               "the load error")


def test_tablet_width_fits_and_trains(browser, playground, artifacts: Path):
    ctx = browser.new_context(viewport={"width": 768, "height": 1024})
    try:
        page = playground(ctx=ctx)
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        play_until_epoch(page, 1)
        page.click("#play")
        page.screenshot(path=str(artifacts / "page-tablet-768.png"), full_page=True)
        assert page.errors.real() == []
    finally:
        ctx.close()


def test_lost_connection_says_so_and_reconnects(browser, tmp_path: Path, artifacts: Path):
    live = start_server(tmp_path / "data")
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        watch(page)
        page.goto(f"{live.url}/#dataset=xor")
        page.wait_for_selector("body.ready", timeout=20_000)
        play_until_epoch(page, 1)
        j = job(page)
        live.kill()
        banner = page.locator("#connection")
        wait_until(lambda: banner.is_visible() and "Reconnecting" in banner.inner_text(), 15,
                   "the lost-connection banner")
        page.screenshot(path=str(artifacts / "page-connection-lost.png"))
        live = start_server(live.data_dir, port=live.port)
        wait_until(lambda: banner.is_hidden(), 30, "the reconnection")
        assert job(page)["id"] == j["id"]
        page.evaluate(f"fetch('/api/jobs/{j['id']}', {{method: 'DELETE', headers: "
                      f"{{Authorization: 'Bearer {j['token']}'}}}})")
    finally:
        ctx.close()
        stop_server(live)
