"""Token and attention layers: embedding and multi-head self-attention (spec and module).

`embedding` turns token ids [time] into vectors [time, dim]. `attention` takes a sequence
[time, features] (projected to `d_model` when the widths differ) or token ids (embedded to
`d_model` itself) and gives [time, d_model]. Positional encoding is added when the attention
reads tokens: its input is token ids, or the layer just before it is an embedding. With
`keep_weights` set, the module keeps its last attention weights (batch, heads, time, time) in
`weights` for the stream to read.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from server.spec.layers.base import (
    Initializer,
    LayerShapeError,
    LayerSpec,
    init_field,
    need_numbers,
    one_of,
)
from server.spec.shapes import Shape


class EmbeddingSpec(LayerSpec):
    """Looks up a learned vector for every token id: [time] token ids -> [time, dim]."""

    family = "sequence"
    type: Literal["embedding"] = "embedding"
    dim: int = Field(16, ge=1, description="Length of each token's vector.")
    init: Initializer | None = init_field()

    def output_shape(self, shape: Shape) -> Shape:
        if shape.tokens is None:
            raise LayerShapeError(
                f"needs token ids [time] but gets {shape.describe()}",
                "embeddings are for token sequence data sets; remove it",
            )
        return Shape((*shape.dims, self.dim))

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        return (shape.tokens or 0) * self.dim

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return nn.Embedding(shape.tokens or 0, self.dim)

    def widths(self) -> dict[str, int]:
        return {"dim": self.dim}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(dim=4), Shape((6,), tokens=10))]


def sinusoidal(time: int, width: int) -> torch.Tensor:
    """The fixed positional encoding of "Attention is all you need": (time, width)."""
    position = torch.arange(time, dtype=torch.float32)[:, None]  # (time, 1)
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(time, width)  # (time, width)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate[: width // 2])
    return pe


class SelfAttention(nn.Module):
    """Multi-head self-attention with optional token embedding, input projection, positional
    encoding, causal mask, residual connection and layer norm."""

    def __init__(self, spec: AttentionSpec, shape: Shape, positional: str) -> None:
        super().__init__()
        d, time = spec.width(shape), shape.dims[0]
        self.heads, self.causal, self.residual = spec.heads, spec.causal, spec.residual
        self.embed = nn.Embedding(shape.tokens, d) if shape.tokens is not None else None
        features = shape.dims[-1] if shape.tokens is None else d
        self.project = nn.Linear(features, d) if features != d else None
        self.positional = nn.Parameter(torch.zeros(time, d)) if positional == "learned" else None
        self.register_buffer(
            "fixed_positional", sinusoidal(time, d) if positional == "sinusoidal" else None,
            persistent=False,
        )
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))
        self.norm = nn.LayerNorm(d) if spec.norm else None
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time) ids or (batch, time, f)
        if self.embed is not None:
            x = self.embed(x)  # (batch, time, d)
        elif self.project is not None:
            x = self.project(x)  # (batch, time, d)
        if self.positional is not None:
            x = x + self.positional  # (batch, time, d)
        if self.fixed_positional is not None:
            x = x + self.fixed_positional  # (batch, time, d)
        b, t, d = x.shape
        hd = d // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, hd).transpose(1, 2)  # (batch, heads, time, head_dim)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # (batch, heads, time, time)
        if self.causal:
            future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # (time, time)
            scores = scores.masked_fill(future, float("-inf"))
        weights = scores.softmax(dim=-1)  # (batch, heads, time, time)
        if self.keep_weights:
            self.weights = weights.detach()
        y = (weights @ v).transpose(1, 2).reshape(b, t, d)  # (batch, time, d)
        y = self.out(y)  # (batch, time, d)
        if self.residual:
            y = x + y
        if self.norm is not None:
            y = self.norm(y)
        return y  # (batch, time, d)


Positional = Literal["sinusoidal", "learned", "none"]


class AttentionSpec(LayerSpec):
    """Multi-head self-attention: every time step looks at every other (or, causal, at earlier
    ones) and mixes their values by learned relevance; each head learns its own pattern."""

    family = "sequence"
    type: Literal["attention"] = "attention"
    heads: int = Field(2, ge=1, le=64, description="Attention heads; must divide d_model.")
    d_model: int | None = Field(
        None, ge=1, description="Model width (queries, keys, values, output); null: the input's "
        "features (32 for token ids). Input of another width is projected to it.",
    )
    causal: bool = Field(False, description="Each step sees only itself and earlier steps.")
    residual: bool = Field(True, description="Add the input to the attention's output.")
    norm: bool = Field(True, description="Layer norm after the (residual) sum.")
    positional: Annotated[Positional, one_of("positional", Positional)] = Field(
        "sinusoidal", description="Position information added to token vectors (when the input "
        "is token ids or comes straight from an embedding).",
    )
    init: Initializer | None = init_field()

    def width(self, shape: Shape) -> int:
        if self.d_model is not None:
            return self.d_model
        return 32 if shape.tokens is not None else shape.dims[-1]

    def positional_kind(self, shape: Shape, previous: LayerSpec | None) -> str:
        from_tokens = shape.tokens is not None or isinstance(previous, EmbeddingSpec)
        return self.positional if from_tokens else "none"

    def output_shape(self, shape: Shape) -> Shape:
        if shape.tokens is None:
            need_numbers(shape)
            if shape.rank != 2:
                raise LayerShapeError(
                    f"needs a sequence [time, features] or token ids [time] but gets "
                    f"{shape.describe()}",
                    "attention works on sequences; use dense layers for flat input"
                    if shape.rank == 1 else "attention works on sequences, not images",
                    wants_rank=2,
                )
        d = self.width(shape)
        if d % self.heads:
            divisors = [n for n in range(1, min(d, 64) + 1) if d % n == 0]
            raise LayerShapeError(
                f"has d_model {d} that {self.heads} heads do not divide",
                "choose heads that divide it (" + ", ".join(map(str, divisors)) + ") or change "
                "d_model",
            )
        return Shape((shape.dims[0], d))

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        d, time = self.width(shape), shape.dims[0]
        n = 4 * (d * d + d)  # query, key, value, out
        if shape.tokens is not None:
            n += shape.tokens * d
        elif shape.dims[-1] != d:
            n += shape.dims[-1] * d + d
        if self.positional_kind(shape, previous) == "learned":
            n += time * d
        if self.norm:
            n += 2 * d
        return n

    def activation_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        d, time = self.width(shape), shape.dims[0]
        return self.heads * time * time + 6 * time * d

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return SelfAttention(self, shape, self.positional_kind(shape, previous))

    def widths(self) -> dict[str, int]:
        return {"d_model": self.d_model} if self.d_model is not None else {}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(heads=2), Shape((5, 4))),
                (cls(heads=2, d_model=8, causal=True, positional="learned"), Shape((6,), 11)),
                (cls(heads=1, d_model=6, residual=False, norm=False), Shape((3, 2)))]
