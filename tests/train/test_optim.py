"""Losses, penalties, optimizers and schedules, with plain PyTorch as the oracle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from server.spec.job import ScheduleSpec
from server.train.optim import data_loss, penalty, scheduled_lr
from server.train.trainer import Trainer
from tests.train.helpers import blobs, job_spec, mlp, regression_set


def test_losses_match_torch():
    torch.manual_seed(0)
    out1 = torch.randn(8, 1)
    out3 = torch.randn(8, 3)
    y2 = torch.randint(0, 2, (8,))
    y3 = torch.randint(0, 3, (8,))
    yr = torch.randn(8, 1)
    assert torch.equal(data_loss("bce", out1, y2),
                       F.binary_cross_entropy_with_logits(out1, y2.float()[:, None]))
    assert torch.equal(data_loss("cross_entropy", out3, y3), F.cross_entropy(out3, y3))
    assert torch.equal(data_loss("mse", out3, y3), F.mse_loss(out3, F.one_hot(y3, 3).float()))
    assert torch.equal(data_loss("mse", out1, yr), F.mse_loss(out1, yr))
    assert torch.equal(data_loss("l1", out1, yr), F.l1_loss(out1, yr))
    assert torch.equal(data_loss("huber", out1, yr), F.huber_loss(out1, yr))


def test_penalties_are_tf_playground_definitions():
    model = mlp(3)
    weights = [model[0].weight, model[2].weight, model[4].weight]  # biases excluded
    l1 = penalty(weights, "l1", 0.01)
    l2 = penalty(weights, "l2", 0.01)
    assert torch.allclose(l1, 0.01 * sum(w.abs().sum() for w in weights))
    assert torch.allclose(l2, 0.01 * 0.5 * sum((w ** 2).sum() for w in weights))
    assert penalty(weights, "none", 0.01) is None
    assert penalty(weights, "l2", 0.0) is None


def _plain_optimizer(name, params, lr, wd):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.8, weight_decay=wd)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=0.8, nesterov=True, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=1e-6, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.95, eps=1e-6, momentum=0.8,
                                   weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.85, 0.99), eps=1e-6, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, betas=(0.85, 0.99), eps=1e-6, weight_decay=wd)


CASES = [  # optimizer, loss, regularization, classes (0 = regression)
    ("sgd", "auto", "l2", 2),
    ("momentum", "mse", "l1", 3),
    ("nesterov", "cross_entropy", "l2", 3),
    ("adagrad", "huber", "none", 0),
    ("rmsprop", "bce", "l1", 2),
    ("adam", "l1", "l2", 0),
    ("adamw", "auto", "l2", 3),
]


@pytest.mark.parametrize(("optimizer", "loss", "reg", "classes"), CASES)
def test_training_matches_plain_torch_loop(optimizer, loss, reg, classes):
    """Same seed, same batches, same steps: the trainer's weights equal a hand-written loop's."""
    lr, wd, rate, batch, steps, seed = 0.05, 0.01, 0.003, 16, 20, 7
    data = blobs(classes=classes) if classes else regression_set()
    inputs = data.x_train.shape[1]
    outputs = 1 if classes in (0, 2) else classes
    spec = job_spec(
        optimizer={"name": optimizer, "learning_rate": lr, "weight_decay": wd, "momentum": 0.8,
                   "alpha": 0.95, "eps": 1e-6, "beta1": 0.85, "beta2": 0.99},
        loss=loss, batch_size=batch, seed=seed, regularization={"kind": reg, "rate": rate})
    trainer = Trainer(spec, data, "cpu", model_factory=lambda s: mlp(s, inputs, outputs))
    records = trainer.train_batches(steps)  # 100 samples: 7 batches an epoch, the last of 4
    assert [r["epoch"] for r in records] == [1, 2]

    model = mlp(seed, inputs, outputs)
    opt = _plain_optimizer(optimizer, model.parameters(), lr, wd)
    weights = [model[0].weight, model[2].weight, model[4].weight]
    x, y = torch.tensor(data.x_train), torch.tensor(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        perm = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch):
            if done == steps:
                break
            out = model(x[perm[i:i + batch]])
            target = y[perm[i:i + batch]]
            if loss == "cross_entropy" or (loss == "auto" and classes > 2):
                value = F.cross_entropy(out, target)
            elif classes:
                t = (F.one_hot(target, outputs).float() if outputs > 1
                     else target.float()[:, None])
                fn = {"mse": F.mse_loss, "bce": F.binary_cross_entropy_with_logits,
                      "auto": F.binary_cross_entropy_with_logits}[loss]
                value = fn(out, t)
            else:
                value = {"huber": F.huber_loss, "l1": F.l1_loss}[loss](out, target)
            if reg == "l1":
                value = value + rate * sum(w.abs().sum() for w in weights)
            elif reg == "l2":
                value = value + 0.5 * rate * sum(w.square().sum() for w in weights)
            opt.zero_grad()
            value.backward()
            opt.step()
            done += 1
    for mine, theirs in zip(trainer.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_gradient_clipping_matches_plain_torch():
    data, seed = blobs(), 3
    spec = job_spec(optimizer={"name": "sgd", "learning_rate": 0.5}, batch_size=100, seed=seed,
                    gradient_clip=0.01)
    trainer = Trainer(spec, data, "cpu", model_factory=mlp)
    trainer.train_batches(3)
    model = mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.tensor(data.x_train), torch.tensor(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(3):
        perm = torch.randperm(len(x), generator=generator)
        value = F.binary_cross_entropy_with_logits(model(x[perm]), y[perm].float()[:, None])
        opt.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.01)
        opt.step()
    for mine, theirs in zip(trainer.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def _torch_lrs(scheduler_cls, epochs, **kwargs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = scheduler_cls(opt, **kwargs)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def _ours(epochs, **spec):
    schedule = ScheduleSpec(**spec)
    return [scheduled_lr(schedule, 0.1, e) for e in range(epochs)]


def test_schedules_match_torch_schedulers():
    sched = torch.optim.lr_scheduler
    assert _ours(30, name="step", step_size=7, gamma=0.3) == pytest.approx(
        _torch_lrs(sched.StepLR, 30, step_size=7, gamma=0.3))
    assert _ours(30, name="exponential", gamma=0.9) == pytest.approx(
        _torch_lrs(sched.ExponentialLR, 30, gamma=0.9))
    assert _ours(21, name="cosine", period=20, min_learning_rate=0.01) == pytest.approx(
        _torch_lrs(sched.CosineAnnealingLR, 21, T_max=20, eta_min=0.01))
    assert _ours(45, name="warm_restarts", period=10, min_learning_rate=0.001) == pytest.approx(
        _torch_lrs(sched.CosineAnnealingWarmRestarts, 45, T_0=10, eta_min=0.001))


def test_schedule_shapes():
    assert _ours(5, name="constant") == [0.1] * 5
    cosine = _ours(40, name="cosine", period=20, min_learning_rate=0.01)
    assert cosine[20:] == pytest.approx([0.01] * 20)  # stays at the floor after the period
    cyclic = _ours(9, name="cyclic", step_size=2, min_learning_rate=0.02)
    assert cyclic == pytest.approx([0.1, 0.06, 0.02, 0.06, 0.1, 0.06, 0.02, 0.06, 0.1])


def test_trainer_steps_schedule_per_epoch_and_user_lr_becomes_base():
    spec = job_spec(optimizer={"learning_rate": 0.1}, schedule={"name": "step", "step_size": 2,
                                                                "gamma": 0.5}, batch_size=50)
    trainer = Trainer(spec, blobs(), "cpu", model_factory=mlp)
    records = [r for _ in range(4) for r in trainer.train_epoch()]
    assert [r["learning_rate"] for r in records] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert trainer.learning_rate == pytest.approx(0.025)
    trainer.train_batches(1)  # mid-epoch change: applies at once, the schedule runs on from it
    trainer.set_learning_rate(0.2)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.2
    records = [r for _ in range(3) for r in trainer.train_epoch()]
    assert [r["learning_rate"] for r in records] == pytest.approx([0.2, 0.2, 0.1])
