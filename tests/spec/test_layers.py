"""Every layer type through one harness (parametrized over the union, so a new layer type needs
no new test), and the validation messages of the layer vocabulary."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from server.spec.job import ModelSpec
from server.spec.layers import ACTIVATIONS, INITIALIZERS, LAYER_TYPES, Layer, LayerSpec
from server.spec.shapes import Shape

LAYER = TypeAdapter(Layer)
CASES = [
    pytest.param(spec, shape, id=f"{name}-{i}")
    for name, cls in LAYER_TYPES.items()
    for i, (spec, shape) in enumerate(cls.examples())
]


def sample(shape: Shape, batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if shape.tokens is not None:
        return torch.randint(0, shape.tokens, (batch, *shape.dims), generator=gen)
    return torch.randn(batch, *shape.dims, generator=gen)


def test_union_has_every_layer_type_of_the_api():
    assert list(LAYER_TYPES) == [
        "dense", "activation", "dropout", "batchnorm", "layernorm", "flatten", "conv2d",
        "maxpool2d", "avgpool2d", "rnn", "lstm", "gru", "pool_sequence", "embedding", "attention",
    ]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("spec,shape", CASES)
def test_layer_round_trip_build_forward(spec: LayerSpec, shape: Shape):
    again = LAYER.validate_json(spec.model_dump_json())
    assert again == spec and type(again) is type(spec)
    out_shape = spec.output_shape(shape)
    torch.manual_seed(0)
    module = spec.build(shape)
    x = sample(shape)
    y = module(x)
    assert tuple(y.shape) == (3, *out_shape.dims)
    assert y.dtype == torch.float32
    assert spec.param_count(shape) == sum(p.numel() for p in module.parameters())
    if y.requires_grad:
        y.float().sum().backward()
    assert spec.activation_count(shape) >= out_shape.size


@pytest.mark.parametrize("cls", list(LAYER_TYPES.values()), ids=list(LAYER_TYPES))
def test_layer_schema_describes_every_field(cls: type[LayerSpec]):
    assert cls.__doc__ and cls.examples()
    schema = cls.model_json_schema()
    assert schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        if name != "type":
            assert prop.get("description"), f"{cls.layer_type()}.{name} has no description"


def errors(layers: list) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        ModelSpec(layers=layers)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


TYPES = ("dense, activation, dropout, batchnorm, layernorm, flatten, conv2d, maxpool2d, "
         "avgpool2d, rnn, lstm, gru, pool_sequence, embedding, attention")


def test_unknown_layer_type_lists_the_types():
    assert errors([{"type": "conv"}]) == [
        (("layers", 0), f"unknown layer type 'conv'; expected one of: {TYPES}")]


@pytest.mark.parametrize("bad", [{}, [], 3, None, True])
def test_a_type_that_is_not_a_name_is_refused_not_crashed_on(bad):
    assert errors([{"type": bad}]) == [
        (("layers", 0), f"unknown layer type {bad!r}; expected one of: {TYPES}")]


def test_missing_layer_type_lists_the_types():
    assert errors([{"units": 3}]) == [(("layers", 0), f"a layer needs a 'type'; one of: {TYPES}")]


def test_misspelled_field_lists_the_fields():
    assert errors([{"type": "dense", "unit": 3}]) == [
        (("layers", 0, "dense"),
         "dense has no field 'unit'; its fields are: type, units, activation, negative_slope, "
         "bias, init")]


def test_unknown_activation_lists_the_activations():
    assert errors([{"type": "dense", "units": 2, "activation": "rleu"}]) == [
        (("layers", 0, "dense", "activation"),
         "unknown activation 'rleu'; expected one of: relu, leaky_relu, elu, gelu, silu, "
         "sigmoid, tanh, softmax, softplus, linear")]
    assert errors([{"type": "activation", "activation": 3}]) == [
        (("layers", 0, "activation", "activation"),
         "Input should be 'relu', 'leaky_relu', 'elu', 'gelu', 'silu', 'sigmoid', 'tanh', "
         "'softmax', 'softplus' or 'linear'")]
    assert list(ACTIVATIONS) == ["relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
                                 "softmax", "softplus", "linear"]


def test_unknown_initializer_lists_the_initializers():
    assert errors([{"type": "conv2d", "filters": 2, "init": "glorot"}]) == [
        (("layers", 0, "conv2d", "init"),
         "unknown initializer 'glorot'; expected one of: xavier_uniform, xavier_normal, "
         "he_uniform, he_normal, lecun_normal, normal, zeros")]
    assert list(INITIALIZERS) == ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
                                  "lecun_normal", "normal", "zeros"]
    with pytest.raises(ValidationError, match="unknown initializer 'glorot'; expected one of"):
        ModelSpec(layers=[], init="glorot")


def test_field_ranges():
    assert errors([{"type": "dense", "units": 0}]) == [
        (("layers", 0, "dense", "units"), "Input should be greater than or equal to 1")]
    assert errors([{"type": "dropout", "p": 1.0}]) == [
        (("layers", 0, "dropout", "p"), "Input should be less than 1")]
    assert errors([{"type": "conv2d", "filters": 2, "padding": "full"}]) == [
        (("layers", 0, "conv2d", "padding"), "unknown padding 'full'; expected one of: same, "
         "valid or a number of pixels from 0 to 32")]
    assert errors([{"type": "conv2d", "filters": 2, "padding": 33}])[1] == (
        ("layers", 0, "conv2d", "padding", "constrained-int"),
        "Input should be less than or equal to 32")


def test_other_choices_echo_the_value():
    assert errors([{"type": "rnn", "units": 2, "nonlinearity": "sig"}]) == [
        (("layers", 0, "rnn", "nonlinearity"),
         "unknown nonlinearity 'sig'; expected one of: tanh, relu")]
    assert errors([{"type": "pool_sequence", "mode": "min"}]) == [
        (("layers", 0, "pool_sequence", "mode"), "unknown mode 'min'; expected one of: last, "
         "mean, max")]
    assert errors([{"type": "attention", "positional": "rope"}]) == [
        (("layers", 0, "attention", "positional"),
         "unknown positional 'rope'; expected one of: sinusoidal, learned, none")]


def test_the_minimal_job_layer_is_valid():
    model = ModelSpec(layers=[{"type": "dense", "units": 4}])
    assert model.layers[0].units == 4 and model.layers[0].activation == "relu"
    assert ModelSpec.model_validate_json(model.model_dump_json()) == model


def test_vocabularies_match_their_literals():
    from typing import get_args

    from server.spec.layers.base import ActivationName, InitializerName

    assert tuple(ACTIVATIONS) == get_args(ActivationName)
    assert tuple(INITIALIZERS) == get_args(InitializerName)
