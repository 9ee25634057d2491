"""What a newcomer meets in the page (issue 11), in headless Chromium against a real server:
runs that survive a reload, Reset drawing new weights, share links meaning their whole setup,
Step by epoch or by batch, the import refusing junk, starters, the control limits and the
smaller fixes. Class-mode students are in test_class_student.py, CSV upload in
test_upload_page.py.
"""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from tests.conftest import start_server, stop_server
from tests.e2e.conftest import watch
from tests.e2e.shown import more_settings, shown, shown_layers
from tests.e2e.test_compare_export_import import TF_DEFAULT, train_to_the_end
from tests.e2e.test_page import chart_length, epoch, get_job, job, output_pixels, wait_until

pytestmark = pytest.mark.browser

# The page's store, read where no control shows the value: a refused entry stays in its box
# (with the error beside it) while the setting keeps its last good value.
KEPT = "() => window.__playground.store.state"


def status_code(server, j: dict) -> int:
    return httpx.get(f"{server.url}/api/jobs/{j['id']}", timeout=10,
                     headers={"Authorization": f"Bearer {j['token']}"}).status_code


def history(server, j: dict) -> list[dict]:
    r = httpx.get(f"{server.url}/api/jobs/{j['id']}/metrics", timeout=10,
                  headers={"Authorization": f"Bearer {j['token']}"})
    r.raise_for_status()
    return r.json()["history"]


def hash_of(page) -> str:
    return page.evaluate("() => location.hash")


# ---- item 1: reload and close keep the runs ----------------------------------------------------

def test_reload_keeps_the_run_its_curves_and_the_runs_list(server, playground):
    page = playground("dataset=xor&epochs=6")
    first = train_to_the_end(page)
    page.select_option("#activation", "relu")  # a new network: the first run is kept
    more_settings(page)
    page.fill("#epochs", "")  # the second one trains until paused
    page.press("#epochs", "Enter")
    page.click("#play")
    wait_until(lambda: epoch(page) >= 2, 30, "two epochs of the second run")
    page.click("#play")
    wait_until(lambda: job(page)["status"] == "paused", 10, "paused")
    second = job(page)
    points = chart_length(page)
    assert points >= 2

    page.reload()
    page.wait_for_selector("body.ready", timeout=20_000)
    wait_until(lambda: (job(page) or {}).get("id") == second["id"], 10, "the run re-attached")
    # The stream's hello carries at most hello_max_points (1,000) points, evenly spread: a
    # run of thousands of epochs (a family trains the small xor net that fast) comes back as
    # its curve at that resolution (787 points for 2,358 epochs once; it varies).
    wait_until(lambda: chart_length(page) >= min(points, 500), 15, "its curves drawn again")
    assert shown(page)["activation"] == "relu"
    rows = page.eval_on_selector_all("#runs tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert rows == [first["id"], second["id"]]
    assert page.locator(f"#runs tr[data-id='{second['id']}']").get_attribute("class") == "current"
    # Play goes on with the same job, from where it was.
    page.click("#play")
    wait_until(lambda: epoch(page) > points, 30, "training on after the reload")
    assert job(page)["id"] == second["id"]
    page.click("#play")

    # Closing the tab deletes nothing.
    page.close()
    assert status_code(server, first) == 200
    assert status_code(server, second) == 200


def test_an_old_run_opens_again_and_delete_asks_first(server, playground):
    page = playground("dataset=xor&epochs=3")
    first = train_to_the_end(page)
    page.click("#regenerate")
    second = train_to_the_end(page)
    assert first["id"] != second["id"]
    open_button = f"#runs tr[data-id='{first['id']}'] button.open-run"
    wait_until(lambda: page.locator(open_button).count() == 1, 5, "an Open button on the old run")
    page.click(open_button)
    wait_until(lambda: (job(page) or {}).get("id") == first["id"], 10, "the old run opened")
    wait_until(lambda: chart_length(page) == 3, 10, "its three epochs")

    answers = []

    def dismiss(dialog):
        answers.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click(f"#runs tr[data-id='{second['id']}'] button.delete-run")
    assert answers and "Delete the run" in answers[0]
    assert status_code(server, second) == 200
    page.once("dialog", lambda d: d.accept())
    page.click(f"#runs tr[data-id='{second['id']}'] button.delete-run")
    wait_until(lambda: status_code(server, second) == 404, 10, "the run deleted")
    wait_until(lambda: page.locator(f"#runs tr[data-id='{second['id']}']").count() == 0, 5,
               "its row gone")
    page.once("dialog", lambda d: d.accept())
    page.click(f"#runs tr[data-id='{first['id']}'] button.delete-run")
    wait_until(lambda: job(page) is None, 5, "the current run deleted")
    assert status_code(server, first) == 404
    assert page.errors.real() == []


# ---- item 2: Reset draws new weights; the seed is shown, typed and shared ------------------------

def first_weights(server, spec: dict) -> np.ndarray:
    """layer0.weight of a new, untrained job with this spec, from its first snapshot."""
    spec = {**spec, "start": False}
    r = httpx.post(f"{server.url}/api/jobs", json=spec, timeout=20)
    assert r.status_code == 201, r.text
    created = r.json()
    try:
        url = f"{server.ws_url}/api/jobs/{created['id']}/stream?token={created['token']}"
        with connect(url, open_timeout=10, max_size=None) as ws:
            while True:
                message = ws.recv(timeout=15)
                if isinstance(message, bytes):
                    n = struct.unpack("<I", message[:4])[0]
                    header = json.loads(message[4:4 + n])
                    arrays = {a["name"]: a for a in header["arrays"]}
                    a = arrays["layer0.weight"]
                    start = 4 + n + a["offset"]
                    return np.frombuffer(message[start:start + a["nbytes"]], np.float32).copy()
    finally:
        httpx.delete(f"{server.url}/api/jobs/{created['id']}", timeout=10,
                     headers={"Authorization": f"Bearer {created['token']}"})


def test_reset_draws_a_new_seed_shown_on_the_page_and_new_weights(server, playground):
    page = playground()
    assert shown(page)["seed"] == 0
    seeds, weights = [], []
    for _ in range(2):
        page.click("#reset")
        seed = shown(page)["seed"]
        assert page.input_value("#seed") == str(seed)
        assert f"seed={seed}" in hash_of(page)
        seeds.append(seed)
        weights.append(first_weights(server, page.evaluate(
            "() => window.__playground.store.toSpec()")))
    assert seeds[0] != seeds[1] and 0 not in seeds
    assert weights[0].shape == weights[1].shape == (8,)
    assert not np.allclose(weights[0], weights[1])

    # Regenerate draws a new data seed, also shown and shared.
    before = shown(page)["data_seed"]
    page.click("#regenerate")
    after = shown(page)["data_seed"]
    assert after != before
    assert page.input_value("#data_seed") == str(after)
    assert f"data_seed={after}" in hash_of(page)

    # The seed can be typed.
    page.fill("#seed", "4242")
    page.press("#seed", "Enter")
    assert shown(page)["seed"] == 4242
    assert page.errors.real() == []


def test_a_share_link_with_a_seed_reproduces_the_run_exactly(browser, server, playground):
    link = "dataset=xor&epochs=4&seed=987654&data_seed=31337"
    runs = []
    for _ in range(2):
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = playground(link, ctx=ctx)
            assert page.input_value("#seed") == "987654"
            runs.append(train_to_the_end(page))
        finally:
            ctx.close()
    a, b = (history(server, r) for r in runs)
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert x["train_loss"] == y["train_loss"] and x["test_loss"] == y["test_loss"]
    spec = get_job(server, runs[0])["spec"]
    assert spec["training"]["seed"] == 987654 and spec["dataset"]["seed"] == 31337


# ---- item 3: a link opened in an open tab means its whole setup ---------------------------------

def test_a_link_opened_in_an_open_tab_resets_what_it_omits(playground):
    page = playground("dataset=xor&learning_rate=0.3&seed=7&regularization=l2")
    page.check("#show_test")
    page.evaluate("() => { location.hash = 'dataset=gauss'; }")
    wait_until(lambda: shown(page)["dataset"] == "gauss", 5, "the link applied")
    state = shown(page)
    assert state["learning_rate"] == 0.03
    assert state["seed"] == 0
    assert state["regularization"] == "none"
    assert state["show_test"] is False
    assert page.input_value("#learning_rate") == "0.03"
    assert hash_of(page) == "#dataset=gauss"


def test_a_hand_written_activation_link_sets_the_layers_too(playground):
    page = playground("activation=relu")
    state = shown(page)
    assert [la["activation"] for la in state["layers"]] == ["relu", "relu"]
    spec = page.evaluate("() => window.__playground.store.toSpec()")
    assert {la["activation"] for la in spec["model"]["layers"]} == {"relu"}


# ---- item 6 and the starters: circle first; a data set brings its starter -----------------------

def test_the_default_setup_is_circle_with_its_starter(server, playground):
    page = playground()
    state = shown(page)
    layers = shown_layers(page, "units", "activation")
    assert state["dataset"] == "circle"
    assert state["features"] == ["x1", "x2"]
    assert layers == [{"type": "dense", "units": 4, "activation": "tanh"},
                      {"type": "dense", "units": 2, "activation": "tanh"}]
    assert (state["optimizer"], state["learning_rate"], state["batch_size"]) == ("sgd", 0.03, 10)
    assert page.get_attribute(".thumb[data-name='circle']", "aria-checked") == "true"
    catalog = httpx.get(f"{server.url}/api/catalog", timeout=10).json()
    circle = next(d for d in catalog["datasets"] if d["name"] == "circle")
    if circle.get("starter"):
        assert circle["starter"]["model"]["layers"] == layers


def test_picking_a_data_set_applies_its_starter(server, playground):
    catalog = httpx.get(f"{server.url}/api/catalog", timeout=10).json()
    starters = {d["name"]: d.get("starter") for d in catalog["datasets"]}
    if not starters.get("spiral") or not starters.get("iris"):
        pytest.skip("this server's catalogue has no starters yet")
    page = playground()
    page.click(".thumb[data-name='spiral']")
    state = shown(page)
    spiral = starters["spiral"]
    assert state["features"] == spiral["features"]
    units = [la["units"] for la in spiral["model"]["layers"]]
    assert [la["units"] for la in state["layers"]] == units
    assert state["optimizer"] == spiral["training"]["optimizer"]["name"]
    assert state["learning_rate"] == spiral["training"]["optimizer"]["learning_rate"]
    assert state["batch_size"] == spiral["training"]["batch_size"]
    assert state["epochs"] == spiral["training"]["epochs"]
    page.select_option("#problem", "classification")
    page.click(".thumb[data-name='iris']")
    state = shown(page)
    iris = starters["iris"]
    assert state["optimizer"] == iris["training"]["optimizer"]["name"]
    assert [(la["type"], la.get("units")) for la in state["layers"]] == [
        (la["type"], la.get("units")) for la in iris["model"]["layers"]]
    assert page.errors.real() == []


# ---- item 9: Step is one epoch; "one batch" moves the views each click -------------------------

def test_step_advances_one_epoch_and_one_batch_on_request(server, playground):
    page = playground("dataset=xor")
    page.click("#step")
    wait_until(lambda: epoch(page) == 1, 15, "one epoch after one step")
    wait_until(lambda: chart_length(page) == 1, 10, "one point on the curves")
    j = job(page)
    per_epoch = get_job(server, j)["progress"]["step"]
    assert per_epoch == 25  # 250 training points, batch 10
    assert page.is_hidden("#batch-counter")

    page.check("#step-batch")
    before = output_pixels(page)
    for k in (1, 2, 3):
        page.click("#step")
        wait_until(lambda k=k: get_job(server, j)["progress"]["step"] == per_epoch + k, 10,
                   f"batch {k}")
        wait_until(lambda k=k: page.inner_text("#batch-counter")
                   == f"step {per_epoch + k} \u00b7 batch {k} of {per_epoch}", 10,
                   f"the counter at batch {k}")
    wait_until(lambda: output_pixels(page) != before, 10, "the boundary redrawn")
    assert epoch(page) == 1
    page.uncheck("#step-batch")
    page.click("#step")  # the rest of the epoch
    wait_until(lambda: epoch(page) == 2, 10, "epoch 2")
    assert get_job(server, j)["progress"]["step"] == 2 * per_epoch
    wait_until(lambda: page.is_hidden("#batch-counter"), 5, "the counter back to epochs")
    assert page.errors.real() == []


# ---- item 11: the import refuses junk and carries the page toggles ------------------------------

def test_import_refuses_text_that_is_not_a_link_and_keeps_the_setup(playground):
    page = playground("dataset=xor&learning_rate=0.1")
    before = shown(page)
    page.click("#import-open")
    page.fill("#import-url", "hello world")
    page.click("#import-go")
    wait_until(lambda: "not a TensorFlow Playground link" in
               page.inner_text("[data-error-for='import']"), 10, "the refusal")
    assert shown(page) == before
    assert page.is_hidden("#import-report")


def test_import_carries_show_test_data_and_discretize(playground):
    page = playground()
    link = TF_DEFAULT.replace("showTestData=false", "showTestData=true").replace(
        "discretize=false", "discretize=true")
    page.click("#import-open")
    page.fill("#import-url", link)
    page.click("#import-go")
    page.wait_for_selector("#import-report:not([hidden])", timeout=10_000)
    assert page.is_checked("#show_test") and page.is_checked("#discretize")
    report = page.inner_text("#import-report")
    assert "showTestData \u2192 Show test data: on" in report
    assert "discretize \u2192 Discretize output: on" in report
    page.click("#import-report-close")
    page.click("#import-open")
    page.fill("#import-url", TF_DEFAULT)
    page.click("#import-go")
    wait_until(lambda: not page.is_checked("#show_test"), 10, "show test data off again")
    assert not page.is_checked("#discretize")


# ---- item 12: the smaller ones ----------------------------------------------------------------

def test_the_input_card_counts_the_active_features(playground):
    page = playground("dataset=circle")
    assert "(2)" in page.inner_text("#layers .input-block")
    page.click("[aria-label='Input feature x1^2: off']")
    wait_until(lambda: "(3)" in page.inner_text("#layers .input-block"), 5, "Input (3)")


@pytest.mark.parametrize("control, text, message", [
    ("learning_rate", "100000", "The learning rate must be above 0 and at most 100."),
    ("regularization_rate", "-5", "The regularization rate must be from 0 to 10."),
    ("epochs", "-3", "Epochs must be from 1 to 100000."),
])
def test_out_of_range_values_stay_out_of_the_share_link(playground, control, text, message):
    page = playground("regularization=l2")
    before = page.evaluate(KEPT)[control]
    if not page.is_visible(f"#{control}"):
        more_settings(page)
    page.fill(f"#{control}", text)
    page.press(f"#{control}", "Enter")
    wait_until(lambda: page.inner_text(f"[data-error-for='{control}']") == message, 5,
               "the error beside the control")
    assert page.evaluate(KEPT)[control] == before
    assert f"{control}=" not in hash_of(page)


def test_a_learning_rate_that_is_not_a_number_says_so(playground):
    page = playground()
    page.focus("#learning_rate")
    page.keyboard.press("Control+A")
    page.keyboard.type("abc")
    page.evaluate("() => document.getElementById('learning_rate')"
                  ".dispatchEvent(new Event('change'))")
    wait_until(lambda: page.inner_text("[data-error-for='learning_rate']")
               == "The learning rate must be a number.", 5, "the number error")
    assert page.evaluate(KEPT)["learning_rate"] == 0.03


SHOWN_ERRORS = ("es => es.filter(e => e.textContent).map(e => [e.dataset.errorFor, "
                "e.textContent])")


def test_the_samples_error_shows_once(playground):
    page = playground("dataset=circle")
    # Too many samples for this server: both the preview and the model check refuse them.
    page.evaluate("() => { const e = document.getElementById('param-samples'); "
                  "e.value = '50000'; e.dispatchEvent(new Event('change')); }")
    wait_until(lambda: page.inner_text("[data-error-for='params.samples']") != "", 10,
               "the samples error")
    page.wait_for_timeout(1000)  # both answers are in
    shown = page.eval_on_selector_all("[data-error-for]", SHOWN_ERRORS)
    assert shown == [["params.samples",
                      "samples=50000 is above this server's limit of 20000; ask for fewer "
                      "samples."]]


def test_the_compare_dialog_shows_only_the_differences_by_default(server, playground):
    page = playground("dataset=circle&epochs=2")
    first = train_to_the_end(page)
    page.select_option("#activation", "relu")
    second = train_to_the_end(page)
    for j in (first, second):
        page.check(f"#runs tr[data-id='{j['id']}'] input[type=checkbox]")
    page.click("#compare-runs")
    page.wait_for_selector("#compare-view[data-pictures='drawn']", timeout=20_000)
    visible = page.eval_on_selector_all(".summary-table tbody tr",
                                        "rs => rs.filter(r => !r.hidden).map(r => r.dataset.field)")
    every = page.eval_on_selector_all(".summary-table tbody tr",
                                      "rs => rs.map(r => r.dataset.field)")
    assert "layers" in visible
    assert "dataset" not in visible and "dataset" in every
    assert all(page.locator(f".summary-table tr[data-field='{f}']").get_attribute("class")
               == "differs" for f in visible)
    page.uncheck("#compare-differences-only")
    assert page.eval_on_selector_all(".summary-table tbody tr",
                                     "rs => rs.filter(r => !r.hidden).length") == len(every)
    page.click("#compare-close")


def test_the_unreachable_message_reads_well_and_clears_when_the_server_is_back(browser, tmp_path):
    live = start_server(tmp_path / "data")
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        watch(page)
        page.goto(f"{live.url}/")
        page.wait_for_selector("body.ready", timeout=20_000)
        live.kill()
        page.fill("#learning_rate", "0.1")  # no job: the model check meets the closed port
        page.press("#learning_rate", "Enter")
        page.click("[aria-label='Input feature x1^2: off']")
        banner = page.locator("#connection")
        wait_until(lambda: banner.is_visible(), 15, "the banner")
        assert banner.inner_text() == ("The server cannot be reached. Is it running? "
                                       "Reconnecting\u2026")
        live = start_server(live.data_dir, port=live.port)
        wait_until(lambda: banner.is_hidden(), 30, "the banner cleared")
    finally:
        ctx.close()
        stop_server(live)


def test_join_and_teacher_pages_ask_for_no_missing_favicon(server, context):
    for path in ("/join", "/teacher"):
        page = context.new_page()
        missing: list[str] = []
        page.on("response", lambda r, seen=missing: seen.append(r.url) if r.status == 404 else None)
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert missing == [], (path, missing)
        assert page.locator("link[rel=icon]").count() == 1
        page.close()


# ---- the message table ---------------------------------------------------------------------------

def test_the_page_speaks_chinese_when_asked_and_the_tables_match(server, context):
    page = context.new_page()
    page.goto(f"{server.url}/?lang=zh")
    page.wait_for_selector("body.ready", timeout=20_000)
    assert page.evaluate("() => document.documentElement.lang") == "zh-Hans"
    assert page.inner_text("#runs").startswith("还没有运行记录")
    assert "lang=zh" in hash_of(page)
    keys = page.evaluate("""async () => {
        const en = (await import('/static/js/i18n/messages.en.js')).default;
        const zh = (await import('/static/js/i18n/messages.zh.js')).default;
        const i18n = await import('/static/js/i18n/index.js');
        const tables = {en: Object.keys(en).sort(), zh: Object.keys(zh).sort()};
        const plural = [i18n.t('class.students', {n: 1}), i18n.t('class.students', {n: 3})];
        delete i18n.TABLES.zh['runs.open'];  // a key the Chinese table lacks: English, logged
        plural.push(i18n.t('runs.open'));
        i18n.setLanguage('en');
        plural.push(i18n.t('class.students', {n: 1}), i18n.t('class.students', {n: 3}),
                    i18n.t('no.such.key'));
        return {...tables, plural}; }""")
    assert keys["en"] == keys["zh"]
    assert keys["plural"] == ["1 名学生", "3 名学生", "Open", "1 student", "3 students",
                              "no.such.key"]
    page.close()
