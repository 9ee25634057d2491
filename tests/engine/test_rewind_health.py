"""Health hints while a job trains (issue 16, "See why"): a dead ReLU layer and vanishing
gradients, computed by server.engine.health and sent in the frames' `health` header."""

from __future__ import annotations

import math

import pytest
import torch

from server.engine.health import EVERY_S, Health, check
from server.spec.job import JobSpec
from server.train.trainer import Trainer
from tests.engine.common import create, delete
from tests.stream.conftest import Client, connect, run
from tests.train.helpers import blobs


def spec(layers: list[dict], **model) -> JobSpec:
    return JobSpec.model_validate({"dataset": {"name": "circle"},
                                   "model": {"layers": layers, **model},
                                   "training": {"epochs": 50}})


def dense(units: int, activation: str) -> dict:
    return {"type": "dense", "units": units, "activation": activation}


def test_a_relu_layer_silent_on_every_sample_is_dead():
    trainer = Trainer(spec([dense(6, "relu"), dense(4, "tanh")], init="zeros"), blobs(), "cpu")
    trainer.train_batches(2)
    hints = check(trainer)
    assert hints["dead_relu"] == [{"layer": 0, "type": "dense", "units": 6}]
    # The oracle: the layer's outputs on the first 256 training samples, in plain torch.
    x = torch.tensor(blobs().x_train[:256])
    assert torch.equal(torch.relu(trainer.model.layers[0].linear(x)), torch.zeros(len(x), 6))
    healthy = Trainer(spec([dense(6, "relu"), dense(4, "tanh")]), blobs(), "cpu")
    healthy.train_batches(2)
    assert check(healthy)["dead_relu"] == []


def test_vanishing_gradients_compare_the_first_layer_with_the_last():
    deep = Trainer(spec([dense(4, "sigmoid")] * 6, init="normal", init_std=0.1), blobs(), "cpu")
    deep.train_batches(3)
    hint = check(deep)["vanishing"]
    layers = deep.model.layers
    norm = [math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in layers[i].parameters()))
            for i in (0, len(layers) - 1)]
    assert hint == {"first_layer": 0, "last_layer": 6, "first_norm": pytest.approx(norm[0]),
                    "last_norm": pytest.approx(norm[1]),
                    "ratio": pytest.approx(norm[0] / norm[1])}
    assert hint["ratio"] < 1e-6
    shallow = Trainer(spec([dense(4, "tanh")]), blobs(), "cpu")
    assert check(shallow)["vanishing"] is None  # no step yet: no gradients to compare
    shallow.train_batches(3)
    assert check(shallow)["vanishing"] is None


def test_hints_are_computed_at_most_once_a_second_and_only_after_training():
    trainer = Trainer(spec([dense(6, "relu")], init="zeros"), blobs(), "cpu")
    health = Health()
    first = health.of(trainer, 100.0)
    assert health.of(trainer, 100.5) is first  # within EVERY_S
    assert health.of(trainer, 100.0 + 2 * EVERY_S) is first  # nothing trained since
    trainer.train_batches(1)
    again = health.of(trainer, 100.0 + 3 * EVERY_S)
    assert again is not first and again["step"] == 1


def test_frames_of_a_watched_job_carry_the_hints(server):
    with server.client() as client:
        job_id = create(client, {"dataset": {"name": "circle"}, "training": {"epochs": None},
                                 "model": {"init": "zeros",
                                           "layers": [dense(4, "relu"), dense(2, "tanh")]}})["id"]

    async def main():
        async with connect(server, job_id) as ws:
            c = Client(ws)
            await c.next("hello")
            for _ in range(40):
                header, _arrays = await c.next("snapshot", timeout=15)
                health = header.get("health")
                if health and health["step"] > 0:
                    return health
            raise AssertionError("no frame with health hints")

    try:
        health = run(main())
    finally:
        with server.client() as client:
            delete(client, job_id)
    assert health["dead_relu"] == [{"layer": 0, "type": "dense", "units": 4}]
    assert health["vanishing"]["first_layer"] == 0 and health["vanishing"]["ratio"] == 0.0


def test_a_rewind_is_seen_at_once_and_leaves_no_stale_gradients():
    trainer = Trainer(spec([dense(6, "relu")]), blobs(), "cpu")
    trainer.train_epoch()
    health = Health()
    trainer.train_batches(3)
    before = health.of(trainer, 10.0)
    assert before["vanishing"] is None and before["step"] == trainer.step
    assert trainer.rewind()  # back to the end of epoch 1
    after = health.of(trainer, 10.1)  # within EVERY_S, but the step went back
    assert after is not before and after["step"] == trainer.step
    assert after["vanishing"] is None  # the gradients of the undone steps are gone
    assert all(p.grad is None for p in trainer.model.parameters())
