"""How long the browser takes to draw one frame of the largest two-dimensional network.

Starts `python -m server` on a loopback port, opens the page in headless Chromium (Playwright,
the system /usr/bin/chromium) with spiral, all nine input features and 6 hidden dense layers of
8 neurons (every neuron's heatmap, every weight's link, the 100x100 output map), presses play
and reads `window.__frameStats` (performance.now() around each frame's draw) after a few
seconds. Prints the mean, 95th percentile and maximum draw time and their ratio to the 16 ms a
60 Hz display gives one frame.

    .venv/bin/python bench/page_frame_bench.py [--seconds 10] [--width 1280]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import start_server, stop_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FEATURES = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)", "cos(x1)", "cos(x2)"]
BUDGET_MS = 16.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to train and draw")
    parser.add_argument("--width", type=int, default=1280, help="viewport width")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--units", type=int, default=8)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    layers = [{"type": "dense", "units": args.units, "activation": "tanh"}] * args.layers
    hash_ = (f"dataset=spiral&features={quote(','.join(FEATURES))}"
             f"&layers={quote(json.dumps(layers))}")
    with tempfile.TemporaryDirectory() as tmp:
        live = start_server(Path(tmp) / "data")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 800})
                page.goto(f"{live.url}/#{hash_}")
                page.wait_for_selector("body.ready", timeout=30_000)
                neurons = page.locator(".neuron").count()
                page.click("#play")
                page.wait_for_function("window.__frameStats.count >= 3", timeout=30_000)
                # The first frames build the canvases' images; measure the steady state.
                page.evaluate("window.__frameStats.reset()")
                start = time.monotonic()
                time.sleep(args.seconds)
                stats = page.evaluate(
                    "(() => { const s = window.__frameStats; return {count: s.count, "
                    "mean: s.mean, p95: s.p95, max: s.max}; })()")
                elapsed = time.monotonic() - start
                page.click("#play")
                browser.close()
        finally:
            stop_server(live)

    print(f"network: {len(FEATURES)} features, {args.layers} x {args.units} tanh, 1 output "
          f"({neurons} neuron heatmaps), viewport {args.width}x800")
    print(f"frames drawn: {stats['count']} in {elapsed:.1f} s ({stats['count'] / elapsed:.1f}/s)")
    print(f"frame draw time: mean {stats['mean']:.2f} ms, p95 {stats['p95']:.2f} ms, "
          f"max {stats['max']:.2f} ms")
    print(f"ratio to the {BUDGET_MS:.0f} ms budget: mean {stats['mean'] / BUDGET_MS:.3f}, "
          f"p95 {stats['p95'] / BUDGET_MS:.3f}")
    return 0 if stats["count"] and stats["p95"] < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
