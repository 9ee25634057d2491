"""The words a job is described and driven with, each written once: the control actions, the
loss, optimizer, regularization and schedule names (with the catalogue's text for losses and
optimizers), and the domain of the 2-D point sets.

Every other module imports these: `server.spec.job` (the spec's fields), `server.api` (the
control body, the stream's control message, the catalogue), `server.engine.lifecycle` (the
rules per action), `server.train.optim` (what each name does) and `server.data` (the point
sets). Pure data: imports nothing of the project.
"""

from __future__ import annotations

from typing import Literal, get_args

# What a client may ask of a job (POST /api/jobs/{id}/control, the stream's `control`).
ControlAction = Literal["pause", "resume", "step", "stop", "reset"]
CONTROL_ACTIONS: tuple[str, ...] = get_args(ControlAction)

LossName = Literal["auto", "mse", "l1", "huber", "bce", "cross_entropy"]
LOSSES: tuple[str, ...] = tuple(n for n in get_args(LossName) if n != "auto")  # resolved ones
LOSS_DESCRIPTIONS: dict[str, str] = {
    "auto": "matches the task: bce for two classes, cross_entropy for more, mse for regression",
    "mse": "mean squared error",
    "l1": "mean absolute error",
    "huber": "squared for small errors, absolute for large ones: robust to outliers",
    "bce": "binary cross-entropy on the logit of one output unit",
    "cross_entropy": "softmax cross-entropy over k output units",
}

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
# name -> (what it does, the OptimizerSpec fields it reads besides learning_rate)
OPTIMIZERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sgd": ("plain gradient descent", ("weight_decay",)),
    "momentum": ("gradient descent with momentum", ("momentum", "weight_decay")),
    "nesterov": ("gradient descent with Nesterov momentum", ("momentum", "weight_decay")),
    "adagrad": ("a rate per weight that shrinks with the sum of its squared gradients",
                ("eps", "weight_decay")),
    "rmsprop": ("a rate per weight from a moving average of its squared gradients",
                ("alpha", "eps", "momentum", "weight_decay")),
    "adam": ("momentum and RMSProp's scaling, bias-corrected",
             ("beta1", "beta2", "eps", "weight_decay")),
    "adamw": ("Adam with decoupled weight decay", ("beta1", "beta2", "eps", "weight_decay")),
}

RegularizationKind = Literal["none", "l1", "l2"]
ScheduleName = Literal["constant", "step", "exponential", "cosine", "cyclic", "warm_restarts"]

# The 2-D point sets lie in this square (TensorFlow Playground's), on both axes.
POINT_DOMAIN: tuple[float, float] = (-6.0, 6.0)
