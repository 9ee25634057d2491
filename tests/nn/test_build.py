"""build_model against hand-written PyTorch (same seed: the very same numbers), captures,
initializers and the stacking signature."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from server.config import Settings
from server.nn.build import build_model, signature
from server.nn.check import check_model
from server.spec.errors import SpecError
from server.spec.job import ModelSpec
from server.spec.shapes import DataShape, Shape

XOR = DataShape("points2d", "classification", Shape((2,)), 2)
IRIS = DataShape("tabular", "classification", Shape((4,)), 3)
DIGITS = DataShape("image", "classification", Shape((1, 8, 8)), 10)
SINE = DataShape("sequence", "regression", Shape((12, 1)))
RECALL = DataShape("sequence", "classification", Shape((10,), tokens=17), 8)


def reference_init(modules: list[nn.Module], seed: int, init=nn.init.xavier_uniform_) -> None:
    """The documented policy, by hand: weights in layer order from one generator, biases 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in modules:
            init(m.weight, generator=gen)
            nn.init.zeros_(m.bias)


def same_outputs_and_gradients(network: nn.Module, reference: nn.Module, x: torch.Tensor,
                               target: torch.Tensor, loss_fn) -> None:
    ours, theirs = network(x), reference(x)
    assert torch.equal(ours, theirs)
    loss_fn(ours, target).backward()
    loss_fn(theirs, target).backward()
    grads = [p.grad for p in network.parameters()]
    ref_grads = [p.grad for p in reference.parameters()]
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.equal(g, r)


def test_mlp_equals_hand_written_sequential():
    spec = ModelSpec(layers=[{"type": "dense", "units": 8, "activation": "tanh"},
                             {"type": "dense", "units": 6, "activation": "relu"}])
    network = build_model(spec, XOR, seed=7)
    reference = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 6), nn.ReLU(),
                              nn.Linear(6, 1))
    reference_init([reference[0], reference[2], reference[4]], seed=7)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    y = (x[:, :1] * x[:, 1:] > 0).float()
    bce = nn.functional.binary_cross_entropy_with_logits
    same_outputs_and_gradients(network, reference, x, y, bce)


def test_cnn_equals_hand_written_sequential():
    spec = ModelSpec(layers=[
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": "valid", "activation": "elu"},
        {"type": "flatten"},
        {"type": "dense", "units": 12, "activation": "gelu"},
    ], init="he_normal")
    network = build_model(spec, DIGITS, seed=3)
    reference = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ELU(), nn.Flatten(), nn.Linear(24, 12), nn.GELU(),
        nn.Linear(12, 10),
    )

    def he_normal(w, generator):
        return nn.init.kaiming_normal_(w, nonlinearity="relu", generator=generator)

    reference_init([reference[i] for i in (0, 3, 6, 8)], seed=3, init=he_normal)
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 3, 9, 1, 1])
    same_outputs_and_gradients(network, reference, x, y, nn.functional.cross_entropy)


def test_lstm_equals_hand_written_module():
    spec = ModelSpec(layers=[{"type": "lstm", "units": 5}], init="xavier_normal")
    network = build_model(spec, SINE, seed=4)
    lstm, head = nn.LSTM(1, 5, batch_first=True), nn.Linear(5, 1)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in lstm.named_parameters():  # weight_ih, weight_hh, bias_ih, bias_hh
            if name.startswith("weight"):
                nn.init.xavier_normal_(p, generator=gen)
            else:
                nn.init.zeros_(p)
        nn.init.xavier_normal_(head.weight, generator=gen)
        nn.init.zeros_(head.bias)

    class Reference(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = lstm, head

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    x = torch.randn(3, 12, 1, generator=torch.Generator().manual_seed(5))
    same_outputs_and_gradients(network, Reference(), x, torch.zeros(3, 1), nn.functional.mse_loss)


def test_same_seed_same_weights_and_the_global_generator_is_untouched():
    spec = ModelSpec(layers=[{"type": "conv2d", "filters": 2}, {"type": "flatten"},
                             {"type": "dropout"}, {"type": "dense", "units": 4}])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b, c = (build_model(spec, DIGITS, seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.layers[0].conv.weight, c.layers[0].conv.weight)


def test_parameter_count_matches_the_check():
    spec = ModelSpec(layers=[{"type": "embedding", "dim": 8},
                             {"type": "attention", "heads": 2, "positional": "learned"},
                             {"type": "gru", "units": 6, "bidirectional": True}])
    report = check_model(spec, RECALL, Settings(), batch_size=10)
    network = build_model(spec, RECALL, seed=0)
    assert report.total_parameters == sum(p.numel() for p in network.parameters())
    assert [r.parameters for r in report.layers] == [
        sum(p.numel() for p in layer.parameters()) for layer in network.layers]


def test_capture_gives_every_layer_and_attention_weights_per_head():
    spec = ModelSpec(layers=[{"type": "embedding", "dim": 8},
                             {"type": "attention", "heads": 4, "causal": True},
                             {"type": "pool_sequence", "mode": "mean"},
                             {"type": "dense", "units": 5, "activation": "sigmoid"}])
    network = build_model(spec, RECALL, seed=0).eval()
    x = torch.randint(0, 17, (3, 10), generator=torch.Generator().manual_seed(0))
    out, captures = network(x, capture=True)
    assert torch.equal(out, network(x))
    assert [tuple(c.shape) for c in captures] == [(3, *s.dims) for s in network.shapes] == [
        (3, 10, 8), (3, 10, 8), (3, 8), (3, 5), (3, 8)]
    assert [s.type for s in network.layer_specs] == ["embedding", "attention", "pool_sequence",
                                                     "dense", "dense"]
    assert ((captures[3] > 0) & (captures[3] < 1)).all()  # post-activation
    weights = network.attention_weights[1]
    assert weights.shape == (3, 4, 10, 10)  # (batch, heads, time, time)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 10))
    assert (weights.triu(1) == 0).all()  # causal: no step looks ahead
    assert not network.layers[1].keep_weights and network.layers[1].weights is None


def test_capture_gives_feature_maps():
    spec = ModelSpec(layers=[{"type": "conv2d", "filters": 3}, {"type": "flatten"}])
    network = build_model(spec, DIGITS, seed=0)
    _, captures = network(torch.randn(2, 1, 8, 8), capture=True)
    assert captures[0].shape == (2, 3, 8, 8) and (captures[0] >= 0).all()  # relu maps
    assert not captures[0].requires_grad


def test_zeros_shows_the_symmetry_problem_and_layers_override_the_model_init():
    spec = ModelSpec(layers=[{"type": "dense", "units": 4, "activation": "tanh", "init": "zeros"},
                             {"type": "dense", "units": 4, "init": "normal"}], init="he_uniform",
                     init_std=2.0)
    network = build_model(spec, XOR, seed=0)
    first, second, out = (layer.linear.weight for layer in network.layers)
    assert (first == 0).all()
    assert 1.0 < second.std().item() < 3.5
    bound = (6 / 4) ** 0.5  # he_uniform bound sqrt(6 / fan_in)
    assert out.abs().max() <= bound and out.abs().max() > 0


def test_initializer_scales():
    data = DataShape("tabular", "regression", Shape((400,)))
    for name, std in [("he_normal", (2 / 400) ** 0.5), ("lecun_normal", (1 / 400) ** 0.5),
                      ("xavier_normal", (2 / 800) ** 0.5)]:
        spec = ModelSpec(layers=[{"type": "dense", "units": 400, "init": name}])
        w = build_model(spec, data, seed=0).layers[0].linear.weight
        assert abs(w.std().item() / std - 1) < 0.02, name


def test_build_refuses_a_spec_that_does_not_fit():
    with pytest.raises(SpecError, match=r"layer 0 \(dense\) needs flat input"):
        build_model(ModelSpec(layers=[{"type": "dense", "units": 3}]), DIGITS, seed=0)


def test_signature_groups_same_shape_dense_networks():
    def sig(*layers, data=XOR):
        return signature(ModelSpec(layers=list(layers)), data)

    a = sig({"type": "dense", "units": 8, "activation": "tanh"})
    assert a == sig({"type": "dense", "units": 8, "activation": "tanh", "init": "zeros"})
    assert a != sig({"type": "dense", "units": 8, "activation": "relu"})
    assert a != sig({"type": "dense", "units": 7, "activation": "tanh"})
    assert a != sig({"type": "dense", "units": 8, "activation": "tanh"}, data=IRIS)
    assert hash(a)
    assert sig({"type": "conv2d", "filters": 2}, {"type": "flatten"}, data=DIGITS) is None
    assert sig({"type": "dropout"}) is None


def test_positional_encoding_only_where_the_input_is_tokens():
    def attention_of(*layers, data):
        network = build_model(ModelSpec(layers=list(layers)), data, seed=0)
        return next(m for m in network.layers if hasattr(m, "fixed_positional"))

    after_embedding = attention_of({"type": "embedding", "dim": 8}, {"type": "attention"},
                                   {"type": "pool_sequence"}, data=RECALL)
    assert after_embedding.fixed_positional.shape == (10, 8)
    assert "fixed_positional" not in after_embedding.state_dict()  # recomputed, not saved
    on_tokens = attention_of({"type": "attention", "d_model": 8, "positional": "learned"},
                             {"type": "pool_sequence"}, data=RECALL)
    assert on_tokens.embed.num_embeddings == 17 and on_tokens.positional.shape == (10, 8)
    on_floats = attention_of({"type": "attention", "d_model": 4}, {"type": "pool_sequence"},
                             data=SINE)
    assert on_floats.fixed_positional is None and on_floats.positional is None
    assert on_floats.project.in_features == 1  # (time, 1) projected to d_model 4


@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
                                  "lecun_normal", "normal", "zeros"])
def test_every_initializer_builds_every_weighted_layer(name):
    from server.spec.layers import INITIALIZERS

    assert name in INITIALIZERS
    spec = ModelSpec(layers=[{"type": "conv2d", "filters": 2}, {"type": "batchnorm"},
                             {"type": "flatten"}, {"type": "dense", "units": 3}], init=name)
    network = build_model(spec, DIGITS, seed=0)
    conv, norm = network.layers[0].conv, network.layers[1]
    assert (conv.weight == 0).all() == (name == "zeros")
    assert (conv.bias == 0).all() and (norm.weight == 1).all() and (norm.bias == 0).all()
    assert (norm.running_var == 1).all()
