"""Networks of every family for the export tests: (id, model spec, data shape)."""

from __future__ import annotations

import torch

from server.nn.build import Network, build_model
from server.spec.job import ModelSpec
from server.spec.shapes import DataShape, Shape

POINTS = DataShape("points2d", "classification", Shape((3,)), 2, ("0", "1"))
IMAGES = DataShape("image", "classification", Shape((1, 8, 8)), 3, ("a", "b", "c"))
SERIES = DataShape("sequence", "regression", Shape((6, 2)))
TOKENS = DataShape("sequence", "classification", Shape((7,), tokens=11), 3, ("x", "y", "z"))
VECTORS = DataShape("sequence", "classification", Shape((5, 4)), 2, ("no", "yes"))

CASES: list[tuple[str, dict, DataShape]] = [
    ("mlp", {"layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dropout", "p": 0.3},
        {"type": "dense", "units": 4, "activation": "leaky_relu", "negative_slope": 0.2},
        {"type": "layernorm"},
        {"type": "dense", "units": 3, "activation": "sigmoid", "bias": False},
    ]}, POINTS),
    ("cnn", {"layers": [
        {"type": "conv2d", "filters": 4},
        {"type": "batchnorm"},
        {"type": "maxpool2d"},
        {"type": "conv2d", "filters": 3, "kernel_size": 2, "stride": 2, "activation": "tanh"},
        {"type": "activation", "activation": "softmax"},
        {"type": "conv2d", "filters": 2, "kernel_size": 1, "padding": "valid", "activation": "elu"},
        {"type": "avgpool2d", "pool_size": 2, "stride": 1},
        {"type": "flatten"},
        {"type": "dropout"},
        {"type": "dense", "units": 5, "activation": "gelu"},
    ]}, IMAGES),
    ("lstm-gru", {"layers": [
        {"type": "lstm", "units": 5, "return_sequences": True},
        {"type": "batchnorm"},
        {"type": "gru", "units": 4, "bidirectional": True, "num_layers": 2},
        {"type": "dense", "units": 3, "activation": "silu"},
    ]}, SERIES),
    ("rnn-pool", {"layers": [
        {"type": "rnn", "units": 3, "return_sequences": True, "nonlinearity": "relu",
         "bidirectional": True},
        {"type": "layernorm"},
        {"type": "lstm", "units": 4, "return_sequences": True, "num_layers": 2},
        {"type": "pool_sequence", "mode": "max"},
    ]}, SERIES),
    ("attention-tokens", {"layers": [
        {"type": "embedding", "dim": 8},
        {"type": "attention", "heads": 2, "positional": "learned"},
        {"type": "attention", "heads": 4, "causal": True},
        {"type": "pool_sequence", "mode": "mean"},
    ]}, TOKENS),
    ("attention-direct", {"layers": [
        {"type": "attention", "heads": 2, "d_model": 6},
        {"type": "pool_sequence", "mode": "last"},
    ]}, TOKENS),
    ("attention-vectors", {"layers": [
        {"type": "attention", "heads": 2, "d_model": 8, "residual": False, "norm": False},
        {"type": "dense", "units": 4, "activation": "softplus"},
        {"type": "pool_sequence", "mode": "mean"},
    ]}, VECTORS),
]


def trained_like(model: dict, data: DataShape, seed: int = 3) -> Network:
    """The network with every weight and running statistic moved off its initial value, so
    that an export that loses or mixes up a tensor shows."""
    network = build_model(ModelSpec.model_validate(model), data, seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.rand(tensor.shape, generator=generator) * 0.5
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise)
            else:
                tensor.add_(noise - 0.25)
    return network.eval()


def sample_inputs(data: DataShape, batch: int = 7, seed: int = 5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if data.input.tokens is not None:
        return torch.randint(0, data.input.tokens, (batch, *data.input.dims), generator=generator)
    return torch.randn((batch, *data.input.dims), generator=generator)
