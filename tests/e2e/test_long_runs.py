"""A run left training: a lone default job trains thousands of epochs a second, and the page
must stay as light after minutes as after seconds. Its charts keep at most MAX_CHART_POINTS
points, evenly spread with the newest (views/charts.js), and its stream asks for at most 100
points a message (controllers/job.js), in a real headless Chromium against a real server."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_page import chart_length, epoch, play_until_epoch, wait_until

pytestmark = pytest.mark.browser

CAP = 4000  # MAX_CHART_POINTS


def xs(page, name: str = "loss") -> list[float]:
    return page.evaluate(f"() => window.__playground.page.charts.{name}.data[0]")


def test_a_chart_keeps_few_points_evenly_spread_with_the_newest(playground):
    page = playground()
    # 25,000 epochs in messages of 100 points, as a fast run's stream brings them.
    page.evaluate("""() => {
        const chart = window.__playground.page.charts.loss;
        chart.clear();
        for (let start = 1; start <= 25000; start += 100) {
            const records = [];
            for (let e = start; e < start + 100; e += 1)
                records.push({epoch: e, train_loss: 1 / e, test_loss: 2 / e});
            chart.append(records);
        }
    }""")
    kept = xs(page)
    assert CAP // 2 <= len(kept) <= CAP
    assert kept[0] == 1 and kept[-1] == 25000  # the first and the newest stay
    gaps = [b - a for a, b in zip(kept, kept[1:], strict=False)]
    assert min(gaps) > 0
    # Evenly spread: the spacing is the same everywhere but next to the newest.
    assert max(gaps[:-1]) <= 2 * min(gaps[:-1]), (min(gaps), max(gaps))
    # Every kept x holds its own record's values.
    losses = page.evaluate("() => window.__playground.page.charts.loss.data[1]")
    assert losses == [1 / x for x in kept]
    # A chart under the cap keeps every point (a short run's curve is exact).
    page.evaluate("""() => {
        const chart = window.__playground.page.charts.loss;
        chart.clear();
        chart.append(Array.from({length: 300}, (_, i) => ({epoch: i + 1, train_loss: 1})));
    }""")
    assert xs(page) == list(range(1, 301))


def test_a_fast_run_sends_and_keeps_bounded_curves(playground):
    page = playground()
    sizes: list[int] = []

    def on_socket(ws):
        def frame(payload):
            if isinstance(payload, str):
                message = json.loads(payload)
                if message.get("type") == "metrics":
                    sizes.append(len(message["points"]))
        ws.on("framereceived", frame)

    page.on("websocket", on_socket)
    play_until_epoch(page, 2)
    # The default problem trains thousands of epochs a second; wait until the curves are
    # well past the chart's cap.
    wait_until(lambda: epoch(page) > 3 * CAP, 60, f"epoch {3 * CAP}")
    # (Playwright hands over socket frames while the test waits on the page.)
    wait_until(lambda: page.wait_for_timeout(100) or len(sizes) >= 20, 20,
               f"metrics messages (got {len(sizes)})")
    page.click("#play")  # pause
    assert max(sizes) <= 100, sizes
    assert chart_length(page) <= CAP
    kept = xs(page)
    assert kept == sorted(kept) and kept[0] == 1
    wait_until(lambda: xs(page)[-1] == epoch(page), 10, "the newest epoch on the chart")
    assert not page.errors
