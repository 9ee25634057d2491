"""Sequence layers over time: rnn, lstm, gru and pool_sequence (spec and module).

Input [time, features]; a recurrent layer gives [time, units * directions] with
return_sequences, else [units * directions] (the last state of each direction).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from server.spec.layers.base import Initializer, LayerSpec, init_field, need_sequence, one_of
from server.spec.shapes import Shape


class Recurrent(nn.Module):
    """A torch RNN/LSTM/GRU (batch first) that returns the whole sequence or the final state."""

    def __init__(self, rnn: nn.RNNBase, return_sequences: bool) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences
        self.directions = 2 if rnn.bidirectional else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, features)
        out, state = self.rnn(x)  # out: (batch, time, units * dirs)
        if self.return_sequences:
            return out
        h = state[0] if isinstance(state, tuple) else state  # (layers * dirs, batch, units)
        last = h[-self.directions:]  # (dirs, batch, units): the top layer's final states
        return torch.cat(list(last), dim=-1)  # (batch, units * dirs)


class _RecurrentSpec(LayerSpec):
    family = "sequence"
    gates: ClassVar[int] = 1
    units: int = Field(..., ge=1, description="Size of the hidden state.")
    return_sequences: bool = Field(
        False, description="true: give the state at every time step [time, units] (to stack "
        "another sequence layer); false: only the last [units].",
    )
    bidirectional: bool = Field(False, description="Also read the sequence backwards; doubles "
                                "the output features.")
    num_layers: int = Field(1, ge=1, le=8, description="Recurrent layers stacked inside this one.")
    init: Initializer | None = init_field()

    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def output_shape(self, shape: Shape) -> Shape:
        need_sequence(shape)
        width = self.units * self._dirs()
        return Shape((shape.dims[0], width)) if self.return_sequences else Shape((width,))

    def param_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        g, u, dirs = self.gates, self.units, self._dirs()
        total, features = 0, shape.dims[-1]
        for _ in range(self.num_layers):
            # torch keeps two bias vectors (input and hidden) per gate.
            total += dirs * g * u * (features + u + 2)
            features = u * dirs
        return total

    def activation_count(self, shape: Shape, previous: LayerSpec | None = None) -> int:
        time = shape.dims[0]
        return time * self.units * self._dirs() * self.num_layers * (self.gates + 1)

    def _rnn(self, features: int) -> nn.RNNBase:
        raise NotImplementedError

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return Recurrent(self._rnn(shape.dims[-1]), self.return_sequences)

    def widths(self) -> dict[str, int]:
        return {"units": self.units}

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(units=3), Shape((5, 1))),
                (cls(units=4, return_sequences=True, bidirectional=True, num_layers=2),
                 Shape((6, 2))),
                (cls(units=2, bidirectional=True), Shape((4, 3)))]


Nonlinearity = Literal["tanh", "relu"]


class RNNSpec(_RecurrentSpec):
    """Simple recurrent layer: h = tanh(W x + U h_previous + b) at every time step."""

    type: Literal["rnn"] = "rnn"
    nonlinearity: Annotated[Nonlinearity, one_of("nonlinearity", Nonlinearity)] = Field(
        "tanh", description="Of the state update."
    )

    def _rnn(self, features: int) -> nn.RNNBase:
        return nn.RNN(features, self.units, self.num_layers, nonlinearity=self.nonlinearity,
                      batch_first=True, bidirectional=self.bidirectional)


class LSTMSpec(_RecurrentSpec):
    """Long short-term memory: gates decide what to keep, forget and output at each step."""

    gates = 4
    type: Literal["lstm"] = "lstm"

    def _rnn(self, features: int) -> nn.RNNBase:
        return nn.LSTM(features, self.units, self.num_layers, batch_first=True,
                       bidirectional=self.bidirectional)


class GRUSpec(_RecurrentSpec):
    """Gated recurrent unit: an LSTM with fewer gates and no separate cell state."""

    gates = 3
    type: Literal["gru"] = "gru"

    def _rnn(self, features: int) -> nn.RNNBase:
        return nn.GRU(features, self.units, self.num_layers, batch_first=True,
                      bidirectional=self.bidirectional)


class PoolSequence(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, time, features)
        if self.mode == "last":
            return x[:, -1]  # (batch, features)
        if self.mode == "mean":
            return x.mean(dim=1)  # (batch, features)
        return x.amax(dim=1)  # (batch, features)


PoolMode = Literal["last", "mean", "max"]


class PoolSequenceSpec(LayerSpec):
    """Turns a sequence [time, features] into one vector [features]: the last step, the mean or
    the maximum over time (after attention or a recurrent layer with return_sequences)."""

    family = "sequence"
    type: Literal["pool_sequence"] = "pool_sequence"
    mode: Annotated[PoolMode, one_of("mode", PoolMode)] = Field(
        "mean", description="How time is reduced."
    )

    def output_shape(self, shape: Shape) -> Shape:
        need_sequence(shape)
        return Shape(shape.dims[1:])

    def build(self, shape: Shape, previous: LayerSpec | None = None) -> nn.Module:
        return PoolSequence(self.mode)

    @classmethod
    def examples(cls) -> list[tuple[LayerSpec, Shape]]:
        return [(cls(mode=m), Shape((5, 3))) for m in ("last", "mean", "max")]
