"""The glass box's server side on a live server (issue 16): editing a weight (paused only, kept
by the checkpoint, exact refusals), the forward pass of one sample (equal to a plain PyTorch
forward of the same weights, its input gradient equal to torch.autograd's, training afterwards
bit for bit as a job never inspected), and the misclassified test samples (the exact list)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine.inspect import predict
from server.nn.build import build_model
from server.spec.job import JobSpec
from server.train.optim import data_loss
from tests.conftest import start_server, stop_server
from tests.engine.common import control, create, dense, digits_spec, get, history, strict_json


def paused(spec: dict) -> dict:
    return {**spec, "start": False}


def circle_features_spec(**extra) -> dict:
    return {"dataset": {"name": "circle", "features": ["x1", "x2", "x1^2", "sin(x2)"]},
            "model": {"layers": [dense(4), dense(3)]},
            "training": {"epochs": 50, "batch_size": 10, "seed": 7,
                         "optimizer": {"name": "sgd", "learning_rate": 0.1}}, **extra}


def weights_of(client, job_id: str) -> dict[str, torch.Tensor]:
    r = client.get(f"/api/jobs/{job_id}/model", params={"format": "safetensors"})
    assert r.status_code == 200, r.text
    return load(r.content)


def plain_model(client, job_id: str, settings_dir):
    """The job's model rebuilt with plain PyTorch from its downloaded weights, and its data."""
    spec = JobSpec.model_validate(get(client, job_id)["spec"])
    registry = DataRegistry(settings_dir / "uploads", Settings(data_dir=settings_dir))
    dataset = registry.load(spec.dataset)
    model = build_model(spec.model, dataset.shape, 0)
    model.load_state_dict(weights_of(client, job_id))
    model.eval()
    return spec, dataset, model


def test_a_weight_is_edited_only_while_paused_and_the_checkpoint_keeps_it(tmp_path):
    live = start_server(tmp_path / "data")
    try:
        with live.client() as client:
            job = create(client, paused(circle_features_spec()))
            jid = job["id"]
            url = f"/api/jobs/{jid}/weights"
            r = client.post(url, json={"layer": 0, "param": "weight", "index": [2, 3],
                                       "value": 1.25})
            assert r.status_code == 200, r.text
            answer = strict_json(r)
            assert answer["value"] == 1.25 and answer["index"] == [2, 3]
            assert answer["old"] != 1.25
            r = client.post(url, json={"layer": 1, "param": "bias", "index": [2], "value": -0.5})
            assert r.status_code == 200, r.text
            # Bad layer, name, index: 422 with what is allowed.
            for body, loc, msg in [
                ({"layer": 0, "param": "weight", "index": [4, 0], "value": 1},
                 ["body", "index", 0],
                 "index 0 is 4; layer 0's weight has shape [4, 4], so it must be 0 to 3"),
                ({"layer": 0, "param": "weight", "index": [1], "value": 1}, ["body", "index"],
                 "index has 1 numbers; layer 0's weight has shape [4, 4], so it needs 2"),
                ({"layer": 1, "param": "bias", "index": [3], "value": 1}, ["body", "index", 0],
                 "index 0 is 3; layer 1's bias has shape [3], so it must be 0 to 2"),
                ({"layer": 3, "param": "weight", "index": [0, 0], "value": 1},
                 ["body", "layer"], "layer is 3; this model has layers 0 to 2"),
                ({"layer": 0, "param": "gamma", "index": [0], "value": 1}, ["body", "param"],
                 "layer 0 has no parameter 'gamma'; it has: weight, bias"),
            ]:
                r = client.post(url, json=body)
                assert r.status_code == 422, r.text
                assert r.json()["detail"] == [{"loc": loc, "msg": msg, "type": "value_error"}]
            r = client.post(url, json={"layer": 0, "param": "weight", "index": [0, 0],
                                       "value": float("1e300")})
            assert r.status_code == 422
            # Not paused: 409.
            control(client, jid, "resume")
            r = client.post(url, json={"layer": 0, "param": "weight", "index": [0, 0],
                                       "value": 1})
            assert (r.status_code, r.json()) == (
                409, {"detail": "This job is running; pause it to edit its weights."})
            control(client, jid, "stop")
            r = client.post(url, json={"layer": 0, "param": "weight", "index": [0, 0],
                                       "value": 1})
            assert (r.status_code, r.json()["detail"]) == (
                409, "This job has been stopped; only a paused job's weights can be edited.")
            r = client.post("/api/jobs/nope/weights", json={"layer": 0, "param": "weight",
                                                            "index": [0, 0], "value": 1})
            assert (r.status_code, r.json()) == (404, {"detail": "Job not found"})

            # A second job, edited and never trained: the edit outlives a restart.
            other = create(client, paused(circle_features_spec()))["id"]
            r = client.post(f"/api/jobs/{other}/weights",
                            json={"layer": 2, "param": "weight", "index": [0, 1], "value": 2.5})
            assert r.status_code == 200, r.text
        stop_server(live)
        live = start_server(tmp_path / "data")
        with live.client() as client:
            weights = weights_of(client, other)
            assert float(weights["layers.2.linear.weight"][0, 1]) == 2.5
    finally:
        stop_server(live)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("inspect")
    server = start_server(data)
    server.settings_dir = data
    yield server
    stop_server(server)


def test_inspect_matches_a_plain_forward_and_autograd(live):
    with live.client() as client:
        jid = create(client, paused(circle_features_spec()))["id"]
        control(client, jid, "step", unit="epoch")
        spec, dataset, model = plain_model(client, jid, live.settings_dir)
        for split, index in [("test", 5), ("train", 0)]:
            r = client.post(f"/api/jobs/{jid}/inspect", json={"split": split, "index": index})
            assert r.status_code == 200, r.text
            got = strict_json(r)
            xs = dataset.x_test if split == "test" else dataset.x_train
            ys = dataset.y_test if split == "test" else dataset.y_train
            x = torch.tensor(xs[index : index + 1], requires_grad=True)
            out, captures = model(x, capture=True)
            loss = data_loss("bce", out, torch.tensor(ys[index : index + 1]))
            (grad,) = torch.autograd.grad(loss, [x])
            assert len(got["layers"]) == 3
            for layer, capture in zip(got["layers"], captures, strict=True):
                np.testing.assert_allclose(layer["values"], capture[0].numpy(), atol=1e-6)
            z = model.layers[0].linear(x.detach())[0].detach().numpy()
            np.testing.assert_allclose(got["layers"][0]["pre_activation"], z, atol=1e-6)
            assert got["output"] == pytest.approx(out[0].detach().numpy().tolist(), abs=1e-6)
            assert got["loss"] == pytest.approx(float(loss.detach()), rel=1e-6)
            np.testing.assert_allclose(got["input_gradient"], grad[0].numpy(), rtol=1e-5,
                                       atol=1e-9)
            assert got["prediction"] == int(out[0, 0] > 0)
            assert got["target"] == int(ys[index])
            assert all(layer["grad_norm"] > 0 for layer in got["layers"])
            point = (dataset.points_test if split == "test" else dataset.points_train)[index]
            assert got["point"] == pytest.approx(point.tolist())
            # d loss / d (x, y) through the features x1, x2, x1^2, sin(x2).
            g = grad[0].double().numpy()
            expect = [g[0] + g[2] * 2 * point[0], g[1] + g[3] * np.cos(point[1])]
            assert got["point_gradient"] == pytest.approx(expect, rel=1e-4, abs=1e-7)
        # A point of the plane, no target: values and prediction, no loss.
        r = client.post(f"/api/jobs/{jid}/inspect", json={"point": [1.5, -2.0]})
        got = strict_json(r)
        x = torch.tensor(dataset.features_of(np.array([[1.5, -2.0]])))
        assert got["output"] == pytest.approx(model(x)[0].detach().numpy().tolist(), abs=1e-6)
        assert got["loss"] is None and got["input_gradient"] is None
        # Refusals.
        for body, loc, msg in [
            ({"split": "test", "index": 10**6}, ["body", "index"],
             f"index is 1000000; the test split has {len(dataset.x_test)} samples, so it must "
             f"be 0 to {len(dataset.x_test) - 1}"),
            ({"x": [1, 2]}, ["body", "x"],
             "x has shape [2]; this data set's inputs have shape [4]"),
        ]:
            r = client.post(f"/api/jobs/{jid}/inspect", json=body)
            assert r.status_code == 422, r.text
            assert r.json()["detail"] == [{"loc": loc, "msg": msg, "type": "value_error"}]
        r = client.post(f"/api/jobs/{jid}/inspect", json={"split": "test", "index": 1,
                                                           "point": [0, 0]})
        assert r.status_code == 422
        assert "give exactly one of: split (with index), point, x" in r.text


def test_training_after_inspecting_repeats_bit_for_bit(live):
    """Dropout draws from the trainer's RNG: an inspection that moved it would show."""
    spec = circle_features_spec()
    spec["model"]["layers"].insert(1, {"type": "dropout", "p": 0.3})
    with live.client() as client:
        a = create(client, paused(spec))["id"]
        b = create(client, paused(spec))["id"]
        for jid in (a, b):
            control(client, jid, "step", unit="epoch")
        for _ in range(3):
            for body in ({"split": "train", "index": 3}, {"split": "test", "index": 0},
                         {"point": [0.5, 0.5], "target": 1}):
                assert client.post(f"/api/jobs/{a}/inspect", json=body).status_code == 200
            assert client.get(f"/api/jobs/{a}/misclassified").status_code == 200
        for jid in (a, b):
            control(client, jid, "step", unit="epoch")
            control(client, jid, "step", unit="epoch")
        wa, wb = weights_of(client, a), weights_of(client, b)
        assert wa.keys() == wb.keys()
        for key in wa:
            assert torch.equal(wa[key], wb[key]), key
        assert history(client, a) == history(client, b)


def test_misclassified_is_the_exact_list(live):
    with live.client() as client:
        jid = create(client, paused(digits_spec()))["id"]
        control(client, jid, "step", unit="epoch")
        spec, dataset, model = plain_model(client, jid, live.settings_dir)
        with torch.no_grad():
            pred = predict(model(torch.tensor(dataset.x_test)), "cross_entropy").numpy()
        wrong = np.flatnonzero(pred != dataset.y_test)
        assert 0 < len(wrong) < len(dataset.x_test)
        r = client.get(f"/api/jobs/{jid}/misclassified", params={"limit": 500})
        got = strict_json(r)
        assert got["count"] == len(wrong) and got["total"] == len(dataset.x_test)
        assert got["indices"] == wrong[:500].tolist()
        assert got["true"] == dataset.y_test[wrong[:500]].tolist()
        assert got["predicted"] == pred[wrong[:500]].tolist()
        assert np.asarray(got["images"]).shape == (len(got["indices"]), 1, 8, 8)
        r = client.get(f"/api/jobs/{jid}/misclassified", params={"limit": 3})
        assert strict_json(r)["indices"] == wrong[:3].tolist()
        r = client.get(f"/api/jobs/{jid}/misclassified", params={"limit": 0})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]
        # Feature maps of one misclassified image: every layer's output.
        first = int(wrong[0])
        r = client.post(f"/api/jobs/{jid}/inspect", json={"split": "test", "index": first})
        got = strict_json(r)
        assert [layer["type"] for layer in got["layers"]] == ["flatten", "dense", "dense"]
        assert got["prediction"] == int(pred[first]) and got["target"] == int(dataset.y_test[first])
        # Regression has no misclassified samples.
        reg = create(client, paused({"dataset": {"name": "line"},
                                     "model": {"layers": [dense(2)]}}))["id"]
        r = client.get(f"/api/jobs/{reg}/misclassified")
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["msg"] == ("misclassified samples exist for classification "
                                                "only; this job's task is regression")


def test_the_stream_takes_a_weight_edit_and_sends_the_new_frame(live):
    """`edit_weight` over the job's websocket: a reply, a frame with the new value; refusals
    as `error` messages with the REST sentences."""
    from tests.stream.conftest import Client, connect, run

    with live.client() as client:
        jid = create(client, paused(circle_features_spec()))["id"]

    async def scenario():
        async with connect(live, jid) as ws:
            c = Client(ws)
            await c.next("hello")
            await c.next("snapshot")
            await c.send({"type": "edit_weight", "layer": 1, "param": "weight",
                          "index": [2, 3], "value": -1.5, "id": 9})
            reply = await c.next("reply", where=lambda m: m["request"] == "edit_weight")
            assert reply == {"type": "reply", "job_id": jid, "request": "edit_weight", "id": 9,
                             "ok": True}
            _, arrays = await c.next("snapshot", where=lambda f: float(
                f[1]["layer1.weight"][2, 3]) == -1.5)
            await c.send({"type": "edit_weight", "layer": 1, "param": "weight",
                          "index": [3, 0], "value": 1, "id": 10})
            error = await c.next("error", where=lambda m: m["id"] == 10)
            assert error["message"] == ("index 0 is 3; layer 1's weight has shape [3, 4], so "
                                        "it must be 0 to 2")
            await c.send({"type": "edit_weight", "layer": 1, "id": 11})
            error = await c.next("error", where=lambda m: m["id"] == 11)
            assert error["message"].startswith("edit_weight: ")
            await c.send({"type": "control", "action": "resume"})
            await c.next("status", where=lambda m: m["status"] == "running")
            await c.send({"type": "edit_weight", "layer": 1, "param": "bias", "index": [0],
                          "value": 1, "id": 12})
            error = await c.next("error", where=lambda m: m["id"] == 12)
            assert error["message"] == "This job is running; pause it to edit its weights."

    run(scenario())
    with live.client() as client:
        client.delete(f"/api/jobs/{jid}")


def test_inspect_takes_any_kind_and_refuses_inputs_that_do_not_fit(live):
    """A token sequence (attention model) inspected by index and by x; malformed x is a 422."""
    with live.client() as client:
        catalog = client.get("/api/catalog").json()
        recall = next(d for d in catalog["datasets"] if d["name"] == "recall")
        spec = {"dataset": {"name": "recall"}, "model": {"layers": recall["starter"]["model"]
                                                          ["layers"]}, "start": False}
        jid = create(client, spec)["id"]
        got = strict_json(client.post(f"/api/jobs/{jid}/inspect",
                                      json={"split": "test", "index": 0}))
        assert [layer["index"] for layer in got["layers"]] == list(
            range(len(spec["model"]["layers"]) + 1))
        assert got["input_gradient"] is None  # token ids have no gradient
        assert got["loss"] > 0
        tokens = got["input"]
        again = strict_json(client.post(f"/api/jobs/{jid}/inspect", json={
            "x": tokens, "target": got["target"]}))
        assert again["output"] == got["output"] and again["loss"] == got["loss"]
        length = len(tokens)
        for x, msg in [
            ([[1, 2], [3]], f"x must be numbers in nested lists of shape [{length}]"),
            (["a"] * length, f"x must be numbers in nested lists of shape [{length}]"),
            ([10**6] * length, "x holds token ids: whole numbers 0 to "),
        ]:
            r = client.post(f"/api/jobs/{jid}/inspect", json={"x": x})
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["msg"].startswith(msg)
        client.delete(f"/api/jobs/{jid}")
