"""POST /api/import/tfplayground refuses a text that is not a TF Playground link (issue 11,
item 11): "hello world" used to come back as circle defaults with a success answer."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api import imports
from server.spec.tfplayground import TFPlaygroundError, import_tfplayground


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    app.include_router(imports.router, prefix="/api")
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("text, says", [
    ("hello world", "'hello world' names none of its settings"),
    ("https://example.com/page", "'https://example.com/page' is another site's address"),
    ("https://example.com/#foo=1", "is another site's address"),
    ("   ", "the text is empty"),
    ("frobnicate=1&wibble=2", "names none of its settings"),
])
def test_junk_is_refused_with_a_422_that_says_what_to_paste(client, text, says):
    r = client.post("/api/import/tfplayground", json={"url": text})
    assert r.status_code == 422, r.text
    [detail] = r.json()["detail"]
    assert detail["loc"] == ["body", "url"]
    assert detail["msg"].startswith("This is not a TensorFlow Playground link: ")
    assert says in detail["msg"]
    assert "https://playground.tensorflow.org/#activation=tanh" in detail["msg"]


@pytest.mark.parametrize("text", [
    "https://playground.tensorflow.org/",
    "playground.tensorflow.org",
    "https://playground.tensorflow.org/#activation=relu",
    "#activation=relu&networkShape=3",
    "learningRate=0.1",
    "x_hide=true",
])
def test_links_and_hashes_that_name_a_setting_still_import(text):
    result = import_tfplayground(text)
    assert result.spec["dataset"]["name"] == "circle"


def test_the_refusal_is_a_tfplayground_error():
    with pytest.raises(TFPlaygroundError, match="not a TensorFlow Playground link"):
        import_tfplayground("hello world")
