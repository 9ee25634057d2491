"""Wide layers in the page (issue 11, item 4): every width the server accepts is drawn compactly
(a sample of neurons and a summary block) and keeps the page responsive; a width over the
server's max_units is refused on its layer card before anything is built.

Real server on loopback, the page in headless Chromium.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.test_page import epoch, wait_until

pytestmark = pytest.mark.browser

# Long tasks (main-thread work over 50 ms) as the browser reports them.
WATCH_LONG_TASKS = """() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
  }).observe({ type: "longtask" });
}"""
LAYOUT = """() => ({
  neurons: document.querySelectorAll('.neuron').length,
  perColumn: [...document.querySelectorAll('.neuron-column')]
    .map(c => c.querySelectorAll('.neuron').length),
  scrollHeight: document.scrollingElement.scrollHeight,
  units: Number(document.querySelector('.neuron-column:nth-child(2) .column-title span')
    .textContent.replace(/[^0-9]/g, '')),
  error: document.querySelector('#layer-card-0 .layer-error').textContent,
  longTasks: window.__longTasks,
})"""


def set_units(page, value: str) -> float:
    """Type `value` into layer 1's units and commit it; the seconds until the page answers again."""
    page.fill("#layer-0-units", value)
    start = time.monotonic()
    page.dispatch_event("#layer-0-units", "change")
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(1)))")
    return time.monotonic() - start


def summary(page) -> list[str]:
    return page.eval_on_selector_all(
        ".neuron-summary",
        "els => els.map(e => [...e.children].map(c => c.textContent).join(' | '))")


def test_the_widest_layer_is_a_sample_and_a_wider_one_is_refused_on_its_card(server, playground):
    most = httpx.get(f"{server.url}/api/catalog", timeout=10).json()["limits"]["max_units"]
    assert most == 4096
    page = playground("dataset=circle")
    page.evaluate(WATCH_LONG_TASKS)
    viewport = page.viewport_size["height"]

    took = set_units(page, str(most))
    wait_until(lambda: page.evaluate(LAYOUT)["units"] == most, 10, "the 4096-unit layer")
    # The model check answers later and redraws the cards: let it land first.
    wait_until(lambda: "12.3k" in page.inner_text("#layer-card-0 .params"), 10, "the check")
    state = page.evaluate(LAYOUT)
    assert took < 0.5, f"the page answered after {took:.2f}s"
    assert max(state["longTasks"], default=0) < 500, state["longTasks"]
    # 9 offered features, the first 8 of 4096 neurons, 2, the output; a summary for the rest.
    assert state["perColumn"] == [9, 8, 2, 1]
    assert summary(page) == ["\u2026 4,088 more | 4,096 units | 12,288 parameters"]
    assert page.inner_text(".neuron-column:nth-child(2) .column-title span") == "4,096 neurons"
    assert state["scrollHeight"] < 2 * viewport
    assert state["error"] == ""

    # Over the server's limit: refused on the card, the field shows the kept value again, and
    # the diagram is not rebuilt (the mark on its DOM survives).
    page.evaluate("document.querySelector('.neuron-columns').dataset.mark = 'kept'")
    took = set_units(page, "99999")
    state = page.evaluate(LAYOUT)
    assert took < 0.5, f"the page answered after {took:.2f}s"
    assert state["error"] == ("Units is 99999 but this server allows at most 4096: use fewer. "
                              "Nothing was changed.")
    assert page.locator("#layer-card-0").get_attribute("class").split() \
        == ["block", "layer-card", "has-error"]
    assert page.input_value("#layer-0-units") == "4096"
    assert state["units"] == most and state["perColumn"] == [9, 8, 2, 1]
    assert page.evaluate("document.querySelector('.neuron-columns').dataset.mark") == "kept"
    assert state["scrollHeight"] < 2 * viewport
    assert max(state["longTasks"], default=0) < 500, state["longTasks"]
    assert "99999" not in page.evaluate("location.hash")

    # Below the schema's minimum the same way; a width in range is taken again.
    set_units(page, "0")
    wait_until(lambda: page.evaluate(LAYOUT)["error"] == ("Units is 0 but it must be at least 1. "
                                                          "Nothing was changed."), 5, "the refusal")
    set_units(page, "17")
    wait_until(lambda: page.evaluate(LAYOUT)["units"] == 17, 10, "17 units")
    assert page.evaluate(LAYOUT)["perColumn"] == [9, 8, 2, 1]
    assert summary(page) == ["\u2026 9 more | 17 units | 51 parameters"]
    set_units(page, "16")
    wait_until(lambda: page.evaluate(LAYOUT)["perColumn"] == [9, 16, 2, 1], 10, "16 neurons")
    assert summary(page) == []
    assert page.errors.real() == []


def test_a_link_over_the_limit_is_drawn_compactly_with_the_servers_message(playground):
    layers = [{"type": "dense", "units": 99999, "activation": "tanh"},
              {"type": "dense", "units": 2, "activation": "tanh"}]
    page = playground(f"dataset=circle&layers={quote(json.dumps(layers))}")
    state = page.evaluate(LAYOUT)
    assert state["perColumn"] == [9, 8, 2, 1]
    wait_until(lambda: page.evaluate(LAYOUT)["error"], 10, "the model check's answer")
    assert page.evaluate(LAYOUT)["error"] == \
        "This layer has units 99999 but this server allows at most 4096: use fewer"
    height = page.evaluate("document.scrollingElement.scrollHeight")
    assert height < 2 * page.viewport_size["height"]


def test_a_4096_unit_layer_trains_and_its_sample_is_drawn(playground):
    layers = [{"type": "dense", "units": 4096, "activation": "tanh"},
              {"type": "dense", "units": 2, "activation": "tanh"}]
    page = playground(f"dataset=circle&layers={quote(json.dumps(layers))}")
    page.evaluate(WATCH_LONG_TASKS)
    blank = page.evaluate("() => document.querySelector('.neuron.hidden canvas').toDataURL()")
    page.click("#play")
    wait_until(lambda: epoch(page) >= 3 and page.evaluate("window.__frameStats.count") >= 3, 60,
               "three frames of the wide network")
    page.click("#play")
    heatmaps = page.eval_on_selector_all(
        ".neuron-column:nth-child(2) .neuron canvas", "els => els.map(c => c.toDataURL())")
    assert len(heatmaps) == 8
    assert blank not in heatmaps  # every drawn neuron got its own map from the frames
    assert len(set(heatmaps)) > 1
    took = time.monotonic()
    page.evaluate("1")
    assert time.monotonic() - took < 0.5
    long_tasks = page.evaluate("window.__longTasks")
    assert max(long_tasks, default=0) < 500, long_tasks
    assert page.evaluate("window.__frameStats.max") < 500
    # The view throws (and the page logs) when a frame's arrays do not fit the drawn sample.
    assert page.errors.real() == []
