"""The page's layout on common laptop screens (issue 11, item 10): at 1024x768 the default
problem (circle, two hidden layers 4-2) shows the play button, the whole network diagram and the
decision boundary without scrolling; the top bar is one row at 1280 and 1440 wide.

Real server on loopback, the page in headless Chromium; screenshots go to artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_page import play_until_epoch

pytestmark = pytest.mark.browser

BOXES = """() => {
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
  };
  const shown = (el) => el.getBoundingClientRect().width > 0
    && getComputedStyle(el).display !== 'none';
  return {
    play: box(document.getElementById('play')),
    output: box(document.getElementById('output-map')),
    outputShown: !document.getElementById('output-figure').hidden,
    network: box(document.getElementById('network')),
    neurons: [...document.querySelectorAll('.neuron')].map(box),
    topbar: [...document.querySelector('.topbar').children].filter(shown)
      .map((el) => ({id: el.id || el.className, ...box(el)})),
    scrollWidth: document.scrollingElement.scrollWidth,
    scrollHeight: document.scrollingElement.scrollHeight,
  };
}"""


def layout(page) -> dict:
    return page.evaluate(BOXES)


def one_row(items: list[dict]) -> bool:
    """Whether the top bar's items share a line: every item overlaps every other vertically."""
    return max(i["top"] for i in items) < min(i["bottom"] for i in items)


@pytest.mark.parametrize("width, height", [(1024, 768), (1280, 800), (1440, 900)])
def test_the_default_problem_fits_above_the_fold(browser, playground, artifacts: Path,
                                                 width: int, height: int):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = playground("dataset=circle", ctx=ctx)
        for when in ("before", "after"):
            if when == "after":  # scores, curves and the status lines are shown once it trains
                play_until_epoch(page, 2)
                page.click("#play")
            boxes = layout(page)
            assert boxes["outputShown"]
            assert 0 <= boxes["play"]["top"] and boxes["play"]["bottom"] <= height, boxes["play"]
            assert boxes["output"]["bottom"] <= height, (when, boxes["output"])
            assert boxes["output"]["right"] <= width, (when, boxes["output"])
            assert boxes["output"]["bottom"] - boxes["output"]["top"] >= 240  # not shrunk away
            # Every neuron of 9 features, 4, 2 and the output is on screen.
            assert len(boxes["neurons"]) == 9 + 4 + 2 + 1
            assert max(n["bottom"] for n in boxes["neurons"]) <= height
            assert max(n["right"] for n in boxes["neurons"]) <= width
            assert boxes["scrollWidth"] <= width
            if width >= 1280:
                assert one_row(boxes["topbar"]), (when, boxes["topbar"])
        page.screenshot(path=str(artifacts / f"page-layout-{width}x{height}.png"))
        assert page.errors.real() == []
    finally:
        ctx.close()
