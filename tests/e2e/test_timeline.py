"""The timeline in the page (issue 16), in headless Chromium against a live server: scrub a
finished run with the mouse and the keyboard (the output map shows the kept picture, the
curves a marker), back to live, the same after a reload; replay beside it from the same initial
weights and scrub both with the shared scrubber. Screenshots go to /tmp/shots/timeline/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_compare_export_import import train_to_the_end
from tests.e2e.test_page import job, wait_until

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/timeline")


def bar(page, selector: str = "#timeline") -> dict:
    return page.eval_on_selector(selector, """el => ({
        scrubbing: el.dataset.scrubbing, epoch: el.dataset.epoch,
        max: Number(el.querySelector('input[type=range]').max),
        readout: el.querySelector('output').textContent})""")


def pixels(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "cs => cs.map(c => c.toDataURL())")


def kept(page, job_id: str, last: int) -> list[int]:
    """The job's kept epochs once the picture of its last epoch is drawn."""
    def epochs():
        found = page.evaluate("id => fetch('/api/jobs/' + id + '/timeline').then(r => r.json())"
                              ".then(t => t.epochs)", job_id)
        return found if found and found[-1] == last else None
    return wait_until(epochs, 20, f"the picture of epoch {last}")


def marker(page) -> float | None:
    return page.evaluate("() => window.__playground.page.charts.loss.marker ?? null")


def test_scrub_a_run_with_the_keyboard_and_after_a_reload(playground):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = playground("dataset=circle&epochs=40")
    page.set_viewport_size({"width": 1440, "height": 900})
    finished = train_to_the_end(page, 60)
    epochs = kept(page, finished["id"], 40)
    assert epochs[0] == 0 and len(epochs) >= 3
    wait_until(lambda: bar(page)["max"] == len(epochs) - 1, 10, "the kept epochs listed")
    assert bar(page)["scrubbing"] == "false" and bar(page)["readout"] == "live"
    live = pixels(page, "#output-map")[0]
    page.focus("#timeline-range")
    page.keyboard.press("Home")
    wait_until(lambda: bar(page)["epoch"] == "0", 5, "epoch 0")
    wait_until(lambda: pixels(page, "#output-map")[0] != live, 5, "the epoch-0 picture drawn")
    assert marker(page) == 0
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    second = epochs[2]
    wait_until(lambda: bar(page)["epoch"] == str(second), 5, "the third picture")
    assert bar(page)["readout"] == f"epoch {second}" and marker(page) == second
    page.keyboard.press("End")
    wait_until(lambda: bar(page)["epoch"] == "40", 5, "epoch 40")
    page.screenshot(path=str(SHOTS / "scrub-1440x900.png"))
    page.keyboard.press("Escape")
    wait_until(lambda: bar(page)["scrubbing"] == "false", 5, "live again")
    assert marker(page) is None

    page.reload()
    page.wait_for_selector("body.ready", timeout=20_000)
    page.set_viewport_size({"width": 1024, "height": 768})
    assert job(page)["id"] == finished["id"]
    wait_until(lambda: bar(page)["max"] == len(epochs) - 1, 10, "the kept epochs after a reload")
    middle = len(epochs) // 2
    page.fill("#timeline-range", str(middle))  # a drag: the input event with the slider's value
    wait_until(lambda: bar(page)["epoch"] == str(epochs[middle]), 5, "a middle epoch, reloaded")
    assert marker(page) == epochs[middle]
    page.locator("#timeline").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "scrub-1024x768.png"))
    page.click("#timeline .timeline-live")
    wait_until(lambda: bar(page)["scrubbing"] == "false", 5, "live after the button")
    assert not page.errors.real(), page.errors


def test_replay_beside_starts_from_the_same_weights(playground):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = playground("dataset=circle&epochs=12")
    page.set_viewport_size({"width": 1440, "height": 900})
    first = train_to_the_end(page, 60)
    mine = kept(page, first["id"], 12)
    wait_until(lambda: bar(page)["max"] == len(mine) - 1, 10, "the first run's pictures")
    page.click("#timeline .timeline-replay")
    page.wait_for_selector("#compare-view[data-pictures='drawn'] .compare-timeline", timeout=20_000)
    ids = page.evaluate("() => window.__playground.page.compare.result.jobs.map(j => j.id)")
    assert ids[0] == first["id"] and len(ids) == 2
    assert "same initial weights" in page.inner_text(".compare-timeline")
    # The shared scrubber covers the epochs both runs keep (0 and 12 at least, once done).
    theirs = kept(page, ids[1], 12)
    common = [e for e in mine if e in theirs]
    assert common[0] == 0 and common[-1] == 12
    wait_until(lambda: bar(page, ".compare-timeline")["max"] == len(common) - 1, 30,
               "the replay's pictures")
    page.focus("#compare-timeline-range")
    page.keyboard.press("Home")
    wait_until(lambda: bar(page, ".compare-timeline")["epoch"] == "0", 5, "epoch 0 of both")
    wait_until(lambda: all("epoch 0" in s for s in page.eval_on_selector_all(
        ".compare-picture", "fs => fs.map(f => f.textContent)")), 10, "both pictures at epoch 0")
    first_picture, second_picture = pixels(page, "canvas.compare-boundary")
    assert first_picture == second_picture  # the same initial weights, the same boundary
    page.keyboard.press("ArrowRight")
    wait_until(lambda: bar(page, ".compare-timeline")["epoch"] == str(common[1]), 5,
               "the next common epoch")
    wait_until(lambda: not any("epoch 0" in s for s in page.eval_on_selector_all(
        ".compare-picture", "fs => fs.map(f => f.textContent)")), 10, "both pictures moved on")
    charts = page.evaluate("() => Object.values(window.__playground.page.compare.charts)"
                           ".map(c => c.marker)")
    assert charts and all(m == common[1] for m in charts)
    page.locator("#compare-dialog").screenshot(path=str(SHOTS / "replay-1440x900.png"))
    page.set_viewport_size({"width": 1024, "height": 768})
    page.screenshot(path=str(SHOTS / "replay-1024x768.png"))
    assert not page.errors.real(), page.errors


def test_scrub_an_image_run_draws_its_main_view(playground):
    layers = json.dumps([{"type": "conv2d", "filters": 4, "kernel_size": 3},
                         {"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"}])
    page = playground(f"dataset=digits&problem=classification&epochs=3&layers={layers}")
    finished = train_to_the_end(page, 90)
    epochs = kept(page, finished["id"], 3)
    assert epochs == [0, 1, 2, 3]  # a job alone: every epoch so early
    wait_until(lambda: bar(page)["max"] == 3, 10, "the kept epochs listed")
    page.focus("#timeline-range")
    page.keyboard.press("Home")
    wait_until(lambda: bar(page)["epoch"] == "0", 5, "epoch 0")
    # The picture is the images' view of that epoch: its predictions are drawn again.
    page.wait_for_timeout(500)
    page.locator("#images-view").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "scrub-digits-1280x800.png"))
    page.keyboard.press("Escape")
    wait_until(lambda: bar(page)["scrubbing"] == "false", 5, "live again")
    assert not page.errors.real(), page.errors


def test_the_scrubber_in_chinese_passes_axe(playground):
    """The scrubber's words in Chinese, and axe-core finds nothing serious while scrubbing."""
    from tests.e2e.test_access import serious_violations

    page = playground("dataset=circle&epochs=10&lang=zh")
    finished = train_to_the_end(page, 60)
    epochs = kept(page, finished["id"], 10)
    wait_until(lambda: bar(page)["max"] == len(epochs) - 1, 10, "the kept epochs listed")
    assert bar(page)["readout"] == "实时"
    assert page.inner_text("#timeline .timeline-replay") == "并排重放"
    page.focus("#timeline-range")
    page.keyboard.press("Home")
    wait_until(lambda: bar(page)["readout"] == "第 0 轮", 5, "epoch 0 in Chinese")
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    wait_until(lambda: bar(page)["scrubbing"] == "false", 5, "live again")
    assert not page.errors.real(), page.errors
