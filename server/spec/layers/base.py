"""LayerSpec, the base of every layer type, and the words the layers share.

A layer spec is a pydantic model that knows three things about itself, all from the shape it
receives (per sample, no batch dimension): the shape it gives (`output_shape`), how many
parameters it has (`param_count`, arithmetic only, nothing allocated) and the torch module
that computes it (`build`). Layer types are the subclasses of `LayerSpec` with a
`type: Literal[...]` tag; `server.spec.layers` gathers them into the `Layer` union.

Also here: the activation and initializer vocabularies, `LayerShapeError`, and the checks that
several layer types share (needs numbers, needs an image, needs a sequence).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from torch import nn

from server.spec.shapes import Shape


def one_of(what: str, choices: Any, extra: str = "") -> BeforeValidator:
    """Refuses a string outside the Literal `choices` with a message that echoes it and lists
    them (pydantic's own message does not say what it got); `extra` names other valid input."""
    names = get_args(choices)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in names:
            raise PydanticCustomError(
                "unknown_choice", "unknown {what} {given}; expected one of: {choices}",
                {"what": what, "given": repr(value), "choices": ", ".join(names) + extra},
            )
        return value

    return BeforeValidator(check)


InitializerName = Literal[
    "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal", "normal", "zeros"
]
Initializer = Annotated[InitializerName, one_of("initializer", InitializerName)]

INITIALIZERS: dict[str, str] = {
    "xavier_uniform": "Glorot uniform: keeps the variance of activations and gradients for tanh "
    "and sigmoid.",
    "xavier_normal": "Glorot normal: as xavier_uniform, drawn from a normal distribution.",
    "he_uniform": "Kaiming uniform: scaled for ReLU layers (variance 2 / fan_in).",
    "he_normal": "Kaiming normal: scaled for ReLU layers, drawn from a normal distribution.",
    "lecun_normal": "LeCun normal: variance 1 / fan_in (for SELU-like and linear layers).",
    "normal": "Normal with mean 0 and the model's init_std: try a large std to see activations "
    "saturate.",
    "zeros": "All weights zero: every neuron of a layer stays the same (the symmetry problem).",
}

ActivationName = Literal[
    "relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh", "softmax", "softplus", "linear"
]
Activation = Annotated[ActivationName, one_of("activation", ActivationName)]

ACTIVATIONS: dict[str, str] = {
    "relu": "max(0, x): the default for hidden layers; neurons can die at 0.",
    "leaky_relu": "x for x > 0, negative_slope * x below: a ReLU that never quite dies.",
    "elu": "x for x > 0, exp(x) - 1 below: smooth, with negative outputs.",
    "gelu": "x * Phi(x): smooth ReLU used in transformers.",
    "silu": "x * sigmoid(x) (swish): smooth, slightly non-monotonic.",
    "sigmoid": "1 / (1 + exp(-x)): squashes to (0, 1); saturates and slows learning when deep.",
    "tanh": "Squashes to (-1, 1), centred on 0.",
    "softmax": "Turns the features into probabilities that sum to 1 (over channels for images).",
    "softplus": "log(1 + exp(x)): a smooth ReLU.",
    "linear": "The identity: no activation.",
}


def activation_module(name: str, negative_slope: float = 0.01, dim: int = -1) -> nn.Module:
    """The torch module of activation `name`; `dim` is the feature dimension (for softmax),
    counted with the batch dimension."""
    match name:
        case "relu":
            return nn.ReLU()
        case "leaky_relu":
            return nn.LeakyReLU(negative_slope)
        case "elu":
            return nn.ELU()
        case "gelu":
            return nn.GELU()
        case "silu":
            return nn.SiLU()
        case "sigmoid":
            return nn.Sigmoid()
        case "tanh":
            return nn.Tanh()
        case "softmax":
            return nn.Softmax(dim=dim)
        case "softplus":
            return nn.Softplus()
        case "linear":
            return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)}")


class LayerShapeError(ValueError):
    """A layer cannot take the shape it receives. The message says what it needs, in words that
    follow "layer 2 (conv2d) ..."; `hint` says what to change. `wants_rank` is the rank of
    input the layer needs (so the checker can say "remove the flatten before it")."""

    def __init__(self, msg: str, hint: str | None = None, wants_rank: int | None = None) -> None:
        super().__init__(msg if hint is None else f"{msg}: {hint}")
        self.text = msg
        self.hint = hint
        self.wants_rank = wants_rank


class LayerSpec(BaseModel):
    """Base of every layer type. Subclasses set `type: Literal["name"]` and override
    `output_shape`, `param_count` and `build`."""

    # Strict like the job spec (server.spec.job): `true` is not 1, "3" is not 3, no NaN.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    family: ClassVar[str] = "core"

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        # pydantic says "Extra inputs are not permitted"; a student needs the fields it has.
        if isinstance(data, dict):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_field", "{layer} has no field {field}; its fields are: {fields}",
                    {"layer": cls.layer_type(), "field": repr(unknown[0]),
                     "fields": ", ".join(cls.model_fields)},
                )
        return data

    @classmethod
    def layer_type(cls) -> str:
        """The `type` tag of this layer class."""
        return cls.model_fields["type"].default

    # What every layer answers, from the shape it receives (`previous` is the layer before it,
    # None for the first; only attention looks at it).

    def output_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        return 0

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        raise NotImplementedError

    def activation_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        """Numbers kept per sample for the backward pass (the memory estimate); the output by
        default, more for layers with big intermediates (attention weights, gates)."""
        return self.output_shape(shape).size

    def widths(self) -> dict[str, int]:
        """Sizes checked against the server's max_units (units, filters, width)."""
        return {}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        """Specs with an input shape they fit, for the tests every layer type goes through."""
        raise NotImplementedError


def init_field() -> Any:
    return Field(None, description="Initializer of this layer's weights; null: the model's init.")


def negative_slope_field() -> Any:
    return Field(0.01, ge=0.0, le=1.0, description="Slope below zero for leaky_relu.")


# Checks that several layer types share.

def need_numbers(shape: Shape) -> None:
    if shape.tokens is not None:
        raise LayerShapeError(
            f"needs numbers but gets {shape.describe()}", "add an embedding before it"
        )


def need_image(shape: Shape) -> None:
    need_numbers(shape)
    if shape.rank != 3:
        raise LayerShapeError(
            f"needs image input [channels, height, width] but gets {shape.describe()}",
            "it works on images only", wants_rank=3,
        )


def need_sequence(shape: Shape) -> None:
    need_numbers(shape)
    if shape.rank != 2:
        hint = ("it reads a sequence over time; use dense layers for flat input" if shape.rank == 1
                else "it reads sequences; use conv2d and pooling layers for images")
        raise LayerShapeError(
            f"needs a sequence [time, features] but gets {shape.describe()}", hint, wants_rank=2
        )


def need_vectors(shape: Shape) -> None:
    """Flat [features] or a sequence [time, features] (the layer acts on the last dimension)."""
    need_numbers(shape)
    if shape.rank not in (1, 2):
        raise LayerShapeError(
            f"needs flat input [features] or a sequence [time, features] but gets "
            f"{shape.describe()}", "add a flatten before it",
        )
