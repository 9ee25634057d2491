"""TF Playground links -> job specs: real links mapped to whole expected specs, fields that
cannot be mapped reported with a reason, UI-only fields reported as ignored, and the route."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.api import imports
from server.spec.job import JobSpec
from server.spec.tfplayground import TFPlaygroundError, import_tfplayground, parse_hash

SITE = "https://playground.tensorflow.org/"
DEFAULT_HASH = (
    "#activation=tanh&batchSize=10&dataset=circle&regDataset=reg-plane&learningRate=0.03"
    "&regularizationRate=0&noise=0&networkShape=4,2&seed=0.12345&showTestData=false"
    "&discretize=false&percTrainData=50&x=true&y=true&xTimesY=false&xSquared=false"
    "&ySquared=false&cosX=false&sinX=false&cosY=false&sinY=false&collectStats=false"
    "&problem=classification&initZero=false&hideText=false"
)
SPIRAL_ALL_FEATURES = (
    "#activation=tanh&batchSize=10&dataset=spiral&regDataset=reg-plane&learningRate=0.03"
    "&regularizationRate=0&noise=20&networkShape=8,8,5&seed=0.41318&showTestData=false"
    "&discretize=false&percTrainData=50&x=true&y=true&xTimesY=true&xSquared=true"
    "&ySquared=true&cosX=true&sinX=true&cosY=true&sinY=true&collectStats=false"
    "&problem=classification&initZero=false&hideText=false"
)
REGRESSION_L1 = (
    "#activation=linear&regularization=L1&batchSize=20&dataset=circle&regDataset=reg-gauss"
    "&learningRate=0.01&regularizationRate=0.003&noise=25&networkShape=3&seed=0.77777"
    "&showTestData=true&discretize=false&percTrainData=70&x=true&y=true&xTimesY=false"
    "&xSquared=false&ySquared=false&cosX=false&sinX=false&cosY=false&sinY=false"
    "&collectStats=false&problem=regression&initZero=false&hideText=false"
)
SIX_LAYER_RELU = (
    "#activation=relu&regularization=L2&batchSize=30&dataset=xor&regDataset=reg-plane"
    "&learningRate=0.1&regularizationRate=0.001&noise=10&networkShape=8,8,8,8,8,8"
    "&seed=0.5&showTestData=false&discretize=true&percTrainData=80&x=true&y=true"
    "&xTimesY=true&xSquared=false&ySquared=false&cosX=false&sinX=false&cosY=false"
    "&sinY=false&collectStats=false&problem=classification&initZero=false&hideText=false"
)


def job(name, dataset, noise, samples, features, train_fraction, seed, units, activation,
        lr, batch_size, regularization=("none", 0.0), init="xavier_uniform"):
    return {
        "name": name,
        "dataset": {"name": dataset, "params": {"noise": noise, "samples": samples},
                    "features": features, "train_fraction": train_fraction,
                    "validation_fraction": 0.0, "seed": seed},
        "model": {"layers": [{"type": "dense", "units": u, "activation": activation}
                             for u in units],
                  "output": "auto", "init": init},
        "training": {"loss": "auto", "optimizer": {"name": "sgd", "learning_rate": lr},
                     "batch_size": batch_size, "epochs": 500,
                     "regularization": {"kind": regularization[0], "rate": regularization[1]},
                     "schedule": {"name": "constant"}, "early_stopping": None, "seed": seed},
        "start": True,
    }


UI = {"showTestData", "discretize", "collectStats", "hideText"}

CASES = [
    pytest.param(
        SITE + DEFAULT_HASH,
        job("TF Playground: circle, 4-2 tanh", "circle", 0.0, 500, ["x1", "x2"], 0.5, 12345,
            [4, 2], "tanh", 0.03, 10),
        UI | {"regDataset"}, id="defaults"),
    pytest.param(
        SITE + SPIRAL_ALL_FEATURES,
        job("TF Playground: spiral, 8-8-5 tanh", "spiral", 0.2, 500,
            ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"], 0.5, 41318,
            [8, 8, 5], "tanh", 0.03, 10),
        UI | {"regDataset", "cosX", "cosY"}, id="spiral-all-features"),
    pytest.param(
        SITE + REGRESSION_L1,
        job("TF Playground: multi_gauss, 3 linear", "multi_gauss", 0.25, 1200, ["x1", "x2"],
            0.7, 77777, [3], "linear", 0.01, 20, ("l1", 0.003)),
        UI | {"dataset"}, id="regression-l1"),
    pytest.param(
        SITE + SIX_LAYER_RELU,
        job("TF Playground: xor, 8-8-8-8-8-8 relu", "xor", 0.1, 500, ["x1", "x2", "x1*x2"],
            0.8, 50000, [8] * 6, "relu", 0.1, 30, ("l2", 0.001)),
        UI | {"regDataset"}, id="six-layer-relu"),
]


@pytest.mark.parametrize(("link", "expected", "ignored"), CASES)
def test_real_links_map_to_the_whole_expected_spec(link, expected, ignored):
    result = import_tfplayground(link)
    assert result.spec == expected
    assert result.unmapped == []
    assert {i["field"] for i in result.ignored} == ignored
    assert all(i["reason"] for i in result.ignored)
    JobSpec.model_validate(result.spec)  # the spec is one the API accepts


def test_hash_alone_link_and_bare_text_agree():
    bare = DEFAULT_HASH[1:]
    specs = [import_tfplayground(t).spec for t in (SITE + DEFAULT_HASH, DEFAULT_HASH, bare)]
    assert specs[0] == specs[1] == specs[2]


def test_an_empty_hash_gives_tf_playgrounds_defaults():
    result = import_tfplayground(SITE)
    assert result.spec["dataset"]["name"] == "circle"
    assert result.spec["dataset"]["features"] == ["x1", "x2"]
    assert [la["units"] for la in result.spec["model"]["layers"]] == [4, 2]
    assert result.spec["training"]["optimizer"] == {"name": "sgd", "learning_rate": 0.03}
    assert result.spec["dataset"]["seed"] == 1 and result.spec["training"]["seed"] == 0


def test_fields_that_cannot_be_mapped_are_reported_with_the_default_used():
    result = import_tfplayground(
        "activation=swish&problem=regression&regDataset=reg-maximum&noise=80"
        "&networkShape=4,a&learningRate=abc&frobnicate=1&tutorial=intro&x_hide=true"
        "&initZero=true")
    unmapped = {u["field"]: u for u in result.unmapped}
    assert set(unmapped) == {"activation", "regDataset", "noise", "networkShape",
                             "learningRate", "frobnicate"}
    assert "'swish'" in unmapped["activation"]["reason"]
    assert "relu, tanh, sigmoid, linear" in unmapped["activation"]["reason"]
    assert "reg-plane, reg-gauss" in unmapped["regDataset"]["reason"]
    assert unmapped["noise"]["value"] == "80"
    assert "0 to 50" in unmapped["noise"]["reason"]
    assert "not a TF Playground setting" in unmapped["frobnicate"]["reason"]
    assert {i["field"] for i in result.ignored} == {"tutorial", "x_hide"}
    spec = result.spec
    assert spec["dataset"]["name"] == "plane"
    assert spec["dataset"]["params"]["noise"] == 0.0
    assert spec["model"]["layers"] == [{"type": "dense", "units": u, "activation": "tanh"}
                                       for u in (4, 2)]
    assert spec["model"]["init"] == "zeros"
    assert spec["training"]["optimizer"]["learning_rate"] == 0.03
    JobSpec.model_validate(spec)


def test_state_ts_parsing_rules():
    # booleans are true unless exactly "false"; a blank value keeps the default; an empty
    # networkShape means no hidden layer.
    result = import_tfplayground("x=false&y=0&sinX=yes&batchSize=&networkShape=")
    assert result.spec["dataset"]["features"] == ["x2", "sin(x1)"]
    assert result.spec["training"]["batch_size"] == 10
    assert result.spec["model"]["layers"] == []
    assert parse_hash("#a=1&b=2=3&&a=4") == {"a": "4", "b": "2"}


def test_a_link_with_no_input_feature_is_refused():
    with pytest.raises(TFPlaygroundError, match="no input feature"):
        import_tfplayground("x=false&y=false")


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    app.include_router(imports.router, prefix="/api")
    with TestClient(app) as c:
        yield c


def test_route_returns_spec_unmapped_ignored_and_notes(client):
    r = client.post("/api/import/tfplayground", json={"url": SITE + SPIRAL_ALL_FEATURES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["spec"] == CASES[1].values[1]
    assert body["unmapped"] == []
    assert {i["field"] for i in body["ignored"]} >= {"cosX", "cosY"}
    assert body["notes"]


def test_route_refuses_bad_bodies_with_422(client):
    r = client.post("/api/import/tfplayground", json={"url": "x=false&y=false"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "url"]
    assert "no input feature" in r.json()["detail"][0]["msg"]
    assert client.post("/api/import/tfplayground", json={"link": "x"}).status_code == 422
    assert client.post("/api/import/tfplayground", json={}).status_code == 422


def test_route_on_the_live_server(server):
    """Through the real server (passes once the imports router is in create_app)."""
    with server.client() as c:
        for case in CASES:
            r = c.post("/api/import/tfplayground", json={"url": case.values[0]})
            assert r.status_code == 200, r.text
            spec = r.json()["spec"]
            assert spec == case.values[1]
            check = c.post("/api/models/check", json={"dataset": spec["dataset"],
                                                      "model": spec["model"]})
            assert check.status_code == 200, check.text


def test_notes_say_where_the_job_differs_from_tf_playground():
    classification = import_tfplayground(DEFAULT_HASH).notes
    regression = import_tfplayground(REGRESSION_L1).notes
    assert any("tanh with a squared error" in n for n in classification)
    assert not any("tanh with a squared error" in n for n in regression)
    assert any("12345" in n for n in classification)
