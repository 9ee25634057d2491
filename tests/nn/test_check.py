"""check_model: shapes, counts, memory, limits and every error message, exactly."""

from __future__ import annotations

import time

import pytest

from server.config import Settings
from server.nn.check import check_model, plan_model, resolve_loss
from server.spec.errors import SpecError
from server.spec.job import ModelSpec
from server.spec.shapes import DataShape, Shape

XOR = DataShape("points2d", "classification", Shape((2,)), 2, ("0", "1"))
DIGITS = DataShape("image", "classification", Shape((1, 8, 8)), 10)
SINE = DataShape("sequence", "regression", Shape((20, 1)))
RECALL = DataShape("sequence", "classification", Shape((10,), tokens=17), 8)
IRIS = DataShape("tabular", "classification", Shape((4,)), 3)
SETTINGS = Settings()


def model(*layers: dict, **kw) -> ModelSpec:
    return ModelSpec(layers=list(layers), **kw)


def check(m: ModelSpec, data: DataShape, settings: Settings = SETTINGS, batch_size: int = 10,
          loss: str = "auto"):
    return check_model(m, data, settings, batch_size, loss)


def refused(m: ModelSpec, data: DataShape, **kw) -> tuple[list, str]:
    with pytest.raises(SpecError) as info:
        check(m, data, **kw)
    (err,) = info.value.errors
    return err["loc"], err["msg"]


def test_report_of_a_small_mlp_with_its_memory_estimate():
    report = check(model({"type": "dense", "units": 8, "activation": "tanh"}), XOR)
    assert [(r.index, r.type, r.input_shape, r.output_shape, r.parameters, r.appended)
            for r in report.layers] == [(0, "dense", [2], [8], 24, False),
                                        (1, "dense", [8], [1], 9, True)]
    assert report.total_parameters == 33
    assert report.output_shape == [1] and report.loss == "bce"
    # 4 bytes x (33 params x 4) + 4 bytes x (2 + 8 + 1 activations) x 10 samples x 2.
    assert report.memory.weights == 132 and report.memory.optimizer == 264
    assert report.memory.activations == 880
    assert report.memory_bytes == report.memory.total == 4 * 33 * 4 + 880


def test_report_of_a_cnn_and_an_attention_model():
    cnn = check(model({"type": "conv2d", "filters": 4}, {"type": "maxpool2d"},
                      {"type": "flatten"}), DIGITS)
    assert [r.output_shape for r in cnn.layers] == [[4, 8, 8], [4, 4, 4], [64], [10]]
    assert cnn.total_parameters == 40 + 650 and cnn.loss == "cross_entropy"
    att = check(model({"type": "embedding", "dim": 8}, {"type": "attention", "heads": 2},
                      {"type": "pool_sequence", "mode": "last"}), RECALL)
    assert [r.output_shape for r in att.layers] == [[10, 8], [10, 8], [8], [8]]
    assert att.input_tokens == 17 and att.input_shape == [10]
    seq = check(model({"type": "gru", "units": 5, "return_sequences": True},
                      {"type": "dense", "units": 3}, {"type": "pool_sequence"}), SINE)
    assert [r.output_shape for r in seq.layers] == [[20, 5], [20, 3], [3], [1]]
    assert seq.loss == "mse"


def test_empty_model_is_logistic_regression():
    report = check(model(), IRIS)
    assert [(r.type, r.parameters) for r in report.layers] == [("dense", 15)]


SHAPE_ERRORS = [
    (DIGITS, [{"type": "flatten"}, {"type": "conv2d", "filters": 4}], ["model", "layers", 1],
     "layer 1 (conv2d) needs image input [channels, height, width] but gets [64]: remove the "
     "flatten before it"),
    (XOR, [{"type": "conv2d", "filters": 4}], ["model", "layers", 0],
     "layer 0 (conv2d) needs image input [channels, height, width] but gets [2]: it works on "
     "images only"),
    (XOR, [{"type": "maxpool2d"}], ["model", "layers", 0],
     "layer 0 (maxpool2d) needs image input [channels, height, width] but gets [2]: it works on "
     "images only"),
    (DIGITS, [{"type": "dense", "units": 4}], ["model", "layers", 0],
     "layer 0 (dense) needs flat input [features] or a sequence [time, features] but gets "
     "[1, 8, 8]: add a flatten before it"),
    (RECALL, [{"type": "dense", "units": 4}], ["model", "layers", 0],
     "layer 0 (dense) needs numbers but gets [10] token ids (vocabulary 17): add an embedding "
     "before it"),
    (RECALL, [{"type": "lstm", "units": 4}], ["model", "layers", 0],
     "layer 0 (lstm) needs numbers but gets [10] token ids (vocabulary 17): add an embedding "
     "before it"),
    (RECALL, [{"type": "flatten"}], ["model", "layers", 0],
     "layer 0 (flatten) needs numbers but gets [10] token ids (vocabulary 17): add an embedding "
     "before it (token ids are already flat)"),
    (IRIS, [{"type": "lstm", "units": 4}], ["model", "layers", 0],
     "layer 0 (lstm) needs a sequence [time, features] but gets [4]: it reads a sequence over "
     "time; use dense layers for flat input"),
    (DIGITS, [{"type": "rnn", "units": 4}], ["model", "layers", 0],
     "layer 0 (rnn) needs a sequence [time, features] but gets [1, 8, 8]: it reads sequences; "
     "use conv2d and pooling layers for images"),
    (SINE, [{"type": "lstm", "units": 4}, {"type": "pool_sequence"}], ["model", "layers", 1],
     "layer 1 (pool_sequence) needs a sequence [time, features] but gets [4]: it reads a "
     "sequence over time; use dense layers for flat input"),
    (SINE, [{"type": "flatten"}, {"type": "gru", "units": 4}], ["model", "layers", 1],
     "layer 1 (gru) needs a sequence [time, features] but gets [20]: remove the flatten before "
     "it"),
    (SINE, [{"type": "flatten"}, {"type": "attention"}], ["model", "layers", 1],
     "layer 1 (attention) needs a sequence [time, features] or token ids [time] but gets [20]: "
     "remove the flatten before it"),
    (SINE, [{"type": "embedding"}], ["model", "layers", 0],
     "layer 0 (embedding) needs token ids [time] but gets [20, 1]: embeddings are for token "
     "sequence data sets; remove it"),
    (XOR, [{"type": "attention"}], ["model", "layers", 0],
     "layer 0 (attention) needs a sequence [time, features] or token ids [time] but gets [2]: "
     "attention works on sequences; use dense layers for flat input"),
    (RECALL, [{"type": "embedding", "dim": 10}, {"type": "attention", "heads": 4}],
     ["model", "layers", 1],
     "layer 1 (attention) has d_model 10 that 4 heads do not divide: choose heads that divide it "
     "(1, 2, 5, 10) or change d_model"),
    (DIGITS, [{"type": "maxpool2d", "pool_size": 4},
              {"type": "conv2d", "filters": 2, "kernel_size": 5, "padding": "valid"}],
     ["model", "layers", 1],
     "layer 1 (conv2d) has kernel_size 5 but gets images of 2x2 (padding valid): use a smaller "
     "kernel_size, padding same, or fewer pooling layers before it"),
    (DIGITS, [{"type": "maxpool2d", "pool_size": 4}, {"type": "avgpool2d", "pool_size": 3}],
     ["model", "layers", 1],
     "layer 1 (avgpool2d) has pool_size 3 but gets images of 2x2: use a smaller pool_size or "
     "fewer pooling layers before it"),
    (DIGITS, [{"type": "conv2d", "filters": 4}], ["model", "output"],
     "the output layer (10 units for classification into 10 classes) needs flat input "
     "[features] but the last layer gives [4, 8, 8]: end the layers with a flatten"),
    (SINE, [{"type": "lstm", "units": 4, "return_sequences": True}], ["model", "output"],
     "the output layer (1 units for regression) needs flat input [features] but the last layer "
     "gives [20, 4]: end the layers with a pool_sequence, or set return_sequences to false on "
     "the last recurrent layer"),
    (RECALL, [], ["model", "output"],
     "the output layer (8 units for classification into 8 classes) needs flat input [features] "
     "but the last layer gives [10] token ids (vocabulary 17): add an embedding and a sequence "
     "layer before it"),
]


@pytest.mark.parametrize("data,layers,loc,msg", SHAPE_ERRORS)
def test_shape_errors_name_the_layer_and_what_it_needs(data, layers, loc, msg):
    assert refused(model(*layers), data) == (loc, msg)


def test_explicit_output_is_checked_against_the_task():
    assert refused(model(output="none"), XOR) == (
        ["model", "layers"],
        "output none makes the last layer the output, but there are no layers: add a dense "
        "layer with 1 units for binary classification, or set output to auto")
    assert refused(model({"type": "dense", "units": 4}, output="none"), IRIS) == (
        ["model", "layers", 0],
        "layer 0 (dense) is the output (output none) and gives [4] but classification into 3 "
        "classes needs [3]: give it 3 units, or set output to auto")
    assert refused(model({"type": "conv2d", "filters": 10}, output="none"), DIGITS) == (
        ["model", "layers", 0],
        "layer 0 (conv2d) is the output (output none) and must give flat [10] for "
        "classification into 10 classes but gives [10, 8, 8]: end with a dense layer of 10 "
        "units, or set output to auto")
    assert refused(model({"type": "dense", "units": 1, "activation": "sigmoid"}, output="none"),
                   XOR) == (
        ["model", "layers", 0],
        "layer 0 (dense) ends with sigmoid but the loss bce applies it itself: set its "
        "activation to linear")
    ok = check(model({"type": "dense", "units": 3, "activation": "linear"}, output="none"), IRIS)
    assert [r.appended for r in ok.layers] == [False] and ok.output_shape == [3]
    # Squashing is fine for a regression loss.
    check(model({"type": "dense", "units": 1, "activation": "sigmoid"}, output="none"), XOR,
          loss="mse")


def test_loss_must_fit_the_task():
    def loss_error(loss: str, data: DataShape) -> tuple[list, str]:
        with pytest.raises(SpecError) as info:
            resolve_loss(loss, data)
        return info.value.errors[0]["loc"], info.value.errors[0]["msg"]

    assert loss_error("bce", SINE) == (
        ["training", "loss"], "loss bce is for classification but this data set is regression: "
        "use mse, l1, huber or auto")
    assert loss_error("cross_entropy", XOR) == (
        ["training", "loss"], "loss cross_entropy needs one output per class but binary "
        "classification has one output unit: use bce or auto")
    assert loss_error("bce", IRIS) == (
        ["training", "loss"], "loss bce is for two classes but this task is classification into "
        "3 classes: use cross_entropy or auto")
    assert [resolve_loss("auto", d) for d in (XOR, IRIS, SINE)] == ["bce", "cross_entropy", "mse"]
    assert resolve_loss("huber", SINE) == "huber"


def test_limits_from_settings():
    too_many = model(*[{"type": "activation"}] * 65)
    assert refused(too_many, XOR) == (
        ["model", "layers"], "the model has 65 layers but this server allows at most 64: "
        "remove some")
    assert refused(model({"type": "dense", "units": 5000}), XOR) == (
        ["model", "layers", 0, "units"],
        "layer 0 (dense) has units 5000 but this server allows at most 4096: use fewer")
    assert refused(model({"type": "conv2d", "filters": 4097}), DIGITS)[0] == [
        "model", "layers", 0, "filters"]
    assert refused(model({"type": "dense", "units": 4096}, {"type": "dense", "units": 4096}),
                   XOR) == (
        ["model", "layers", 1],
        "the model has 16,797,697 parameters but this server allows at most 10,000,000; layer 1 "
        "(dense) has 16,781,312: make it smaller (fewer units or filters, or pool before flatten)")
    # 64 x 64 maps of 512 filters: few parameters, much activation memory.
    big_maps = DataShape("image", "classification", Shape((3, 64, 64)), 10)
    wide = model({"type": "conv2d", "filters": 512}, {"type": "avgpool2d", "pool_size": 32},
                 {"type": "flatten"})
    assert refused(wide, big_maps, batch_size=256) == (
        ["model"],
        "training this model would need about 4,128.6 MiB (activations of one batch of 256: "
        "4,128.0 MiB) but this server allows 1,024.0 MiB: use smaller layers or a smaller "
        "batch_size")
    assert check(wide, big_maps, batch_size=8).memory_bytes < SETTINGS.max_memory_bytes


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_trillion_parameters_are_refused_in_milliseconds_without_memory():
    huge = model({"type": "dense", "units": 10**6}, {"type": "dense", "units": 10**6})
    roomy = Settings(max_units=10**7)
    with pytest.raises(SpecError):
        check(huge, XOR, roomy)  # warm up imports and caches
    before = rss_bytes()
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        check(huge, XOR, roomy)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05
    assert rss_bytes() - before < 1 << 20
    assert info.value.errors[0]["msg"].startswith(
        "the model has 1,000,005,000,001 parameters but this server allows at most 10,000,000; "
        "layer 1 (dense) has 1,000,001,000,000")
    # With the default settings the width limit answers first.
    start = time.perf_counter()
    assert refused(huge, XOR)[0] == ["model", "layers", 0, "units"]
    assert time.perf_counter() - start < 0.05


def test_plan_includes_the_appended_output_layer_and_previous_layers():
    plans = plan_model(model({"type": "embedding", "dim": 4}, {"type": "attention"},
                             {"type": "pool_sequence"}), RECALL)
    assert [p.spec.type for p in plans] == ["embedding", "attention", "pool_sequence", "dense"]
    assert plans[1].previous is plans[0].spec and plans[0].previous is None
    assert [p.appended for p in plans] == [False, False, False, True]
