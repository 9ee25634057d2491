"""What the architecture drawing (web/static/js/views/arch*.js) is drawn from, checked against
PyTorch: the model check's per-layer parameter counts equal sum(p.numel()) of the built
module for every layer kind the drawing shows (a recurrent layer's count is gates x units x
(inputs + units + 2), as the drawing writes it), and image and sequence frames carry the flat
layers' outputs (`layer{i}.units`) it colours its units with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine import snapshot
from server.nn.build import build_model
from server.nn.check import check_model
from server.spec.job import JobSpec
from server.stream import wire
from server.train.trainer import Trainer

CNN = [{"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
       {"type": "maxpool2d", "pool_size": 2}, {"type": "flatten"},
       {"type": "dense", "units": 32, "activation": "relu"}]
DEEP_CNN = [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "batchnorm"},
            {"type": "avgpool2d"}, {"type": "conv2d", "filters": 16, "kernel_size": 2},
            {"type": "maxpool2d"}, {"type": "flatten"}, {"type": "dropout", "p": 0.1},
            {"type": "dense", "units": 12, "activation": "tanh"}]
ATTENTION = [{"type": "embedding", "dim": 16}, {"type": "attention", "heads": 2},
             {"type": "pool_sequence", "mode": "last"}]
ATTENTION_WIDE = [{"type": "embedding", "dim": 12},
                  {"type": "attention", "heads": 4, "d_model": 24, "positional": "learned"},
                  {"type": "layernorm"}, {"type": "pool_sequence"},
                  {"type": "dense", "units": 8, "activation": "relu"}]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

CASES = [
    ("digits", CNN), ("shapes", DEEP_CNN), ("recall", ATTENTION), ("recall", ATTENTION_WIDE),
    ("iris", [{"type": "dense", "units": 16, "activation": "relu"}]),
    *[("marker", [{"type": kind, "units": 16}]) for kind in GATES],
    ("sine", [{"type": "gru", "units": 5, "return_sequences": True, "bidirectional": True},
              {"type": "lstm", "units": 7, "num_layers": 2}]),
    ("recall", [{"type": "embedding", "dim": 8}, {"type": "rnn", "units": 6},
                {"type": "dense", "units": 4}]),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> DataRegistry:
    torch.set_num_threads(1)
    return DataRegistry(Path(tmp_path_factory.mktemp("uploads")), Settings())


def spec_of(dataset: str, layers: list[dict]) -> JobSpec:
    return JobSpec.model_validate({"dataset": {"name": dataset}, "model": {"layers": layers}})


@pytest.mark.parametrize(("dataset", "layers"), CASES)
def test_each_layers_drawn_count_is_pytorchs(registry, dataset, layers):
    spec = spec_of(dataset, layers)
    shape = registry.describe(spec.dataset)
    report = check_model(spec.model, shape, Settings(), batch_size=32)
    network = build_model(spec.model, shape, seed=0)
    torch_counts = [sum(p.numel() for p in layer.parameters()) for layer in network.layers]
    assert [r.parameters for r in report.layers] == torch_counts
    assert report.total_parameters == sum(p.numel() for p in network.parameters())
    assert len(report.layers) == len(layers) + 1 and report.layers[-1].appended


@pytest.mark.parametrize("kind", sorted(GATES))
def test_a_recurrent_layers_count_is_its_gates_formula(registry, kind):
    """The drawing writes "4 gates, 4×16×(1+16+2)" for an LSTM of 16 units on one feature."""
    spec = spec_of("marker", [{"type": kind, "units": 16}])
    network = build_model(spec.model, registry.describe(spec.dataset), seed=0)
    count = sum(p.numel() for p in network.layers[0].parameters())
    assert count == GATES[kind] * 16 * (1 + 16 + 2)
    assert {"lstm": 1216, "gru": 912, "rnn": 304}[kind] == count


def frame(registry, dataset: str, layers: list[dict]):
    spec = spec_of(dataset, layers)
    data = registry.load(spec.dataset)
    trainer = Trainer(spec, data)
    trainer.train_batches(3)
    header, arrays = wire.decode(snapshot.Snapshots().frame(trainer, data, {}))
    return trainer, data, header, arrays


def test_image_frames_carry_the_flat_layers_outputs_of_the_samples(registry):
    trainer, data, header, arrays = frame(registry, "digits", CNN)
    shapes = {m["name"]: tuple(m["shape"]) for m in header["arrays"]}
    assert shapes["layer0.feature_maps"] == (8, 4, 8, 8)
    assert shapes["layer1.feature_maps"] == (8, 4, 4, 4)
    assert shapes["layer2.units"] == (4, 64)  # flatten's 128, its first MAX_UNITS_SENT
    assert shapes["layer3.units"] == (4, 32) and shapes["layer4.units"] == (4, 10)
    model = trainer.model.eval()
    with torch.no_grad():
        x = torch.as_tensor(data.x_test[snapshot.sample_indices(data, 4)], dtype=torch.float32)
        _, captures = model(x, capture=True)
    np.testing.assert_allclose(arrays["layer4.units"], captures[4].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["layer3.units"], captures[3].numpy(), rtol=1e-5, atol=1e-6)


def test_sequence_frames_carry_pooled_and_output_units_beside_attention(registry):
    _, _, header, arrays = frame(registry, "recall", ATTENTION)
    shapes = {m["name"]: tuple(m["shape"]) for m in header["arrays"]}
    assert shapes["layer1.attention"] == (2, 5, 5)
    assert shapes["layer2.units"] == (4, 16) and shapes["layer3.units"] == (4, 8)
    assert "layer0.units" not in shapes  # the embedding's output is a sequence
    probs = np.exp(arrays["layer3.units"] - arrays["layer3.units"].max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, arrays["predictions"], atol=1e-5)
