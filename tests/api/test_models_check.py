"""POST /api/models/check through a real server: reports, and 422s that name the problem."""

from __future__ import annotations

import time

import pytest

TYPES = ("dense, activation, dropout, batchnorm, layernorm, flatten, conv2d, maxpool2d, "
         "avgpool2d, rnn, lstm, gru, pool_sequence, embedding, attention")


def post(server, body: dict):
    with server.client() as client:
        return client.post("/api/models/check", json=body)


def detail(response) -> list[tuple[list, str]]:
    assert response.status_code == 422, response.text
    return [(d["loc"], d["msg"]) for d in response.json()["detail"]]


def test_report_for_the_readme_example(server):
    response = post(server, {
        "dataset": {"name": "xor"},
        "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"}]},
    })
    assert response.status_code == 200, response.text
    assert response.json() == {
        "input_shape": [2], "input_tokens": None, "output_shape": [1],
        "layers": [
            {"index": 0, "type": "dense", "input_shape": [2], "output_shape": [8],
             "parameters": 24, "appended": False},
            {"index": 1, "type": "dense", "input_shape": [8], "output_shape": [1],
             "parameters": 9, "appended": True},
        ],
        "total_parameters": 33,
        "memory_bytes": 4 * 33 * 4 + 4 * 11 * 10 * 2,
        "memory": {"weights": 132, "gradients": 132, "optimizer": 264, "activations": 880,
                   "total": 1408},
        "batch_size": 10,
        "loss": "bce",
    }


def test_features_batch_size_and_loss_come_from_the_request(server):
    response = post(server, {
        "dataset": {"name": "spiral", "features": ["x1", "x2", "sin(x1)", "sin(x2)"]},
        "model": {"layers": [{"type": "dense", "units": 8}]},
        "training": {"batch_size": 32, "loss": "mse"},
    })
    body = response.json()
    assert body["input_shape"] == [4] and body["layers"][0]["parameters"] == 40
    assert body["batch_size"] == 32 and body["loss"] == "mse"


@pytest.mark.parametrize("name,layers,shapes", [
    ("digits", [{"type": "conv2d", "filters": 4}, {"type": "maxpool2d"}, {"type": "flatten"}],
     [[4, 8, 8], [4, 4, 4], [64], [10]]),
    ("iris", [{"type": "batchnorm"}, {"type": "dense", "units": 5}], [[4], [5], [3]]),
    ("sine", [{"type": "lstm", "units": 6}], [[6], [1]]),
])
def test_shapes_per_data_set(server, name, layers, shapes):
    response = post(server, {"dataset": {"name": name}, "model": {"layers": layers}})
    assert response.status_code == 200, response.text
    assert [layer["output_shape"] for layer in response.json()["layers"]] == shapes


def test_token_sequence_task_with_embedding_and_attention(server):
    with server.client() as client:
        sets = client.get("/api/catalog").json()["datasets"]
    tokens = next(d for d in sets if d["input_tokens"])
    layers = [{"type": "embedding", "dim": 8}, {"type": "attention", "heads": 2},
              {"type": "pool_sequence"}]
    body = post(server, {"dataset": {"name": tokens["name"]}, "model": {"layers": layers}}).json()
    time_steps = tokens["input_shape"][0]
    assert body["input_tokens"] == tokens["input_tokens"]
    assert [layer["output_shape"] for layer in body["layers"]] == [
        [time_steps, 8], [time_steps, 8], [8], [tokens["num_classes"]]]
    no_embedding = post(server, {"dataset": {"name": tokens["name"]},
                                 "model": {"layers": [{"type": "dense", "units": 4}]}})
    assert detail(no_embedding) == [(
        ["body", "model", "layers", 0],
        f"layer 0 (dense) needs numbers but gets [{time_steps}] token ids (vocabulary "
        f"{tokens['input_tokens']}): add an embedding before it")]


def test_a_layer_that_does_not_fit_is_named(server):
    response = post(server, {"dataset": {"name": "digits"},
                             "model": {"layers": [{"type": "flatten"},
                                                  {"type": "conv2d", "filters": 4}]}})
    assert detail(response) == [(
        ["body", "model", "layers", 1],
        "layer 1 (conv2d) needs image input [channels, height, width] but gets [64]: remove "
        "the flatten before it")]
    assert response.json()["detail"][0]["type"] == "value_error"


def test_heads_must_divide_the_width(server):
    response = post(server, {"dataset": {"name": "sine"},
                             "model": {"layers": [{"type": "attention", "heads": 4,
                                                   "d_model": 6}, {"type": "pool_sequence"}]}})
    assert detail(response) == [(
        ["body", "model", "layers", 0],
        "layer 0 (attention) has d_model 6 that 4 heads do not divide: choose heads that divide "
        "it (1, 2, 3, 6) or change d_model")]


def test_unknown_names_list_the_choices(server):
    assert detail(post(server, {"dataset": {"name": "xor"},
                                "model": {"layers": [{"type": "conv"}]}})) == [
        (["body", "model", "layers", 0], f"unknown layer type 'conv'; expected one of: {TYPES}")]
    assert detail(post(server, {"dataset": {"name": "xor"},
                                "model": {"layers": [{"units": 3}]}})) == [
        (["body", "model", "layers", 0], f"a layer needs a 'type'; one of: {TYPES}")]
    assert detail(post(server, {"dataset": {"name": "xor"},
                                "model": {"layers": [{"type": "dense", "unit": 3}]}})) == [
        (["body", "model", "layers", 0, "dense"],
         "dense has no field 'unit'; its fields are: type, units, activation, negative_slope, "
         "bias, init")]
    bad_activation = detail(post(server, {
        "dataset": {"name": "xor"},
        "model": {"layers": [{"type": "dense", "units": 3, "activation": "rleu"}]}}))
    assert bad_activation == [(
        ["body", "model", "layers", 0, "dense", "activation"],
        "unknown activation 'rleu'; expected one of: relu, leaky_relu, elu, gelu, silu, "
        "sigmoid, tanh, softmax, softplus, linear")]
    bad_init = detail(post(server, {"dataset": {"name": "xor"},
                                    "model": {"layers": [], "init": "glorot"}}))
    assert bad_init == [(
        ["body", "model", "init"],
        "unknown initializer 'glorot'; expected one of: xavier_uniform, xavier_normal, "
        "he_uniform, he_normal, lecun_normal, normal, zeros")]


def test_unknown_data_set_is_a_422_from_the_registry(server):
    problems = detail(post(server, {"dataset": {"name": "nope"}, "model": {"layers": []}}))
    assert problems[0][0] == ["body", "dataset", "name"] and "nope" in problems[0][1]


def test_explicit_output_and_loss_are_checked(server):
    assert detail(post(server, {"dataset": {"name": "iris"},
                                "model": {"layers": [{"type": "dense", "units": 2}],
                                          "output": "none"}})) == [(
        ["body", "model", "layers", 0],
        "layer 0 (dense) is the output (output none) and gives [2] but classification into 3 "
        "classes needs [3]: give it 3 units, or set output to auto")]
    assert detail(post(server, {"dataset": {"name": "sine"},
                                "model": {"layers": [{"type": "lstm", "units": 2}]},
                                "training": {"loss": "cross_entropy"}})) == [(
        ["body", "training", "loss"],
        "loss cross_entropy is for classification but this data set is regression: use mse, l1, "
        "huber or auto")]


def server_rss(server) -> int:
    with open(f"/proc/{server.process.pid}/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_trillion_parameters_are_refused_fast_without_growing_the_server(server):
    body = {"dataset": {"name": "xor"},
            "model": {"layers": [{"type": "dense", "units": 10**6},
                                 {"type": "dense", "units": 10**6}]}}
    post(server, body)  # warm up
    before = server_rss(server)
    start = time.perf_counter()
    response = post(server, body)
    elapsed = time.perf_counter() - start
    assert detail(response) == [(
        ["body", "model", "layers", 0, "units"],
        "layer 0 (dense) has units 1000000 but this server allows at most 4096: use fewer")]
    assert elapsed < 1.0
    assert server_rss(server) - before < 4 << 20


def test_over_the_parameter_and_memory_limits(server):
    too_many = post(server, {"dataset": {"name": "digits"},
                             "model": {"layers": [{"type": "flatten"},
                                                  {"type": "dense", "units": 4096},
                                                  {"type": "dense", "units": 4096}]}})
    assert detail(too_many) == [(
        ["body", "model", "layers", 2],
        "the model has 17,088,522 parameters but this server allows at most 10,000,000; layer 2 "
        "(dense) has 16,781,312: make it smaller (fewer units or filters, or pool before flatten)")]
    huge_batch = post(server, {"dataset": {"name": "digits"},
                               "model": {"layers": [{"type": "conv2d", "filters": 4096},
                                                    {"type": "flatten"}]},
                               "training": {"batch_size": 4096}})
    ((loc, msg),) = detail(huge_batch)
    assert loc == ["body", "model"] and msg.startswith("training this model would need about ")


@pytest.mark.parametrize("body", [
    {"dataset": {"name": "xor"}, "model": {"layers": "dense"}},
    {"dataset": {"name": "xor"}, "model": {"layers": [{"type": "dense", "units": "many"}]}},
    {"dataset": {"name": "xor"}, "model": {"layers": [["dense"]]}},
    {"dataset": {"name": "xor"}},
    {"dataset": {"name": "xor"}, "model": {"layers": [{"type": 3}]}},
])
def test_malformed_bodies_are_422_not_500(server, body):
    with server.client() as client:
        assert client.post("/api/models/check", json=body).status_code == 422
