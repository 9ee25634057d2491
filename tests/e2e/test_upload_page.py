"""CSV upload in the page (issue 11, item 7), in headless Chromium against a real server: a
file picked or dropped is previewed (first rows, columns, the target column, the task) before
anything is sent; the server's errors show next to the file; an uploaded set is picked with
its starter, trains, and its owner can delete it."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.shown import shown
from tests.e2e.test_page import epoch, wait_until

pytestmark = pytest.mark.browser


def csv_text(rows: int = 60, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = ["height,weight,label"]
    for _ in range(rows):
        h, w = rng.normal(size=2)
        lines.append(f"{h:.3f},{w:.3f},{'big' if h + w > 0 else 'small'}")
    return "\n".join(lines) + "\n"


def test_pick_preview_upload_train_and_delete(server, playground, tmp_path: Path):
    name = f"people-{uuid.uuid4().hex[:6]}"
    path = tmp_path / f"{name}.csv"
    path.write_text(csv_text())
    page = playground()
    page.click("#upload-box summary")
    page.set_input_files("#upload-file", str(path))
    page.wait_for_selector("#upload-table")
    assert page.inner_text(".upload-summary") == f"{name}.csv: 60 rows, 3 columns"
    head = page.eval_on_selector_all("#upload-table th", "ts => ts.map(t => t.textContent)")
    assert head == ["height", "weight", "label"]
    assert page.locator("#upload-table tbody tr").count() == 5
    assert page.input_value("#upload-target") == "label"
    assert page.inner_text("#upload-table th.target") == "label"
    assert page.inner_text("#upload-task-guess") == "Looks like classification."
    page.select_option("#upload-target", "weight")
    assert page.inner_text("#upload-table th.target") == "weight"
    assert page.inner_text("#upload-task-guess") == "Looks like regression."
    page.select_option("#upload-target", "label")
    assert httpx.get(f"{server.url}/api/datasets/{name}", timeout=10).status_code == 404

    page.click("#upload-send")
    page.wait_for_selector("#upload-done", timeout=20_000)
    assert name in page.inner_text("#upload-done")
    state = shown(page)
    assert state["dataset"] == name and state["problem"] == "classification"
    assert httpx.get(f"{server.url}/api/datasets/{name}", timeout=10).status_code == 200
    page.click("#step")
    wait_until(lambda: epoch(page) == 1, 20, "an epoch on the upload")

    assert page.is_visible("#delete-upload")
    page.once("dialog", lambda d: d.accept())
    page.click("#delete-upload")
    wait_until(lambda: httpx.get(f"{server.url}/api/datasets/{name}", timeout=10).status_code
               == 404, 10, "the upload deleted")
    wait_until(lambda: shown(page)["dataset"] != name, 5, "another set picked")
    assert page.is_hidden("#delete-upload")
    assert page.errors.real() == []


def test_a_dropped_file_is_previewed_and_the_servers_error_shows_beside_it(server, playground):
    page = playground()
    page.click("#upload-box summary")
    short = "a,b,y\n1,2,0\n2,3,1\n3,4,0\n"
    page.evaluate("""(text) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], 'short.csv', {type: 'text/csv'}));
        document.getElementById('upload-drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""",
                  short)
    page.wait_for_selector("#upload-table")
    assert page.inner_text(".upload-summary") == "short.csv: 3 rows, 3 columns"
    before = shown(page)
    page.click("#upload-send")
    error = page.locator("[data-error-for='upload.file']")
    wait_until(lambda: "The file has 3 data rows; at least 10 are needed" in error.inner_text(),
               10, "the API's message beside the file")
    assert shown(page) == before

    # Not a table at all: said at once, nothing sent.
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['just one line'], 'one.csv', {type: 'text/csv'}));
        document.getElementById('upload-drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); }""")
    wait_until(lambda: "one.csv is not a table" in error.inner_text(), 5, "the table error")
    assert page.locator("#upload-table").count() == 0
