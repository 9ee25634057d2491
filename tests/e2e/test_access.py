"""Access and TF Playground's last details (issue 16), in headless Chromium against real servers.

- axe-core (the axe.min.js that the axe-playwright-python package ships) finds no serious or
  critical violation on the playground (points, tables, images; English and Chinese; both
  palettes; "more settings" open), the job view, the join page and the teacher page;
- a keyboard-only path: Tab to play and press it, the live region says the epoch and the test
  loss while it trains and "paused" after; Tab to layer 1's add-neuron button and press it;
  open "more settings" and switch the palette with the keyboard: the boundary's pixels change,
  the share link and localStorage keep the choice;
- the decision boundary: 100x100 from the server, tick labels and a colour legend, crisp
  edges when discretized, link widths that follow the weights; the compact top bar.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_server, stop_server
from tests.e2e.test_page import play_until_epoch, wait_until

pytestmark = pytest.mark.browser

axe_package = pytest.importorskip("axe_playwright_python",
                                  reason="the test extra installs axe-playwright-python")
AXE_JS = Path(os.path.dirname(axe_package.__file__)) / "axe.min.js"

TEACHER_PASSWORD = "access test password"
CLASS_CODE = "AXE123"

AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at `
      + v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', '));
}"""


def serious_violations(page) -> list[str]:
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(AXE_RUN)


def status(page) -> str:
    return page.evaluate("window.__playground.page.job?.status || ''")


def setting(page, key: str):
    return page.evaluate("(key) => window.__playground.store.get(key)", key)


def units(page) -> int:
    return setting(page, "layers")[0]["units"]


def texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map((e) => e.textContent)")


def said(page) -> str:
    return page.text_content("#announcer")


def weights(page) -> list:
    return page.evaluate("window.__access.views.network.segments.map((s) => s.w)")


def pick(page, dataset: str) -> None:
    page.click(f".thumb[data-name={dataset}]")
    wait_until(lambda: setting(page, "dataset") == dataset, 10, dataset)


def train_a_little(page, epochs: int = 2, timeout: float = 60) -> None:
    """Play until a snapshot is drawn and `epochs` epochs are done, then pause."""
    play_until_epoch(page, epochs, timeout)
    wait_until(lambda: page.evaluate("window.__frameStats.count") >= 1, timeout, "a snapshot")
    # A starter's budget (iris: a few hundred epochs) can be spent before the pause lands: a
    # family trains it in milliseconds. Either end is a trained run.
    if status(page) == "running":
        page.click("#play")
    wait_until(lambda: status(page) in ("paused", "completed"), 15, "paused")


def pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate("([x, y]) => [...document.getElementById('output-map').getContext('2d')"
                         ".getImageData(x, y, 1, 1).data].slice(0, 3)", [x, y])


def focus_by_tab(page, test: str, limit: int = 250) -> int:
    """Press Tab until `test` (a JS expression on `el`, the focused element) holds; the count."""
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({test}); }})()"):
            return n
    raise AssertionError(f"Tab never reached an element where {test}")


# ---- axe-core ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, query", [("circle", ""), ("iris", "lang=zh"), ("digits", "")])
def test_axe_finds_no_serious_violation_on_the_playground(server, context, dataset, query):
    page = context.new_page()
    page.goto(f"{server.url}/?{query}")
    page.wait_for_selector("body.ready", timeout=20_000)
    if dataset != "circle":
        pick(page, dataset)
    train_a_little(page, 1, timeout=90)
    assert serious_violations(page) == []
    page.click("#more-settings-toggle")
    page.check("#palette-cb")  # the other palette, with the panel open
    assert page.is_visible("#optimizer")
    assert serious_violations(page) == []
    job = page.evaluate("window.__playground.page.job")
    httpx.delete(f"{server.url}/api/jobs/{job['id']}",
                 headers={"Authorization": f"Bearer {job['token']}"})


def test_axe_finds_no_serious_violation_on_the_job_view(server, playground, context):
    page = playground()
    train_a_little(page)
    job = page.evaluate("window.__playground.page.job")
    view = context.new_page()
    view.goto(f"{server.url}/jobs/{job['id']}/view#token={job['token']}")
    view.wait_for_selector("#output-figure:not([hidden])", timeout=20_000)
    wait_until(lambda: view.locator("#network .neuron").count() > 0, 20, "the network")
    assert view.get_attribute("#network .neuron.output", "role") == "button"
    assert serious_violations(view) == []


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("access-class") / "data", env={
        "PLAYGROUND_OPEN_MODE": "false", "PLAYGROUND_TEACHER_PASSWORD": TEACHER_PASSWORD,
        "PLAYGROUND_CLASS_CODE": CLASS_CODE})
    yield live
    stop_server(live)


def test_axe_finds_no_serious_violation_on_the_join_and_teacher_pages(class_server, context):
    page = context.new_page()
    page.goto(f"{class_server.url}/join")
    page.wait_for_selector("#join-form")
    assert serious_violations(page) == []
    page.goto(f"{class_server.url}/teacher")
    page.wait_for_selector("#password")
    assert serious_violations(page) == []
    page.fill("#password", TEACHER_PASSWORD)
    page.click("#login-form button")
    page.wait_for_selector(f"#class-code:has-text('{CLASS_CODE}')")
    assert serious_violations(page) == []


# ---- the keyboard and the live region ---------------------------------------------------------

def test_keyboard_only_play_live_region_and_add_neuron(playground):
    page = playground()
    page.focus("body")
    focus_by_tab(page, "el.id === 'play'", limit=10)
    page.keyboard.press("Enter")
    wait_until(lambda: status(page) == "running", 20, "running")
    assert page.get_attribute("#announcer", "aria-live") == "polite"
    # "Training", then "Epoch N, test loss L" at most every few seconds.
    wait_until(lambda: re.fullmatch(r"Epoch \d+, test loss \d\.\d{3}", said(page)),
               20, "an epoch and a test loss in the live region")
    first = said(page)
    wait_until(lambda: said(page) != first, 15, "a later announcement")
    later = said(page)
    assert int(later.split()[1].rstrip(",")) > int(first.split()[1].rstrip(","))
    page.keyboard.press("Enter")  # the play button still has the focus: pause
    wait_until(lambda: status(page) == "paused", 15, "paused")
    wait_until(lambda: said(page).startswith("Paused at epoch "), 5, "paused said")

    assert units(page) == 4
    page.focus("#play")
    focus_by_tab(page, "el.getAttribute('aria-label') === 'Add a neuron to layer 1'")
    page.keyboard.press("Enter")
    wait_until(lambda: units(page) == 5, 5, "5 units")
    # The neurons are reachable too, as buttons.
    focus_by_tab(page, "el.classList.contains('neuron') && el.getAttribute('role') === 'button'")
    assert page.errors.real() == []


def test_live_region_in_chinese_says_completion_and_failure(playground):
    page = playground("epochs=3&lang=zh")
    assert page.text_content("#more-settings-toggle").strip() == "更多设置"
    assert page.text_content("#output-legend .legend-title") == "颜色：属于类别 1 的概率"
    page.click("#play")
    wait_until(lambda: status(page) == "completed", 60, "completed")
    wait_until(lambda: said(page).startswith("训练完成，于第 3 轮，测试损失 "), 5, "completed said")
    # A failed job is said with the server's message (the sentence the watcher speaks).
    sentences = page.evaluate("""async () => {
      const src = document.querySelector('script[src*="/access.js"]').src;
      const { statusSentence } = await import(src);
      return [statusSentence('failed', 7, null, 'loss is NaN'),
              statusSentence('paused', 7, 0.0312, '')];
    }""")
    assert sentences == ["训练失败：loss is NaN", "已暂停，于第 7 轮，测试损失 0.031"]


def test_palette_switch_by_keyboard_repaints_the_boundary(playground, context):
    page = playground()
    train_a_little(page, 3)
    corner = pixel(page, 4, 4)  # far from every point of the circle: the outer class's colour
    page.focus("#problem")
    focus_by_tab(page, "el.id === 'more-settings-toggle'", limit=5)
    page.keyboard.press("Enter")
    assert page.get_attribute("#more-settings-toggle", "aria-expanded") == "true"
    focus_by_tab(page, "el.id === 'palette-cb'", limit=10)
    page.keyboard.press("Space")
    wait_until(lambda: pixel(page, 4, 4) != corner, 5, "the boundary repainted")
    r, g, b = pixel(page, 4, 4)
    # From the default scale's orange (245, 147, 34) to the colour-blind-safe one's (230, 97, 1).
    assert r > g > b and g < corner[1] and b < corner[2], (corner, (r, g, b))
    assert page.evaluate("document.documentElement.dataset.palette") == "cb"
    assert "palette=cb" in page.evaluate("location.hash")
    assert page.evaluate("localStorage.getItem('playground.palette')") == "cb"
    page.keyboard.press("Escape")  # closes the panel, the focus back on its button
    assert page.is_hidden("#more-settings-panel")
    assert page.evaluate("document.activeElement.id") == "more-settings-toggle"
    # A link that does not name a palette keeps this browser's; one that does wins.
    again = playground("dataset=circle")
    assert again.evaluate("window.__playground.store.get('palette')") == "cb"
    assert again.is_checked("#palette-cb")
    named = playground("palette=default")
    assert named.evaluate("document.documentElement.dataset.palette") == "default"
    assert page.errors.real() == []


# ---- the boundary and the top bar --------------------------------------------------------------

def test_boundary_resolution_axes_legend_discretize_and_links(playground):
    # A small learning rate: the run is paused within a second, which is thousands of epochs
    # for a family; the boundary must still be soft for the discretize check below.
    page = playground("learning_rate=0.0001")
    play_until_epoch(page, 2)
    wait_until(lambda: page.evaluate("window.__frameStats.count") >= 2, 20, "snapshots")
    before = weights(page)
    wait_until(lambda: weights(page) != before, 10, "link weights redrawn from a later snapshot")
    page.click("#play")
    wait_until(lambda: status(page) == "paused", 15, "paused")
    shape = page.evaluate("window.__access.views.output.lastFrame.arrays['output.boundary'].shape")
    assert shape[1] >= 100 and shape[2] >= 100, shape
    ticks = texts(page, "#output-figure .axis-x span")
    assert ticks == ["-6", "-4", "-2", "0", "2", "4", "6"]
    assert texts(page, "#output-figure .axis-y span") == ticks
    legend = page.text_content("#output-legend")
    assert "Colour: probability of class 1" in legend and "0.5" in legend
    assert page.is_visible("#output-legend canvas.legend-bar")

    two = "[[245,147,34],[8,119,189]]"
    share = """(colours) => {
      const canvas = document.getElementById('output-map');
      const d = canvas.getContext('2d').getImageData(0, 0, 300, 300).data;
      let exact = 0;
      for (let k = 0; k < d.length; k += 4) {
        const same = (c) => c[0] === d[k] && c[1] === d[k + 1] && c[2] === d[k + 2];
        if (colours.some(same)) exact += 1;
      }
      return exact / (d.length / 4);
    }"""
    smooth = page.evaluate(f"({share})({two})")
    page.check("#discretize")
    crisp = page.evaluate(f"({share})({two})")
    # Discretized, every pixel but the points' is one of the two colours: no blurred band.
    assert crisp > 0.85 and smooth < 0.6, (smooth, crisp)
    assert page.errors.real() == []


def test_compact_top_bar_has_the_five_controls_and_the_rest_one_click_away(playground):
    page = playground()
    shown = page.eval_on_selector_all(
        ".topbar [data-prop]",
        "els => els.filter((e) => e.getClientRects().length).map((e) => e.id)")
    assert shown == ["learning_rate", "activation", "regularization", "regularization_rate",
                     "problem"]
    for control in ("reset", "play", "step"):
        assert page.is_visible(f"#{control}")
    assert page.is_hidden("#optimizer") and page.is_hidden("#epochs")
    page.click("#more-settings-toggle")
    for control in ("optimizer", "schedule", "epochs", "palette-cb"):
        assert page.is_visible(f"#{control}")
    page.click("#data-heading")  # a click elsewhere closes it
    assert page.is_hidden("#more-settings-panel")
    # A refused value in the panel opens it, so its message is seen.
    page.evaluate("document.querySelector('[data-error-for=epochs]').textContent = 'refused'")
    wait_until(lambda: page.is_visible("#more-settings-panel"), 5, "the panel opened")
