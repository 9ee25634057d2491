"""The training settings a course teaches, on the page: the initializer (zeros shows the symmetry
problem), the loss (a loss that does not fit the task is refused beside its control), validation
data with early stopping (its curve and the early stop), momentum, and all of them in the share
link and in a TF Playground import.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.shown import more_settings, shown
from tests.e2e.test_compare_export_import import TF_DEFAULT, import_link
from tests.e2e.test_page import epoch, get_job, job, wait_until

pytestmark = pytest.mark.browser

# Two tanh layers of three neurons on a small circle set: quick to train.
SMALL = ("dataset=circle&params=%7B%22samples%22%3A200%7D&layers="
         "%5B%7B%22type%22%3A%22dense%22%2C%22units%22%3A3%2C%22activation%22%3A%22tanh%22%7D%2C"
         "%7B%22type%22%3A%22dense%22%2C%22units%22%3A3%2C%22activation%22%3A%22tanh%22%7D%5D")


def neuron_pixels(page, column: int) -> list[str]:
    """The heatmaps of one column of neurons (0: the inputs), as data URLs."""
    return page.evaluate(
        "(c) => [...document.querySelectorAll('.neuron-column')[c].querySelectorAll('canvas')]"
        ".map((x) => x.toDataURL())", column)


def test_zeros_init_makes_every_hidden_neuron_the_same(server, playground):
    page = playground(SMALL)
    options = page.eval_on_selector_all("#init option", "xs => xs.map((o) => [o.value, o.title])")
    assert ("zeros" in dict(options)) and all(title for _, title in options)
    assert page.is_hidden("#init-std-field")
    page.select_option("#init", "normal")
    assert page.is_visible("#init-std-field")
    page.select_option("#init", "zeros")
    assert page.is_hidden("#init-std-field")

    page.click("#play")
    wait_until(lambda: epoch(page) >= 3, 30, "epoch 3")
    page.click("#play")  # pause
    j = job(page)
    spec = get_job(server, j)["spec"]
    assert spec["model"]["init"] == "zeros"
    wait_until(lambda: len(set(neuron_pixels(page, 1))) == 1, 10, "identical neurons")
    for column in (1, 2):
        heatmaps = neuron_pixels(page, column)
        assert len(heatmaps) == 3
        assert len(set(heatmaps)) == 1, f"the neurons of hidden layer {column} differ"
    assert page.errors.real() == []


def test_a_loss_that_does_not_fit_the_task_is_refused_beside_it(server, playground):
    page = playground("dataset=plane&problem=regression")
    options = page.eval_on_selector_all("#loss option", "xs => xs.map((o) => o.value)")
    assert options[0] == "auto" and "cross_entropy" in options
    assert "matches the task" in page.inner_text("#loss option[value=auto]")
    page.select_option("#loss", "cross_entropy")
    slot = "[data-error-for='loss']"
    wait_until(lambda: "regression" in page.inner_text(slot), 10, "the loss error")
    page.click("#play")
    wait_until(lambda: "regression" in page.inner_text(slot), 10, "the loss error after play")
    assert job(page) is None
    page.select_option("#loss", "huber")
    wait_until(lambda: page.inner_text(slot) == "", 10, "the error cleared")
    assert page.errors.real() == []


def test_validation_data_and_early_stopping(server, playground, artifacts: Path):
    # A learning rate far too high makes the loss jump about: early stopping ends it soon.
    page = playground(SMALL + "&learning_rate=3&epochs=300&batch_size=5")
    assert "watches the test loss" in page.get_attribute("#early_stopping", "title")
    page.fill("#validation_fraction", "0.2")
    page.dispatch_event("#validation_fraction", "change")
    assert "20%" in page.inner_text("#validation_fraction_value")
    assert "validation loss" in page.get_attribute("#early_stopping", "title")
    page.fill("#early_stopping", "3")
    page.dispatch_event("#early_stopping", "change")
    assert shown(page)["early_stopping"] == 3
    # Training and validation always leave test data.
    page.fill("#train_fraction", "0.9")
    page.dispatch_event("#train_fraction", "change")
    s = shown(page)
    assert s["train_fraction"] + s["validation_fraction"] < 1
    page.fill("#train_fraction", "0.5")
    page.dispatch_event("#train_fraction", "change")
    page.fill("#validation_fraction", "0.2")
    page.dispatch_event("#validation_fraction", "change")

    page.click("#play")
    wait_until(lambda: job(page) and job(page)["status"] == "completed", 40, "the job to end")
    spec = get_job(server, job(page))["spec"]
    assert spec["dataset"]["validation_fraction"] == 0.2
    assert spec["training"]["early_stopping"]["patience"] == 3
    assert spec["training"]["early_stopping"]["restore_best"] is True
    curve = page.evaluate("() => { const c = window.__playground.page.charts.loss; "
                          "const k = c.series.findIndex((s) => s.field === 'validation_loss'); "
                          "return k < 0 ? null : c.data[k + 1]; }")
    assert curve and any(v is not None for v in curve), "no validation curve"
    assert epoch(page) < 300
    wait_until(lambda: page.is_visible("#early-stop"), 10, "the early-stop note")
    assert "stopped early" in page.inner_text("#early-stop")
    assert "stopped early" in page.inner_text("#job-status")
    j = job(page)
    history = httpx.get(f"{server.url}/api/jobs/{j['id']}/metrics",
                        headers={"Authorization": f"Bearer {j['token']}"}, timeout=10).json()
    best = history["history"][-1]["best_epoch"]
    wait_until(lambda: f"weights of epoch {best} put back" in page.inner_text("#early-stop"),
               5, "the best epoch")
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    page.wait_for_timeout(200)
    page.screenshot(path=str(artifacts / "page-settings.png"))
    assert page.errors.real() == []


def test_momentum_shows_for_its_optimizers_and_patches_live(server, playground):
    page = playground(SMALL)
    more_settings(page)
    assert page.is_hidden("#momentum-field")
    page.select_option("#optimizer", "momentum")
    assert page.is_visible("#momentum-field")
    assert page.input_value("#momentum") == "0.9"
    page.click("#play")
    wait_until(lambda: epoch(page) >= 1, 30, "epoch 1")
    first = job(page)["id"]
    more_settings(page)  # pressing play closed it
    page.fill("#momentum", "0.5")
    page.dispatch_event("#momentum", "change")
    def momentum() -> float:
        return get_job(server, job(page))["spec"]["training"]["optimizer"]["momentum"]

    wait_until(lambda: momentum() == 0.5, 10, "the patched momentum")
    assert job(page)["id"] == first  # patched, not restarted
    page.select_option("#optimizer", "adam")
    assert page.is_hidden("#momentum-field")
    assert page.errors.real() == []


def test_the_share_link_and_a_tf_import_carry_the_new_fields(server, playground):
    page = playground(SMALL)
    more_settings(page)
    page.select_option("#init", "normal")
    page.fill("#init_std", "0.5")
    page.dispatch_event("#init_std", "change")
    page.select_option("#loss", "mse")
    page.select_option("#optimizer", "nesterov")
    page.fill("#momentum", "0.7")
    page.dispatch_event("#momentum", "change")
    page.fill("#validation_fraction", "0.3")
    page.dispatch_event("#validation_fraction", "change")
    page.fill("#early_stopping", "5")
    page.dispatch_event("#early_stopping", "change")
    link = page.evaluate("() => location.hash").lstrip("#")
    spec = page.evaluate("() => window.__playground.store.toSpec()")
    assert spec["model"]["init"] == "normal" and spec["model"]["init_std"] == 0.5
    assert spec["training"]["loss"] == "mse"
    assert spec["training"]["optimizer"]["momentum"] == 0.7
    assert spec["training"]["early_stopping"] == {"patience": 5, "restore_best": True}
    assert spec["dataset"]["validation_fraction"] == 0.3

    again = playground(link)
    more_settings(again)
    s = shown(again)
    assert (s["init"], s["init_std"], s["loss"], s["momentum"]) == ("normal", 0.5, "mse", 0.7)
    assert (s["validation_fraction"], s["early_stopping"]) == (0.3, 5)
    assert again.input_value("#init") == "normal" and again.input_value("#loss") == "mse"
    assert again.input_value("#early_stopping") == "5"
    assert again.is_visible("#momentum-field") and again.is_visible("#init-std-field")

    import_link(again, TF_DEFAULT.replace("initZero=false", "initZero=true"))
    again.wait_for_selector("#import-report:not([hidden])", timeout=10_000)
    wait_until(lambda: again.input_value("#init") == "zeros", 5, "init zeros")
    assert shown(again)["validation_fraction"] == 0
    assert page.errors.real() == [] and again.errors.real() == []
