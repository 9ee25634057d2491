"""Sweeps on an open server (issue 14): every axis kind end to end, ranges, random mode, the
422s that name the axis and value, control and delete as a whole, a variant deleted alone."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.engine.common import strict_json

BASE = {"name": "xor", "dataset": {"name": "xor", "params": {"samples": 100}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "batch_size": 10,
                     "epochs": 3}}
LR = "training.optimizer.learning_rate"
UNITS = "model.layers.0.units"


def base(**training) -> dict:
    return {**BASE, "training": {**BASE["training"], **training}}


def paused(**training) -> dict:
    """The base, created paused: the variants are checked and stored, nothing trains."""
    return {**base(**training), "start": False}


def post(client: httpx.Client, body: dict, status: int = 201) -> dict:
    r = client.post("/api/sweeps", json=body)
    assert r.status_code == status, r.text
    return strict_json(r)


def view(client: httpx.Client, sweep_id: str) -> dict:
    r = client.get(f"/api/sweeps/{sweep_id}")
    assert r.status_code == 200, r.text
    return strict_json(r)


def wait_finished(client: httpx.Client, sweep_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (state := view(client, sweep_id))["status"] != "finished":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return state


def values(state: dict) -> list[dict]:
    return [v["values"] for v in state["variants"]]


@pytest.fixture()
def client(server):
    """A client of the shared server; the sweeps made with it are deleted afterwards."""
    with server.client() as c:
        before = {s["id"] for s in c.get("/api/sweeps").json()["sweeps"]}
        yield c
        for s in c.get("/api/sweeps").json()["sweeps"]:
            if s["id"] not in before:
                assert c.delete(f"/api/sweeps/{s['id']}").status_code == 204


def counts(client: httpx.Client) -> tuple[int, int]:
    return (len(client.get("/api/jobs").json()["jobs"]),
            len(client.get("/api/sweeps").json()["sweeps"]))


def test_a_grid_over_a_float_and_an_int_axis_trains_every_variant(client) -> None:
    made = post(client, {"base": base(), "mode": "grid", "axes": [
        {"path": LR, "values": [0.01, 0.5]}, {"path": UNITS, "values": [2, 8]}]})
    assert set(made) == {"id", "token", "jobs"} and len(made["jobs"]) == 4
    state = wait_finished(client, made["id"])
    assert values(state) == [{LR: 0.01, UNITS: 2}, {LR: 0.01, UNITS: 8},
                             {LR: 0.5, UNITS: 2}, {LR: 0.5, UNITS: 8}]
    assert [v["job"] for v in state["variants"]] == made["jobs"] == state["jobs"]
    assert state["mode"] == "grid" and state["axes"][0] == {
        "path": LR, "values": [0.01, 0.5], "scale": "linear"}
    assert state["base"]["training"]["epochs"] == 3 and state["created"].endswith("+00:00")
    for variant in state["variants"]:
        assert (variant["status"], variant["epoch"], variant["epochs"]) == ("completed", 3, 3)
        assert variant["metrics"]["epoch"] == 3 and variant["metrics"]["test_loss"] > 0
        assert variant["metrics"]["learning_rate"] == variant["values"][LR]
        # each variant is an ordinary job with the sweep's token and its values in its spec
        job = strict_json(client.get(f"/api/jobs/{variant['job']}"))
        assert job["spec"]["training"]["optimizer"]["learning_rate"] == variant["values"][LR]
        assert job["spec"]["model"]["layers"][0]["units"] == variant["values"][UNITS]
        assert job["metrics"] == variant["metrics"]
    first = strict_json(client.get(f"/api/jobs/{made['jobs'][0]}"))
    assert first["name"] == "xor [learning_rate=0.01, layers.0.units=2]"


def test_choice_axes_vary_activation_and_optimizer(client) -> None:
    made = post(client, {"base": paused(), "axes": [
        {"path": "model.layers.0.activation", "values": ["relu", "sigmoid"]},
        {"path": "training.optimizer.name", "values": ["sgd", "adam", "rmsprop"]},
        {"path": "model.layers.0.bias", "values": [False]},
        {"path": "training.regularization.kind", "values": ["l2"]}]})
    state = view(client, made["id"])
    assert len(state["variants"]) == 6 and state["status"] == "paused"
    seen = set()
    for variant in state["variants"]:
        assert variant["status"] == "paused" and variant["metrics"] is None
        spec = client.get(f"/api/jobs/{variant['job']}").json()["spec"]
        layer, training = spec["model"]["layers"][0], spec["training"]
        seen.add((layer["activation"], training["optimizer"]["name"]))
        assert layer["bias"] is False and training["regularization"]["kind"] == "l2"
    assert seen == {(a, o) for a in ("relu", "sigmoid") for o in ("sgd", "adam", "rmsprop")}


def test_ranges_log_and_linear_with_integers_deduplicated(client) -> None:
    made = post(client, {"base": paused(), "axes": [
        {"path": LR, "range": [0.001, 1], "count": 4, "scale": "log"},
        {"path": UNITS, "range": [1, 3], "count": 5}]})
    state = view(client, made["id"])
    lrs = sorted({v[LR] for v in values(state)})
    assert lrs == [0.001, 0.01, 0.1, 1.0]
    assert sorted({v[UNITS] for v in values(state)}) == [1, 2, 3]  # 1, 1.5, 2, 2.5, 3 rounded
    assert len(state["jobs"]) == 12
    made = post(client, {"base": paused(), "axes": [
        {"path": UNITS, "range": [2, 16], "count": 4, "scale": "log"},
        {"path": "dataset.params.noise", "range": [0, 0.3], "count": 4},
        {"path": "training.batch_size", "values": [5, 20]}]})
    state = view(client, made["id"])
    assert sorted({v[UNITS] for v in values(state)}) == [2, 4, 8, 16]
    assert sorted({v["dataset.params.noise"] for v in values(state)}) == [0.0, 0.1, 0.2, 0.3]
    spec = client.get(f"/api/jobs/{made['jobs'][-1]}").json()["spec"]
    assert (spec["model"]["layers"][0]["units"], spec["dataset"]["params"]["noise"],
            spec["training"]["batch_size"]) == (16, 0.3, 20)


def test_random_mode_draws_count_variants_reproducibly(client) -> None:
    body = {"base": paused(seed=7), "mode": "random", "count": 5, "axes": [
        {"path": LR, "range": [0.0001, 1], "scale": "log"},
        {"path": UNITS, "range": [2, 32]},
        {"path": "model.layers.0.activation", "values": ["relu", "tanh", "elu"]}]}
    first = view(client, post(client, body)["id"])
    again = view(client, post(client, body)["id"])
    other = view(client, post(client, {**body, "base": paused(seed=8)})["id"])
    assert len(first["variants"]) == 5 and first["count"] == 5 and first["mode"] == "random"
    assert values(first) == values(again)
    assert values(first) != values(other)
    for v in values(first) + values(other):
        assert 0.0001 <= v[LR] <= 1 and isinstance(v[UNITS], int) and 2 <= v[UNITS] <= 32
        assert v["model.layers.0.activation"] in ("relu", "tanh", "elu")


@pytest.mark.parametrize(("axes", "extra", "loc", "words"), [
    ([{"path": LR, "values": [0.1]}, {"path": "training.optimizer.rate", "values": [1]}], {},
     ["body", "axes", 1, "path"], ["'training.optimizer.rate'", "it can vary: ", LR, UNITS,
                                    "dataset.params.noise"]),
    ([{"path": "model.layers.3.units", "values": [1]}], {}, ["body", "axes", 0, "path"],
     ["cannot vary 'model.layers.3.units'"]),
    ([{"path": "name", "values": ["a"]}], {}, ["body", "axes", 0, "path"], ["cannot vary"]),
    ([{"path": UNITS, "values": [4, "many"]}], {}, ["body", "axes", 0, "values", 1],
     ["axis 'model.layers.0.units' value \"many\"", "integer"]),
    ([{"path": LR, "values": [0.1, 0]}, {"path": UNITS, "values": [2]}], {},
     ["body", "axes", 0, "values", 1], ["axis 'training.optimizer.learning_rate' value 0:",
                                        "greater than 0"]),
    ([{"path": "dataset.params.noise", "values": [0.1, 0.9]}], {},
     ["body", "axes", 0, "values", 1], ["value 0.9", "'noise'=0.9"]),
    ([{"path": UNITS, "values": [4, 100000]}], {}, ["body", "axes", 0, "values", 1],
     ["value 100000"]),
    ([{"path": "training.optimizer.name", "values": ["sgd", "lbfgs"]}], {},
     ["body", "axes", 0, "values", 1], ["value \"lbfgs\"", "adam"]),
    ([{"path": "model.layers.0.activation", "range": [0, 1], "count": 2}], {},
     ["body", "axes", 0, "range"], ["is a choice, not a number", "\"relu\""]),
    ([{"path": LR, "range": [0.1, 1]}], {}, ["body", "axes", 0, "count"], ["needs a `count`"]),
    ([{"path": LR, "range": [0, 1], "count": 3, "scale": "log"}], {}, ["body", "axes", 0],
     ["low > 0"]),
    ([{"path": LR, "values": [0.1], "range": [0.1, 1], "count": 2}], {}, ["body", "axes", 0],
     ["either `values` or `range`"]),
    ([{"path": LR, "values": [0.1]}, {"path": LR, "values": [0.2]}], {},
     ["body", "axes", 1, "path"], ["already an axis"]),
    ([{"path": LR, "values": [0.1]}], {"mode": "random"}, ["body", "count"], ["needs a `count`"]),
    ([], {}, ["body", "axes"], ["at least 1"]),
])
def test_a_bad_axis_is_422_naming_it_and_nothing_is_created(client, axes, extra, loc,
                                                             words) -> None:
    before = counts(client)
    r = client.post("/api/sweeps", json={"base": base(), "axes": axes, **extra})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc
    for word in words:
        assert word in detail["msg"], detail["msg"]
    assert counts(client) == before


def test_a_bad_base_is_422_at_the_base(client) -> None:
    r = client.post("/api/sweeps", json={"base": {**base(), "dataset": {"name": "nope"}},
                                         "axes": [{"path": LR, "values": [0.1, 0.2]},
                                                  {"path": "training.seed", "values": [1]}]})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "base", "dataset", "name"]
    r = client.post("/api/sweeps", json={"base": {**base(), "colour": "red"},
                                         "axes": [{"path": LR, "values": [0.1]}]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "base", "colour"]


def test_more_variants_than_allowed_is_422_with_the_limit(client) -> None:
    before = counts(client)
    r = client.post("/api/sweeps", json={"base": base(), "axes": [
        {"path": LR, "range": [0.001, 1], "count": 9, "scale": "log"},
        {"path": UNITS, "range": [1, 9], "count": 9}]})
    assert r.status_code == 422
    assert r.json()["detail"] == [{
        "loc": ["body", "axes"], "type": "value_error",
        "msg": "this sweep has 81 variants; this server allows at most 64 per sweep "
               "(PLAYGROUND_MAX_SWEEP_VARIANTS): try fewer values"}]
    r = client.post("/api/sweeps", json={"base": base(), "mode": "random", "count": 65,
                                         "axes": [{"path": LR, "range": [0.001, 1]}]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "count"]
    assert counts(client) == before


def test_control_and_delete_act_on_the_whole_sweep(client) -> None:
    made = post(client, {"base": base(epochs=None), "axes": [
        {"path": LR, "values": [0.01, 0.03, 0.1]}]})
    assert view(client, made["id"])["status"] == "running"
    r = client.post(f"/api/sweeps/{made['id']}/control", json={"action": "pause"})
    assert r.status_code == 200, r.text
    assert {v["status"] for v in r.json()["variants"]} == {"paused"}
    assert r.json()["status"] == "paused"
    r = client.post(f"/api/sweeps/{made['id']}/control", json={"action": "resume"})
    assert {v["status"] for v in r.json()["variants"]} <= {"queued", "running"}
    r = client.post(f"/api/sweeps/{made['id']}/control", json={"action": "stop"})
    assert {v["status"] for v in r.json()["variants"]} == {"stopped"}
    assert r.json()["status"] == "finished"
    r = client.post(f"/api/sweeps/{made['id']}/control", json={"action": "reset"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "action"]
    assert client.delete(f"/api/sweeps/{made['id']}").status_code == 204
    for job_id in made["jobs"]:
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
    for method, path, body in [("GET", "", None), ("POST", "/control", {"action": "stop"}),
                               ("DELETE", "", None)]:
        r = client.request(method, f"/api/sweeps/{made['id']}{path}", json=body)
        assert (r.status_code, r.json()) == (404, {"detail": "Sweep not found"})


def test_a_variant_deleted_alone_is_listed_as_deleted(client) -> None:
    made = post(client, {"base": paused(), "axes": [{"path": UNITS, "values": [2, 3, 4]}]})
    assert client.delete(f"/api/jobs/{made['jobs'][1]}").status_code == 204
    state = view(client, made["id"])
    assert [v["status"] for v in state["variants"]] == ["paused", "deleted", "paused"]
    assert state["variants"][1] == {"job": made["jobs"][1], "values": {UNITS: 3},
                                    "status": "deleted", "stop_reason": None, "epoch": None,
                                    "epochs": None, "metrics": None}
    listed = {s["id"]: s for s in client.get("/api/sweeps").json()["sweeps"]}
    assert listed[made["id"]]["variants"] == state["variants"]
    r = client.post(f"/api/sweeps/{made['id']}/control", json={"action": "stop"})
    assert [v["status"] for v in r.json()["variants"]] == ["stopped", "deleted", "stopped"]
    assert client.delete(f"/api/sweeps/{made['id']}").status_code == 204
