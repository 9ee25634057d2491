"""Divergence at the trainer (issue 16, "See why"): a diverging run is put back exactly at its
last good epoch, the diagnosis names the layer a real run blew up in first, an exploding loss
counts as a divergence, and gradient clipping is torch's clip_grad_norm_."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from server.spec.job import JobSpec
from server.train import diagnose
from server.train.family_layout import family_key
from server.train.protocol import Diverged
from server.train.trainer import Trainer
from tests.train.helpers import job_spec, mlp, regression_set


def relu_spec(lr: float = 0.01, **training) -> JobSpec:
    """A real Network (dense 8 relu, dense 8 tanh, the appended output) on 1-D regression."""
    return JobSpec.model_validate({
        "dataset": {"name": "line"},
        "model": {"layers": [{"type": "dense", "units": 8, "activation": "relu"},
                             {"type": "dense", "units": 8, "activation": "tanh"}]},
        "training": {"optimizer": {"name": "momentum", "learning_rate": lr}, "loss": "mse",
                     "batch_size": 5, **training}})


def trained(epochs: int, then_lr: float | None = None, more: int = 0) -> Trainer:
    trainer = Trainer(relu_spec(), regression_set(), "cpu")
    for _ in range(epochs):
        trainer.train_epoch()
    if then_lr is not None:
        trainer.set_learning_rate(then_lr)
        for _ in range(more):
            trainer.train_epoch()
    return trainer


def diverge(trainer: Trainer, limit: int = 30) -> Diverged:
    with pytest.raises(Diverged) as caught:
        for _ in range(limit):
            trainer.train_epoch()
    return caught.value


def test_the_state_after_a_divergence_is_the_last_good_epochs_exactly():
    trainer = trained(3, then_lr=40.0)
    exc = diverge(trainer)
    assert exc.rewound and exc.good_epoch == trainer.epoch >= 3
    reference = trained(3, then_lr=40.0, more=exc.good_epoch - 3)
    assert reference.epoch == trainer.epoch and reference.step == trainer.step
    mine, theirs = trainer.state_tensors(), reference.state_tensors()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine), "weights, optimizer or RNG differ"
    assert trainer.state_meta() == reference.state_meta()
    assert not trainer.finished and trainer.stop_reason is None
    assert exc.diagnosis["rewound_to"] == {"epoch": trainer.epoch, "step": trainer.step}
    # It goes on exactly as the reference does, once the learning rate is sane again.
    for t in (trainer, reference):
        t.set_learning_rate(0.01)
    assert trainer.train_epoch() == reference.train_epoch()
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(),
                                                 reference.model.parameters(), strict=True))


def test_the_diagnosis_names_the_layer_the_real_run_blew_up_in_first():
    """The oracle: hooks on the real training steps of an identical run record the first
    layer output or parameter gradient that is not finite."""
    exc = diverge(trained(3, then_lr=40.0))
    watched = trained(3, then_lr=40.0)
    seen: list[tuple[int, int, str]] = []  # (step, layer, "values" | "gradients")
    steps = [watched.step]
    original = watched._train_step

    def counting(xb, yb):
        steps[0] += 1
        return original(xb, yb)

    watched._train_step = counting
    for i, layer in enumerate(watched.model.layers):
        layer.register_forward_hook(
            lambda _m, _x, out, i=i: seen.append((steps[0], i, "values"))
            if not torch.isfinite(out).all() else None)
        for p in layer.parameters():
            p.register_hook(lambda g, i=i: seen.append((steps[0], i, "gradients"))
                            if not torch.isfinite(g).all() else None)
    with pytest.raises(Diverged):
        for _ in range(30):
            watched.train_epoch()
    first = seen[0]
    d = exc.diagnosis
    assert (d["step"], d["layer"], d["where"]) == first, (d, seen[:5])
    assert d["layer_type"] == "dense" and d["what"] in ("NaN", "infinite")
    assert d["epoch"] == exc.epoch == exc.good_epoch + 1
    part = "outputs" if d["where"] == "values" else "gradients"
    assert str(exc).startswith(f"diverged: loss became {d['loss_became']} at epoch {d['epoch']}"
                               f"; layer {d['layer']} (dense)'s {part} became {d['what']} "
                               f"first, at step {d['step']}; paused at epoch {exc.good_epoch}")


def test_an_exploding_loss_is_a_divergence(monkeypatch):
    """Over EXPLODE_FACTOR times the first epoch's train loss: here the factor is lowered so
    that an ordinary run "explodes" at its second epoch."""
    monkeypatch.setattr(diagnose, "EXPLODE_FACTOR", 1e-9)
    trainer = Trainer(relu_spec(), regression_set(), "cpu")
    exc = diverge(trainer)
    assert exc.what == "exploding" and exc.epoch == 2 and exc.rewound
    assert trainer.epoch == 1 and exc.diagnosis["where"] == "gradients"
    assert exc.diagnosis["layer"] in (0, 1, 2) and exc.diagnosis["train_loss"] > 0
    assert str(exc).startswith("diverged: loss exploded at epoch 2 (train loss ")
    assert diagnose.exploded(2e6, 1.0) is False or diagnose.EXPLODE_FACTOR < 1
    monkeypatch.undo()
    assert diagnose.exploded(1.1e6, 1.0) and not diagnose.exploded(0.9e6, 1.0)
    assert diagnose.exploded(1.1e3, 1e-9)  # a near-zero first loss counts as 1e-3
    assert not diagnose.exploded(math.inf, None)


def test_a_model_too_large_to_copy_each_epoch_is_left_for_the_engine(monkeypatch):
    monkeypatch.setattr("server.train.trainer.REWIND_MAX_BYTES", 16)
    trainer = Trainer(relu_spec(lr=40.0), regression_set(), "cpu")
    assert not trainer.rewind_in_memory
    exc = diverge(trainer)
    assert not exc.rewound and trainer.finished and trainer.stop_reason == "diverged"
    assert exc.good_epoch == trainer.epoch


def test_gradient_clipping_is_clip_grad_norm_on_plain_pytorch():
    spec = job_spec(optimizer={"name": "sgd", "learning_rate": 0.5}, loss="mse",
                    batch_size=10, gradient_clip=0.05)
    data = regression_set()
    trainer = Trainer(spec, data, "cpu", model_factory=lambda s: mlp(s, inputs=1))
    trainer.train_epoch()
    trainer.train_epoch()
    # The oracle: the same model, batches and SGD in plain PyTorch.
    model = mlp(spec.training.seed, inputs=1)
    sgd = torch.optim.SGD(model.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(spec.training.seed)
    x, y = torch.tensor(data.x_train), torch.tensor(data.y_train).reshape(-1, 1)
    norms = []
    for _ in range(2):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 10):
            idx = perm[start:start + 10]
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            sgd.zero_grad()
            loss.backward()
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 0.05)))
            sgd.step()
    assert max(norms) > 0.05  # clipping did act
    for mine, theirs in zip(trainer.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6)


def test_set_gradient_clip_changes_the_step_and_takes_the_job_out_of_families():
    trainer = Trainer(relu_spec(), regression_set(), "cpu")
    assert family_key(trainer) is not None
    trainer.set_gradient_clip(1.0)
    assert trainer.gradient_clip == 1.0 and trainer.spec.training.gradient_clip == 1.0
    assert family_key(trainer) is None


def test_retrying_tenfold_smaller_rates_from_the_rewind_trains_on():
    """The page's "retry with a tenfold smaller learning rate", pressed until it trains: each
    try starts again from the same last good epoch."""
    trainer = trained(2, then_lr=40.0)
    good = diverge(trainer).good_epoch
    lr, tries = 40.0, []
    while True:
        lr /= 10
        trainer.set_learning_rate(lr)
        try:
            records = trainer.train_batches(400)
            break
        except Diverged as exc:
            assert exc.rewound and trainer.epoch == good
            tries.append(lr)
            assert len(tries) < 4
    assert records[0]["epoch"] == good + 1
    assert all(math.isfinite(r["train_loss"]) for r in records)
