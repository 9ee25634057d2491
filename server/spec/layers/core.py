"""Core layers: dense, activation, dropout, batchnorm, layernorm, flatten (spec and module)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from server.spec.layers.base import (
    Activation,
    Initializer,
    LayerShapeError,
    LayerSpec,
    activation_module,
    init_field,
    need_numbers,
    need_vectors,
    negative_slope_field,
)
from server.spec.shapes import Shape


def _feature_dim(shape: Shape) -> int:
    """The dimension softmax and norms act on, counted with the batch dimension: channels for
    images, the last one otherwise."""
    return 1 if shape.rank == 3 else -1


class Dense(nn.Module):
    """Linear then activation; on a sequence it acts on every time step."""

    def __init__(self, features: int, units: int, bias: bool, activation: nn.Module) -> None:
        super().__init__()
        self.linear = nn.Linear(features, units, bias=bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, [time,] features)
        return self.activation(self.linear(x))  # (batch, [time,] units)


class DenseSpec(LayerSpec):
    """Fully connected layer: every output unit sees every input feature."""

    type: Literal["dense"] = "dense"
    units: int = Field(..., ge=1, description="Number of neurons (output features).")
    activation: Activation = Field("relu", description="Applied to each unit's weighted sum.")
    negative_slope: float = negative_slope_field()
    bias: bool = Field(True, description="Add a learned bias to each unit.")
    init: Initializer | None = init_field()

    def output_shape(self, shape: Shape) -> Shape:
        need_vectors(shape)
        return Shape((*shape.dims[:-1], self.units))

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        return shape.dims[-1] * self.units + (self.units if self.bias else 0)

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        act = activation_module(self.activation, self.negative_slope)
        return Dense(shape.dims[-1], self.units, self.bias, act)

    def widths(self) -> dict[str, int]:
        return {"units": self.units}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(units=3, activation="tanh"), Shape((5,))),
                (cls(units=4, activation="leaky_relu", negative_slope=0.2, bias=False),
                 Shape((6, 2)))]


class ActivationSpec(LayerSpec):
    """An activation on its own (after a layer with activation linear, or after batchnorm)."""

    type: Literal["activation"] = "activation"
    activation: Activation = Field("relu", description="The function applied to every value.")
    negative_slope: float = negative_slope_field()

    def output_shape(self, shape: Shape) -> Shape:
        need_numbers(shape)
        return shape

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return activation_module(self.activation, self.negative_slope, _feature_dim(shape))

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(activation=a), Shape((4,))) for a in ("relu", "softmax", "gelu")] + [
            (cls(activation="softmax"), Shape((3, 4, 4)))]


class DropoutSpec(LayerSpec):
    """Sets a random share p of its inputs to zero while training (and scales the rest)."""

    type: Literal["dropout"] = "dropout"
    p: float = Field(0.5, ge=0.0, lt=1.0, description="Probability of dropping each value.")

    def output_shape(self, shape: Shape) -> Shape:
        need_numbers(shape)
        return shape

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.Dropout(self.p)

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(p=0.2), Shape((8,))), (cls(), Shape((2, 4, 4)))]


class SequenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the features of a sequence (torch wants them in dimension 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, features)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)  # (batch, time, features)


class BatchNormSpec(LayerSpec):
    """Normalises each feature (each channel for images) over the batch, then scales and shifts."""

    type: Literal["batchnorm"] = "batchnorm"
    momentum: float = Field(0.1, gt=0.0, le=1.0, description="Weight of the newest batch in the "
                            "running statistics used for evaluation.")
    eps: float = Field(1e-5, gt=0.0, le=1.0, description="Added to the variance for stability.")

    def output_shape(self, shape: Shape) -> Shape:
        need_numbers(shape)
        return shape

    def _features(self, shape: Shape) -> int:
        return shape.dims[0] if shape.rank == 3 else shape.dims[-1]

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        return 2 * self._features(shape)

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        n = self._features(shape)
        if shape.rank == 3:
            return nn.BatchNorm2d(n, eps=self.eps, momentum=self.momentum)
        if shape.rank == 2:
            return SequenceBatchNorm(n, eps=self.eps, momentum=self.momentum)
        return nn.BatchNorm1d(n, eps=self.eps, momentum=self.momentum)

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(), Shape((5,))), (cls(), Shape((3, 4, 4))), (cls(momentum=0.5), Shape((6, 2)))]


class LayerNormSpec(LayerSpec):
    """Normalises each sample's features (all of an image's values), then scales and shifts."""

    type: Literal["layernorm"] = "layernorm"
    eps: float = Field(1e-5, gt=0.0, le=1.0, description="Added to the variance for stability.")

    def output_shape(self, shape: Shape) -> Shape:
        need_numbers(shape)
        return shape

    def _normalized(self, shape: Shape) -> tuple[int, ...]:
        return shape.dims if shape.rank == 3 else shape.dims[-1:]

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        return 2 * Shape(self._normalized(shape)).size

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.LayerNorm(list(self._normalized(shape)), eps=self.eps)

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(), Shape((5,))), (cls(), Shape((2, 3, 3))), (cls(), Shape((6, 4)))]


class FlattenSpec(LayerSpec):
    """Lays an image or a sequence out as one flat vector of features (before dense layers)."""

    type: Literal["flatten"] = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        if shape.tokens is not None:
            raise LayerShapeError(
                f"needs numbers but gets {shape.describe()}",
                "add an embedding before it (token ids are already flat)",
            )
        return Shape((shape.size,))

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.Flatten()

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(), Shape((2, 4, 4))), (cls(), Shape((6, 3))), (cls(), Shape((7,)))]
