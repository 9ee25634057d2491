"""Image layers: conv2d, maxpool2d, avgpool2d (spec and module). Input [channels, height, width]."""

from __future__ import annotations

from typing import Annotated, Literal

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
    need_image,
    negative_slope_field,
    one_of,
)
from server.spec.shapes import Shape


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class Conv(nn.Module):
    """Conv2d then activation."""

    def __init__(self, conv: nn.Conv2d, activation: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, channels, height, width)
        return self.activation(self.conv(x))  # (batch, filters, height', width')


PaddingName = Literal["same", "valid"]


class Conv2dSpec(LayerSpec):
    """2-D convolution: each filter slides over the image and gives one feature map."""

    family = "image"
    type: Literal["conv2d"] = "conv2d"
    filters: int = Field(..., ge=1, description="Number of filters (output channels).")
    kernel_size: int = Field(3, ge=1, le=32, description="Height and width of each filter.")
    stride: int = Field(1, ge=1, le=32, description="Step between filter positions.")
    padding: Annotated[
        PaddingName | Annotated[int, Field(ge=0, le=32)],
        one_of("padding", PaddingName, " or a number of pixels from 0 to 32"),
    ] = Field(
        "same", description="same: pad so that stride 1 keeps height and width; valid: no "
        "padding; a number: that many zeros on every side.",
    )
    activation: Activation = Field("relu", description="Applied to every value of the maps.")
    negative_slope: float = negative_slope_field()
    bias: bool = Field(True, description="Add a learned bias to each filter.")
    init: Initializer | None = init_field()

    def _pad(self) -> int:
        if self.padding == "same":
            return self.kernel_size // 2
        if self.padding == "valid":
            return 0
        return self.padding

    def _torch_padding(self) -> int | str:
        # torch's own "same" pads even kernels on one side; it exists for stride 1 only.
        return "same" if self.padding == "same" and self.stride == 1 else self._pad()

    def output_shape(self, shape: Shape) -> Shape:
        need_image(shape)
        c, h, w = shape.dims
        if self.padding == "same" and self.stride == 1:
            return Shape((self.filters, h, w))
        pad = self._pad()
        oh, ow = (_out_size(s, self.kernel_size, self.stride, pad) for s in (h, w))
        if oh < 1 or ow < 1:
            raise LayerShapeError(
                f"has kernel_size {self.kernel_size} but gets images of {h}x{w} "
                f"(padding {self.padding})",
                "use a smaller kernel_size, padding same, or fewer pooling layers before it",
            )
        return Shape((self.filters, oh, ow))

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        c = shape.dims[0]
        return self.filters * c * self.kernel_size**2 + (self.filters if self.bias else 0)

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        conv = nn.Conv2d(shape.dims[0], self.filters, self.kernel_size, self.stride,
                         self._torch_padding(), bias=self.bias)
        return Conv(conv, activation_module(self.activation, self.negative_slope, dim=1))

    def widths(self) -> dict[str, int]:
        return {"filters": self.filters}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(filters=4), Shape((1, 8, 8))),
                (cls(filters=2, kernel_size=2, stride=2, padding="same"), Shape((3, 7, 7))),
                (cls(filters=3, kernel_size=3, padding="valid", activation="tanh"),
                 Shape((2, 6, 5))),
                (cls(filters=2, kernel_size=2, padding=1, bias=False), Shape((1, 4, 4))),
                (cls(filters=2, kernel_size=4, activation="softmax"), Shape((2, 5, 5)))]


class _PoolSpec(LayerSpec):
    family = "image"
    pool_size: int = Field(2, ge=1, le=32, description="Height and width of each window.")
    stride: int | None = Field(None, ge=1, le=32, description="Step between windows; null: "
                               "pool_size (windows do not overlap).")

    def output_shape(self, shape: Shape) -> Shape:
        need_image(shape)
        c, h, w = shape.dims
        stride = self.stride or self.pool_size
        if h < self.pool_size or w < self.pool_size:
            raise LayerShapeError(
                f"has pool_size {self.pool_size} but gets images of {h}x{w}",
                "use a smaller pool_size or fewer pooling layers before it",
            )
        return Shape((c, _out_size(h, self.pool_size, stride, 0),
                      _out_size(w, self.pool_size, stride, 0)))

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(), Shape((2, 8, 8))), (cls(pool_size=3, stride=1), Shape((1, 5, 6)))]


class MaxPool2dSpec(_PoolSpec):
    """Keeps the largest value of each window: smaller maps, some shift tolerance."""

    type: Literal["maxpool2d"] = "maxpool2d"

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.MaxPool2d(self.pool_size, self.stride or self.pool_size)


class AvgPool2dSpec(_PoolSpec):
    """Averages each window: smaller, smoother maps."""

    type: Literal["avgpool2d"] = "avgpool2d"

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.AvgPool2d(self.pool_size, self.stride or self.pool_size)
