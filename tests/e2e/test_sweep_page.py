"""Sweeps on the page (issue 14): the sweep button beside the learning rate opens the dialog,
a 4-variant sweep trains with a live tile per variant, the tiles sort by a metric, the metric
chart draws, and a tile opens its variant as a run; two axes draw a heatmap (and the sweep is
shown again after a reload); a bad value shows the API's message beside its axis; pause,
resume, stop and delete act on the whole sweep.

A real server (tests/conftest.py) and the page in headless Chromium (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_page import job, wait_until

pytestmark = pytest.mark.browser

# A small circle set and one tanh layer of three: a few epochs take well under a second.
SMALL = ("dataset=circle&params=%7B%22samples%22%3A200%7D&layers="
         "%5B%7B%22type%22%3A%22dense%22%2C%22units%22%3A3%2C%22activation%22%3A%22tanh%22%7D%5D")

LR = "training.optimizer.learning_rate"
UNITS = "model.layers.0.units"

TILES = "() => [...document.querySelectorAll('.sweep-tile')].map((t) => ({job: t.dataset.job, " \
        "status: t.dataset.status, drawn: t.dataset.drawn === 'true', " \
        "label: t.querySelector('.tile-label').textContent, " \
        "info: t.querySelector('.tile-info').textContent}))"


def tiles(page) -> list[dict]:
    return page.evaluate(TILES)


def statuses(page) -> list[str]:
    return [t["status"] for t in tiles(page)]


def current_sweep(page) -> dict | None:
    return page.evaluate("() => { const s = window.__sweeps.current; "
                         "return s && {id: s.id, token: s.token}; }")


def get_sweep(server, sweep: dict) -> httpx.Response:
    return httpx.get(f"{server.url}/api/sweeps/{sweep['id']}",
                     headers={"Authorization": f"Bearer {sweep['token']}"}, timeout=10)


@pytest.fixture()
def sweeps_deleted(server):
    """Sweeps the test made (append {id, token}) are deleted afterwards, with their jobs."""
    made: list[dict] = []
    yield made
    for s in made:
        httpx.delete(f"{server.url}/api/sweeps/{s['id']}",
                     headers={"Authorization": f"Bearer {s['token']}"}, timeout=10)


def open_dialog(page, control: str) -> None:
    page.click(f".sweep-button[data-sweep-for='{control}']")
    page.wait_for_selector("#sweep-dialog[open]")


def start_sweep(page, made: list[dict]) -> dict:
    page.click("#sweep-start")
    page.wait_for_selector("#sweeps-panel:not([hidden]) .sweep-tile")
    sweep = current_sweep(page)
    made.append(sweep)
    assert page.is_hidden("#sweep-dialog")
    return sweep


def test_sweep_the_learning_rate_sort_chart_and_open_a_variant(server, playground, sweeps_deleted,
                                                               artifacts: Path):
    page = playground(SMALL)
    open_dialog(page, "learning_rate")
    # The axis is the control's place in the job spec.
    assert page.get_attribute(".sweep-axis", "data-path") == "training.optimizer.learning_rate"
    page.fill(".sweep-values", "0.003, 0.03, 0.3, 3")
    page.fill("#sweep-epochs", "8")
    assert page.inner_text("#sweep-count") == "4 variants"
    sweep = start_sweep(page, sweeps_deleted)

    wait_until(lambda: statuses(page) == ["completed"] * 4, 60, "4 completed tiles")
    wait_until(lambda: all(t["drawn"] for t in tiles(page)), 20, "every tile's boundary drawn")
    # The last epoch's metrics may come just after the status that says it completed.
    wait_until(lambda: all("epoch 8" in t["info"] for t in tiles(page)), 10, "epoch 8 shown")
    shown = tiles(page)
    assert [t["label"] for t in shown] == [
        "Learning rate 0.003", "Learning rate 0.03", "Learning rate 0.3", "Learning rate 3"]
    # The tiles are the sweep's jobs, with the values the server gave each.
    body = get_sweep(server, sweep).json()
    assert [v["job"] for v in body["variants"]] == [t["job"] for t in shown]
    assert [v["values"][LR] for v in body["variants"]] == [0.003, 0.03, 0.3, 3]
    assert all(v["epoch"] == 8 and v["status"] == "completed" for v in body["variants"])
    # The loss curve and the boundary of each tile are drawn (not blank canvases).
    blank = page.evaluate("() => { const c = document.createElement('canvas'); c.width = 112; "
                          "c.height = 40; return c.toDataURL(); }")
    losses = page.eval_on_selector_all(".tile-loss", "xs => xs.map((c) => c.toDataURL())")
    assert len(losses) == 4 and blank not in losses

    # Sort by the test loss: lowest first, as the server has them.
    page.select_option("#sweep-sort", "test_loss")
    by_loss = sorted(body["variants"], key=lambda v: v["metrics"]["test_loss"])
    wait_until(lambda: [t["job"] for t in tiles(page)] == [v["job"] for v in by_loss], 5, "sorted")
    shown_losses = [float(re.search(r"test loss ([\d.]+)", t["info"]).group(1))
                    for t in tiles(page)]
    assert shown_losses == sorted(shown_losses)
    page.select_option("#sweep-sort", "test_accuracy")
    by_acc = sorted(body["variants"], key=lambda v: -v["metrics"]["test_accuracy"])
    wait_until(lambda: tiles(page)[0]["job"] == by_acc[0]["job"], 5, "the most accurate first")

    # The chart of the final metric against the swept value: a line through 4 points.
    assert page.get_attribute("#sweep-chart", "data-chart") == "line"
    assert page.get_attribute("#sweep-chart", "data-drawn") == "4"
    assert "test accuracy" in page.inner_text(".sweep-chart figcaption")
    page.locator("#sweeps-panel").screenshot(path=str(artifacts / "sweep-panel.png"))

    # A tile opens its variant as the page's run: its setup, its stream, the runs list.
    first = tiles(page)[0]
    page.click(f".sweep-tile[data-job='{first['job']}'] .tile-open")
    wait_until(lambda: (job(page) or {}).get("id") == first["job"], 10, "the variant opened")
    lr = next(v for v in body["variants"] if v["job"] == first["job"])["values"][LR]
    assert float(page.input_value("#learning_rate")) == lr
    wait_until(lambda: page.inner_text("#epoch") == "000,008", 10, "the variant's epoch shown")
    assert page.evaluate("() => window.__playground.page.runs.map((r) => r.id)") == [first["job"]]
    assert page.errors.real() == []


def test_two_axes_draw_a_heatmap(server, playground, sweeps_deleted):
    page = playground(SMALL)
    open_dialog(page, "learning_rate")
    page.fill(".sweep-values", "0.03, 0.3")
    page.select_option("#sweep-add-axis", "model.layers.0.units")
    page.fill(".sweep-axis:nth-of-type(2) .sweep-values", "2, 6")
    page.fill("#sweep-epochs", "3")
    assert page.inner_text("#sweep-count") == "4 variants"
    sweep = start_sweep(page, sweeps_deleted)
    wait_until(lambda: statuses(page) == ["completed"] * 4, 60, "4 completed tiles")
    body = get_sweep(server, sweep).json()
    assert [a["path"] for a in body["axes"]] == [LR, UNITS]
    pairs = sorted((v["values"][LR], v["values"][UNITS]) for v in body["variants"])
    assert pairs == [(0.03, 2), (0.03, 6), (0.3, 2), (0.3, 6)]
    wait_until(lambda: page.get_attribute("#sweep-chart", "data-drawn") == "4", 10, "4 cells")
    assert page.get_attribute("#sweep-chart", "data-chart") == "heatmap"
    assert "Learning rate 0.3 \u00b7 layer 1 units 6" in [t["label"] for t in tiles(page)]
    # The page shows its last sweep again after a reload.
    page.reload()
    page.wait_for_selector("#sweeps-panel:not([hidden]) .sweep-tile")
    wait_until(lambda: statuses(page) == ["completed"] * 4, 20, "the sweep shown again")
    assert current_sweep(page) == sweep
    assert page.errors.real() == []


def test_a_bad_value_shows_the_api_message_beside_its_axis(server, playground):
    page = playground(SMALL)
    open_dialog(page, "learning_rate")
    page.fill(".sweep-values", "0.01, -1")
    page.click("#sweep-start")
    error = ".sweep-axis .axis-error"
    wait_until(lambda: page.inner_text(error), 10, "the axis error")
    assert "value -1" in page.inner_text(error) and "greater than 0" in page.inner_text(error)
    assert page.is_visible("#sweep-dialog") and page.is_hidden("#sweeps-panel")
    # A value that is not a number is caught before it is sent.
    page.fill(".sweep-values", "0.01, fast")
    assert page.inner_text(error) == "Every value must be a number."
    assert page.is_disabled("#sweep-start")
    assert current_sweep(page) is None
    assert page.errors.real() == []


def test_pause_resume_stop_and_delete_the_whole_sweep(server, playground, sweeps_deleted):
    page = playground(SMALL)
    open_dialog(page, "seed")
    assert page.get_attribute(".sweep-axis", "data-path") == "training.seed"
    page.fill(".sweep-values", "1, 2")
    page.fill("#sweep-epochs", "100000")
    sweep = start_sweep(page, sweeps_deleted)
    wait_until(lambda: all("epoch 0" not in t["info"] for t in tiles(page)), 30, "both training")
    page.click("#sweep-pause")
    wait_until(lambda: statuses(page) == ["paused"] * 2, 10, "both paused")
    # The buttons follow the sweep's own status, which the page may poll after the tiles'.
    wait_until(lambda: page.is_visible("#sweep-resume"), 10, "the resume button")
    page.click("#sweep-resume")
    wait_until(lambda: statuses(page) == ["running"] * 2, 10, "both running")
    page.click("#sweep-stop")
    wait_until(lambda: statuses(page) == ["stopped"] * 2, 10, "both stopped")
    page.once("dialog", lambda d: d.accept())
    page.click("#sweep-delete")
    page.wait_for_selector("#sweeps-panel", state="hidden")
    assert get_sweep(server, sweep).status_code == 404
    assert page.errors.real() == []
