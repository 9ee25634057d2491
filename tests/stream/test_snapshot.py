"""What a snapshot holds for each kind of data, from a real Trainer (no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine import samples, snapshot
from server.spec.job import JobSpec
from server.stream import wire
from server.train.trainer import Trainer

B = snapshot.BOUNDARY
SNAPSHOTS = snapshot.Snapshots()  # one engine's frame maker, shared by these tests


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> DataRegistry:
    torch.set_num_threads(1)
    return DataRegistry(Path(tmp_path_factory.mktemp("uploads")), Settings())


def trained(registry, dataset: dict, layers: list[dict], batches: int = 5):
    spec = JobSpec.model_validate({"dataset": dataset, "model": {"layers": layers}})
    data = registry.load(spec.dataset)
    trainer = Trainer(spec, data)
    trainer.train_batches(batches)
    return trainer, data


def decode(trainer, data):
    return wire.decode(SNAPSHOTS.frame(trainer, data, {"job_id": "j"}))


def shapes(header: dict) -> dict[str, tuple]:
    return {m["name"]: tuple(m["shape"]) for m in header["arrays"]}


def test_points_xor_every_neuron_heatmap_boundary_weights_histograms(registry):
    trainer, data = trained(registry, {"name": "xor", "features": ["x1", "x2", "x1*x2"]},
                            [{"type": "dense", "units": 5, "activation": "tanh"}])
    header, arrays = decode(trainer, data)
    s = shapes(header)
    assert header["kind"] == "points2d" and header["output_transform"] == "sigmoid"
    assert header["job_id"] == "j" and header["step"] == 5 and header["weights"] is True
    assert s["input.heatmap"] == (3, 20, 20)
    assert s["layer0.heatmap"] == (5, 20, 20) and s["layer1.heatmap"] == (1, 20, 20)
    assert s["output.boundary"] == (1, B, B)
    assert s["layer0.weight"] == (5, 3) and s["layer0.bias"] == (5,)
    assert s["layer1.weight"] == (1, 5)
    np.testing.assert_array_equal(
        arrays["layer0.weight"], trainer.model.layers[0].linear.weight.detach().numpy())
    assert arrays["layer0.weight_hist"].sum() == 5 * 3 + 5
    assert arrays["layer0.grad_hist"].sum() == 5 * 3 + 5
    # the neuron heatmaps are tanh outputs; the thumbnail matches a direct forward pass
    xy = samples.grid_xy(data.domain, 20)
    expected = torch.tanh(trainer.model.layers[0].linear(
        torch.as_tensor(data.features_of(xy)))).detach().numpy().T.reshape(5, 20, 20)
    got = wire.values(header, arrays, "layer0.heatmap")
    assert np.abs(got - expected).max() < 2.0 / 255 + 1e-5
    assert header["seq"] + 1 == wire.decode(SNAPSHOTS.frame(trainer, data))[0]["seq"]


def test_points_circle_boundary_learns_the_circle(registry):
    trainer, data = trained(registry, {"name": "circle", "features": ["x1^2", "x2^2"]},
                            [{"type": "dense", "units": 3, "activation": "tanh"}], batches=0)
    trainer.spec.training.optimizer.learning_rate = 0.1
    header, arrays = decode(trainer, data)
    before = wire.values(header, arrays, "output.boundary")[0]
    for _ in range(30):
        trainer.train_epoch()
    header, arrays = decode(trainer, data)
    after = wire.values(header, arrays, "output.boundary")[0]  # (B, B) probabilities
    assert np.abs(after - before).max() > 0.1
    centre, corner = after[B // 2, B // 2], after[0, 0]
    assert abs(centre - corner) > 0.5  # inside and outside the circle differ


def test_grid_features_are_computed_once_per_job(registry, monkeypatch):
    trainer, data = trained(registry, {"name": "xor"}, [{"type": "dense", "units": 2}])
    calls = []
    original = type(data).features_of
    monkeypatch.setattr(type(data), "features_of",
                        lambda self, xy: calls.append(len(xy)) or original(self, xy))
    for _ in range(3):
        SNAPSHOTS.frame(trainer, data)
    assert sorted(calls) == [20 * 20, B * B]


def test_multiclass_points_boundary_has_one_map_per_class(registry):
    trainer, data = trained(registry, {"name": "blobs"}, [{"type": "dense", "units": 4}])
    header, arrays = decode(trainer, data)
    assert header["output_transform"] == "softmax"
    boundary = wire.values(header, arrays, "output.boundary")  # (3, B, B)
    assert boundary.shape == (3, B, B)
    np.testing.assert_allclose(boundary.sum(axis=0), 1.0, atol=0.02)


def test_images_digits_conv2d_filters_feature_maps_predictions_confusion(registry):
    trainer, data = trained(registry, {"name": "digits"}, [
        {"type": "conv2d", "filters": 6, "kernel_size": 3, "padding": 1},
        {"type": "maxpool2d"}, {"type": "flatten"}, {"type": "dense", "units": 16}])
    header, arrays = decode(trainer, data)
    s = shapes(header)
    assert header["kind"] == "image" and header["filters_layer"] == 0
    assert s["filters"] == (6, 1, 3, 3)
    assert s["layer0.feature_maps"] == (6, 4, 8, 8)  # (channels, samples, h, w)
    assert s["layer1.feature_maps"] == (6, 4, 4, 4)
    assert s["predictions"] == (16, 10)
    np.testing.assert_allclose(arrays["predictions"].sum(axis=1), 1.0, atol=1e-5)
    confusion = arrays["confusion"]
    assert confusion.shape == (10, 10)
    assert confusion.sum() == min(len(data.x_test), snapshot.CONFUSION_MAX)
    np.testing.assert_array_equal(confusion.sum(axis=1)[:3],
                                  np.bincount(data.y_test[:2000], minlength=10)[:3])
    described = samples.describe(data)
    assert len(described["samples"]["images"]) == 4 and len(described["test_grid"]["labels"]) == 16
    assert np.array(described["samples"]["images"]).shape == (4, 1, 8, 8)
    # the samples of the feature maps are those of `describe`: one of each of the first classes
    assert described["samples"]["labels"] == [0, 1, 2, 3]
    assert "layer0.weight_hist" in arrays and "layer3.grad_hist" in arrays


def test_images_dense_first_layer_weights_are_drawn_as_filters(registry):
    trainer, data = trained(registry, {"name": "digits"},
                            [{"type": "flatten"}, {"type": "dense", "units": 12}])
    header, arrays = decode(trainer, data)
    assert header["filters_layer"] == 1 and arrays["filters"].shape == (12, 1, 8, 8)


def test_sequence_lstm_predictions_and_hidden_states_over_time(registry):
    trainer, data = trained(registry, {"name": "sine"}, [{"type": "lstm", "units": 6}])
    header, arrays = decode(trainer, data)
    s = shapes(header)
    assert header["kind"] == "sequence" and header["output_transform"] == "identity"
    assert s["predictions"] == (4, 1)
    time_steps = data.x_test.shape[1]
    assert s["layer0.hidden"] == (time_steps, 6)
    assert np.abs(arrays["layer0.hidden"]).max() <= 1.0  # h = o * tanh(c)
    assert s["layer0.weight_ih_l0"] == (24, 1)
    described = samples.describe(data)
    assert len(described["samples"]["inputs"]) == 4 and len(described["samples"]["targets"]) == 4


def test_sequence_attention_weights_per_head(registry):
    trainer, data = trained(registry, {"name": "recall"},
                            [{"type": "attention", "heads": 2, "d_model": 8},
                             {"type": "pool_sequence"}])
    header, arrays = decode(trainer, data)
    time_steps = data.x_test.shape[1]
    attention = arrays["layer0.attention"]
    assert attention.shape == (2, time_steps, time_steps)  # (heads, time, time)
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, atol=1e-5)
    assert header["output_transform"] == "softmax"
    assert arrays["predictions"].shape == (4, data.shape.num_classes)


def test_frame_leaves_training_mode_and_gradients_alone(registry):
    trainer, data = trained(registry, {"name": "xor"},
                            [{"type": "dense", "units": 4}, {"type": "dropout", "p": 0.5}])
    grads = [p.grad.clone() for p in trainer.model.parameters()]
    assert trainer.model.training
    SNAPSHOTS.frame(trainer, data)
    assert trainer.model.training
    for before, p in zip(grads, trainer.model.parameters(), strict=True):
        assert torch.equal(before, p.grad)


def test_big_models_send_histograms_but_not_every_weight(registry):
    trainer, data = trained(registry, {"name": "digits"},
                            [{"type": "flatten"}, {"type": "dense", "units": 1100}], batches=1)
    header, arrays = decode(trainer, data)
    assert header["weights"] is False
    assert "layer1.weight" not in arrays and "layer1.weight_hist" in arrays
    assert arrays["layer1.weight_hist"].sum() == 64 * 1100 + 1100


def test_tabular_iris_predictions_for_the_fixed_samples(registry):
    trainer, data = trained(registry, {"name": "iris"}, [{"type": "dense", "units": 6}])
    header, arrays = decode(trainer, data)
    assert header["kind"] == "tabular"
    assert arrays["predictions"].shape == (4, 3)
    np.testing.assert_allclose(arrays["predictions"].sum(axis=1), 1.0, atol=1e-5)
    described = samples.describe(data)
    assert np.array(described["samples"]["inputs"]).shape == (4, 4)
    assert described["samples"]["targets"][:3] == [0, 1, 2]


def test_token_sequences_describe_their_token_names(registry):
    from server.spec.job import DatasetSpec

    dataset = registry.load(DatasetSpec(name="recall", params={"keys": 3, "values": 4, "pairs": 2}))
    described = samples.describe(dataset)
    # one name per token id: 12 key-value tokens A0..C3, then the questions A? B? C?
    assert described["token_names"] == [f"{k}{v}" for k in "ABC" for v in range(4)] + [
        "A?", "B?", "C?"]
    assert len(described["token_names"]) == dataset.shape.input.tokens
    assert "token_names" not in samples.describe(registry.load(DatasetSpec(name="sine")))


@pytest.mark.parametrize("dataset, layers", [
    ({"name": "iris"}, [{"type": "dense", "units": 6}]),
    ({"name": "marker"}, [{"type": "gru", "units": 6}]),
    ({"name": "blobs"}, [{"type": "dense", "units": 4}]),
    ({"name": "xor"}, [{"type": "dense", "units": 4}]),
])
def test_every_classification_frame_has_the_test_confusion_matrix(registry, dataset, layers):
    trainer, data = trained(registry, dataset, layers)
    header, arrays = decode(trainer, data)
    # the oracle: the trainer's own test confusion matrix for the same weights
    expected = np.array(trainer.evaluate()["test_confusion_matrix"])
    classes = data.shape.num_classes
    assert arrays["confusion"].shape == (classes, classes)
    np.testing.assert_array_equal(arrays["confusion"], expected)


def test_regression_frames_have_no_confusion_matrix(registry):
    trainer, data = trained(registry, {"name": "sine"}, [{"type": "lstm", "units": 4}])
    _, arrays = decode(trainer, data)
    assert "confusion" not in arrays


def test_each_engine_keeps_its_own_contexts_and_budget(registry):
    trainer, data = trained(registry, {"name": "xor"}, [{"type": "dense", "units": 2}])
    first, second = snapshot.Snapshots(), snapshot.Snapshots()
    first.frame(trainer, data)
    first.frame(trainer, data)
    assert trainer in first.contexts and trainer not in second.contexts
    assert wire.decode(second.frame(trainer, data))[0]["seq"] == 1
    assert first.budget is not second.budget
    assert len(first.budget._costs) == 2 and len(second.budget._costs) == 1
