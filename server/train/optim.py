"""Losses, weight penalties, optimizers and learning-rate schedules, from the job spec's names.

What is here: `data_loss` (mse, l1, huber, bce on logits, cross_entropy), `penalty` (L1 / L2
on weights, TF Playground's definition), `make_optimizer` (torch optimizers from an
`OptimizerSpec`), `scheduled_lr` (the learning rate of an epoch, a pure function).
The names (and the catalogue's text for them) are `server.spec.vocabulary`'s.
What is not: resolving "auto" and refusing a loss that does not fit the task
(`server.nn.check.resolve_loss`), the training loop (trainer.py), the metrics (metrics.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from server.spec.vocabulary import LOSSES, OPTIMIZERS


def data_loss(name: str, out: Tensor, y: Tensor) -> Tensor:
    """Mean loss of outputs `out` (batch, units) against targets `y`.

    `y` is int64 class ids (batch,) for classification or float32 (batch, 1) for regression.
    For classification with mse/l1/huber/bce the target is the class (0/1) when there is one
    output unit and the one-hot vector otherwise; bce takes logits (BCEWithLogits).
    """
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    if y.dtype == torch.int64:  # classification with a per-unit loss
        if out.shape[1] == 1:
            target = y.to(out.dtype).unsqueeze(1)  # (batch, 1)
        else:
            target = F.one_hot(y, out.shape[1]).to(out.dtype)  # (batch, units)
    else:
        target = y  # (batch, 1)
    if name == "mse":
        return F.mse_loss(out, target)
    if name == "l1":
        return F.l1_loss(out, target)
    if name == "huber":
        return F.huber_loss(out, target)
    if name == "bce":
        return F.binary_cross_entropy_with_logits(out, target)
    raise ValueError(f"unknown loss '{name}'; expected one of: {', '.join(LOSSES)}")


def penalized_weights(model: nn.Module) -> list[Tensor]:
    """The parameters a penalty applies to: weights (rank >= 2), not biases or norm scales."""
    return [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]


def penalty(weights: list[Tensor], kind: str, rate: float) -> Tensor | None:
    """L1: rate * sum|w|; L2: rate * 0.5 * sum w^2 (TF Playground's definition). None if off."""
    if kind == "none" or rate == 0.0 or not weights:
        return None
    if kind == "l1":
        total = sum(w.abs().sum() for w in weights)
        return rate * total
    if kind == "l2":
        total = sum(w.square().sum() for w in weights)
        return (0.5 * rate) * total
    raise ValueError(f"unknown regularization '{kind}'; expected one of: none, l1, l2")


def make_optimizer(params, spec) -> torch.optim.Optimizer:
    """A torch optimizer for `spec` (an OptimizerSpec): its name, learning rate and parameters.

    sgd is plain gradient descent (no momentum); momentum and nesterov are SGD with
    `spec.momentum`; rmsprop uses `alpha`, `eps` and `momentum`; adam and adamw use
    `beta1`, `beta2`, `eps`. `weight_decay` is each optimizer's own (decoupled for adamw).
    """
    lr, wd = spec.learning_rate, spec.weight_decay
    name = spec.name
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=spec.momentum, weight_decay=wd)
    if name == "nesterov":
        # torch refuses nesterov without momentum; with momentum 0 it is plain SGD anyway.
        return torch.optim.SGD(params, lr=lr, momentum=spec.momentum, weight_decay=wd,
                               nesterov=spec.momentum > 0)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=spec.eps, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=spec.alpha, eps=spec.eps,
                                   momentum=spec.momentum, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                                weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(spec.beta1, spec.beta2), eps=spec.eps,
                                 weight_decay=wd)
    raise ValueError(f"unknown optimizer '{name}'; expected one of: {', '.join(OPTIMIZERS)}")


def scheduled_lr(spec, base_lr: float, epoch: int) -> float:
    """The learning rate for epoch `epoch` (0 = the first, counted from the schedule's origin).

    `spec` is a ScheduleSpec. Every schedule gives `base_lr` at epoch 0, so a learning rate the
    user sets mid-run applies at once and the schedule runs on from it.
    constant: base. step: base * gamma^(epoch // step_size). exponential: base * gamma^epoch.
    cosine: from base down to min_learning_rate over `period` epochs, then stays there.
    cyclic: triangular, from base down to the floor over `step_size` epochs and back up.
    warm_restarts: cosine over `period` epochs, restarting at base (SGDR with T_mult = 1).
    """
    name, floor = spec.name, spec.min_learning_rate
    if name == "constant":
        return base_lr
    if name == "step":
        return base_lr * spec.gamma ** (epoch // spec.step_size)
    if name == "exponential":
        return base_lr * spec.gamma ** epoch
    if name == "cosine":
        t = min(epoch, spec.period) / spec.period
        return floor + (base_lr - floor) * (1 + math.cos(math.pi * t)) / 2
    if name == "cyclic":
        position = epoch % (2 * spec.step_size)
        return floor + (base_lr - floor) * abs(position / spec.step_size - 1)
    if name == "warm_restarts":
        t = (epoch % spec.period) / spec.period
        return floor + (base_lr - floor) * (1 + math.cos(math.pi * t)) / 2
    raise ValueError(f"unknown schedule '{name}'; expected one of: constant, step, exponential, "
                     "cosine, cyclic, warm_restarts")
