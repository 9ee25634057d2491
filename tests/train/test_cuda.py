"""The trainer on a GPU (skipped without CUDA): repeatable, resumable, and it still learns."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load, save

from server.train.trainer import Trainer
from tests.train.helpers import blobs, job_spec, mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _dropout_mlp(seed):
    return mlp(seed, hidden=16, dropout=0.3)


def test_cuda_same_seed_and_resume_are_identical():
    spec = job_spec(optimizer={"name": "adam", "learning_rate": 0.01}, batch_size=8, epochs=5)
    straight = Trainer(spec, blobs(validation=20), "cuda", model_factory=_dropout_mlp)
    expected = straight.train_batches(10**6)
    again = Trainer(spec, blobs(validation=20), "cuda", model_factory=_dropout_mlp)
    assert again.train_batches(10**6) == expected

    first = Trainer(spec, blobs(validation=20), "cuda", model_factory=_dropout_mlp)
    before = first.train_batches(17)
    tensors = load(save(first.state_tensors()))
    meta = json.loads(json.dumps(first.state_meta()))
    resumed = Trainer(spec, blobs(validation=20), "cuda", model_factory=_dropout_mlp)
    resumed.load_state(tensors, meta)
    assert before + resumed.train_batches(10**6) == expected
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert a.device.type == "cuda"
        assert torch.equal(a, b)
    assert expected[-1]["test_accuracy"] > 0.8
