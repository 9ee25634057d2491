"""Training by outcome: seeded jobs on known problems, with the real data sets and builder,
reach a known accuracy within their epoch budget."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import JobSpec
from server.train.trainer import Trainer


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return DataRegistry(tmp_path_factory.mktemp("uploads"), Settings())


def _train(registry, spec: dict) -> list[dict]:
    job = JobSpec.model_validate(spec)
    trainer = Trainer(job, registry.load(job.dataset), "cpu")
    records = trainer.train_batches(10**9)
    assert trainer.finished and trainer.stop_reason == "epochs"
    return records


def _tanh(*units):
    return [{"type": "dense", "units": n, "activation": "tanh"} for n in units]


def test_xor_reaches_full_test_accuracy(registry):
    """TF Playground's defaults (SGD, learning rate 0.03, batch 10), two tanh layers 4-4."""
    records = _train(registry, {"dataset": {"name": "xor"}, "model": {"layers": _tanh(4, 4)},
                                "training": {"epochs": 100, "seed": 0}})
    assert records[-1]["test_accuracy"] == 1.0
    assert records[-1]["test_auc"] == 1.0


def test_circle_reaches_98_percent(registry):
    records = _train(registry, {"dataset": {"name": "circle"},
                                "model": {"layers": _tanh(4, 4)},
                                "training": {"epochs": 100, "seed": 0}})
    assert records[-1]["test_accuracy"] >= 0.98


def test_mlp_on_digits_reaches_95_percent(registry):
    records = _train(registry, {
        "dataset": {"name": "digits"},
        "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 64}]},
        "training": {"epochs": 25, "batch_size": 32, "seed": 0,
                     "optimizer": {"name": "adam", "learning_rate": 0.003}},
    })
    assert records[-1]["test_accuracy"] >= 0.95
    assert len(records[-1]["test_confusion_matrix"]) == 10


def test_regression_fits_a_plane(registry):
    records = _train(registry, {"dataset": {"name": "plane"}, "model": {"layers": _tanh(4)},
                                "training": {"epochs": 30, "seed": 0,
                                             "optimizer": {"name": "adam",
                                                           "learning_rate": 0.01}}})
    assert records[-1]["test_r2"] >= 0.95


def test_real_network_with_dropout_and_batchnorm_resumes_bit_identical(registry):
    import json

    import torch
    from safetensors.torch import load, save

    job = JobSpec.model_validate({
        "dataset": {"name": "wine", "validation_fraction": 0.2},
        "model": {"layers": [{"type": "dense", "units": 16, "activation": "relu"},
                             {"type": "batchnorm"}, {"type": "dropout", "p": 0.3},
                             {"type": "dense", "units": 8, "activation": "tanh"}]},
        "training": {"epochs": 6, "batch_size": 16, "seed": 4,
                     "optimizer": {"name": "adamw", "learning_rate": 0.01},
                     "early_stopping": {"patience": 100}},
    })
    data = registry.load(job.dataset)
    straight = Trainer(job, data, "cpu")
    expected = straight.train_batches(10**9)
    first = Trainer(job, data, "cpu")
    before = first.train_batches(9)
    tensors = load(save(first.state_tensors()))
    meta = json.loads(json.dumps(first.state_meta()))
    resumed = Trainer(job, data, "cpu")
    resumed.load_state(tensors, meta)
    assert before + resumed.train_batches(10**9) == expected
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


KINDS = {  # data set -> hidden layers: one per kind of input the trainer must feed
    "spiral": [{"type": "dense", "units": 8, "activation": "tanh"}],
    "iris": [{"type": "dense", "units": 8}, {"type": "dropout", "p": 0.2}],
    "diabetes": [{"type": "dense", "units": 8}],
    "shapes": [{"type": "conv2d", "filters": 4}, {"type": "maxpool2d"}, {"type": "flatten"}],
    "sine": [{"type": "gru", "units": 8}],
    "recall": [{"type": "embedding", "dim": 8}, {"type": "attention", "heads": 2},
               {"type": "pool_sequence"}],
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_of_data_trains_and_resumes(registry, name):
    """Points, tables, images, sequences of vectors and of token ids: two epochs give finite,
    JSON-ready records, and a checkpoint taken between them resumes exactly."""
    import json

    from safetensors.torch import load, save

    job = JobSpec.model_validate({"dataset": {"name": name}, "model": {"layers": KINDS[name]},
                                  "training": {"epochs": 2, "batch_size": 32,
                                               "optimizer": {"name": "adam"}}})
    data = registry.load(job.dataset)
    straight = Trainer(job, data, "cpu")
    expected = straight.train_batches(10**9)
    assert [r["epoch"] for r in expected] == [1, 2]
    json.dumps(expected, allow_nan=False)
    assert expected[-1]["train_loss"] is not None and expected[-1]["test_loss"] is not None
    first = Trainer(job, data, "cpu")
    before = first.train_epoch()
    resumed = Trainer(job, data, "cpu")
    resumed.load_state(load(save(first.state_tensors())), json.loads(json.dumps(
        first.state_meta())))
    assert before + resumed.train_batches(10**9) == expected
