"""Whether the page stays as light after minutes of a run as after seconds.

Starts `python -m server` on a loopback port, opens the playground in headless Chromium
(Playwright, the system /usr/bin/chromium) at 1440x900, presses play on the default setup and
leaves it training. Every `--every` seconds it prints the epoch, the JS heap, the points the
loss chart holds and the share of the page's main thread that was busy (Chrome's
Performance.getMetrics TaskDuration). At the end it prints the last window's busy share over the
first's: about 1 when the page's work does not grow with the run (the charts keep at most
4,000 points, views/charts.js), rising with time when it does.

    .venv/bin/python bench/page_long_run_bench.py [--seconds 90] [--every 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import start_server, stop_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    live = start_server(Path(tempfile.mkdtemp(prefix="page-long-run-")) / "data")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(live.url + "/")
            page.wait_for_selector("body.ready", timeout=30_000)
            page.click("#play")

            def metrics() -> dict[str, float]:
                return {m["name"]: m["value"]
                        for m in cdp.send("Performance.getMetrics")["metrics"]}

            start = time.monotonic()
            before, then = metrics(), start
            shares = []
            print(f"default setup left playing for {args.seconds:.0f} s, Chromium at 1440x900")
            while time.monotonic() - start < args.seconds:
                page.wait_for_timeout(args.every * 1000)
                now_metrics, now = metrics(), time.monotonic()
                busy = (now_metrics["TaskDuration"] - before["TaskDuration"]) / (now - then)
                shares.append(busy)
                epoch = page.inner_text("#epoch")
                points = page.evaluate("() => window.__playground.page.charts.loss.length")
                print(f"t={now - start:6.1f} s  epoch {epoch:>11}  heap "
                      f"{now_metrics['JSHeapUsedSize'] / 1e6:5.1f} MB  loss chart {points:5d} "
                      f"points  main thread busy {busy:.2f}", flush=True)
                before, then = now_metrics, now
            browser.close()
        if len(shares) >= 2 and shares[0] > 0:
            print(f"main thread busy, last window / first: {shares[-1] / shares[0]:.2f} "
                  f"(about 1: the page's work does not grow with the run)")
    finally:
        stop_server(live)


if __name__ == "__main__":
    main()
