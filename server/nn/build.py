"""build_model: a checked model spec plus a data set's shape -> `Network`, a torch module.

`Network.forward(x)` gives the outputs (batch, output_units); `forward(x, capture=True)` also
gives every layer's output (per-neuron activations, conv feature maps) and fills
`attention_weights` (batch, heads, time, time) per attention layer, in the same pass: the
stream reads what it draws without a second model.

Batched stepping (later, not built here): `signature(model, data)` is a hashable description
of a dense-only network. Jobs whose signatures are equal have weights of identical shapes, so
the trainer can stack each layer's weights into (jobs, in, out) tensors and step the whole
group as one model with `torch.baddbmm` (each job keeping its own data, optimizer state and
learning rate); None means the model has layers that do not stack (conv, recurrent, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from server.nn.check import PlannedLayer, plan_model
from server.nn.init import init_layer
from server.spec.job import ModelSpec
from server.spec.layers.attention import SelfAttention
from server.spec.layers.core import ActivationSpec, DenseSpec
from server.spec.shapes import DataShape


class Network(nn.Module):
    """The layers of a spec in order, the appended output layer last.

    layer_specs: the spec of each layer; shapes: each layer's output shape (per sample);
    input_shape and data: what the data set feeds in.
    """

    def __init__(self, plans: list[PlannedLayer], data: DataShape) -> None:
        super().__init__()
        self.layers = nn.ModuleList(p.spec.build(p.input, p.previous) for p in plans)
        self.layer_specs = [p.spec for p in plans]
        self.shapes = [p.output for p in plans]
        self.input_shape = data.input
        self.data = data
        self.attention_weights: dict[int, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, capture: bool = False):
        """x: (batch, *input dims), float, or int64 token ids (batch, time).
        Returns the output (batch, output_units); with capture, `(output, captures)` where
        captures[i] is layer i's output, detached."""
        if not capture:
            for layer in self.layers:
                x = layer(x)
            return x
        captures: list[torch.Tensor] = []
        self.attention_weights = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, SelfAttention):
                layer.keep_weights = True
                try:
                    x = layer(x)
                finally:
                    layer.keep_weights = False
                self.attention_weights[i] = layer.weights  # (batch, heads, time, time)
                layer.weights = None
            else:
                x = layer(x)
            captures.append(x.detach())
        return x, captures


def build_model(model: ModelSpec, data: DataShape, seed: int) -> Network:
    """The torch module of `model` for `data`, weights drawn from `seed` (same seed, same
    weights, bit for bit). Raises SpecError when the layers do not fit the data; the server's
    limits are `check_model`'s job and should be checked first."""
    plans = plan_model(model, data)
    # Module constructors draw their default weights from the global generator: fork it so that
    # building a model never moves the random state of whoever calls us.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = Network(plans, data)
    generator = torch.Generator().manual_seed(seed)
    for plan, layer in zip(plans, network.layers, strict=True):
        init_layer(layer, getattr(plan.spec, "init", None) or model.init, model.init_std, generator)
    return network


def signature(model: ModelSpec, data: DataShape) -> tuple | None:
    """A hashable key equal for dense-only models whose weights have the same shapes and the
    same activations (so they can be stepped as one stacked model); None for other models."""
    if data.input.rank != 1 or data.input.tokens is not None:
        return None
    plans = plan_model(model, data)
    layers = []
    for p in plans:
        if isinstance(p.spec, DenseSpec):
            layers.append(("dense", p.input.dims[0], p.spec.units, p.spec.bias,
                           p.spec.activation, p.spec.negative_slope))
        elif isinstance(p.spec, ActivationSpec):
            layers.append(("activation", p.spec.activation, p.spec.negative_slope))
        else:
            return None
    return ("dense_stack", data.input.dims[0], tuple(layers))
