"""The arithmetic of a family of dense networks trained as one: activations with their
hand-written derivatives, batched losses with their gradients, and the optimizers' updates on
one flat parameter buffer per family (`FlatOptimizer`).

Shapes: K jobs (the family's members), B rows per batch (padded to the largest batch), U
output units. Every formula is the one torch uses for the same job alone (`torch.nn.functional`
losses, `torch.optim` updates), so that a job in a family repeats its solo history within
float rounding; tests/train/test_family.py checks each against autograd and torch.optim.
Why hand-written: these models are bound by the count of tensor operations, not their size;
a hand-written backward over stacked weights is about twice as fast as autograd on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# Activations a family can run, and those whose value at 0 is not 0 (their padded units must
# be masked: a padded unit's output feeds zero weights but would give them gradients).
FAMILY_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid", "tanh",
                      "softplus", "linear")
NONZERO_AT_ZERO = ("sigmoid", "softplus")
FAMILY_LOSSES = ("mse", "l1", "huber", "bce", "cross_entropy")
FAMILY_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def act_forward(name: str, z: Tensor, slope: float) -> Tensor:
    """The activation `name` of pre-activations `z` (any shape)."""
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, slope)
    if name == "elu":
        return F.elu(z)
    if name == "gelu":
        return F.gelu(z)
    if name == "silu":
        return F.silu(z)
    if name == "softplus":
        return F.softplus(z)
    if name == "linear":
        return z
    raise ValueError(f"activation '{name}' cannot run in a family")


_aten = torch.ops.aten


def act_backward(name: str, g: Tensor, z: Tensor, a: Tensor, slope: float) -> Tensor:
    """dL/dz from dL/da = `g`, the pre-activation `z` and the activation `a`: the kernels
    autograd itself runs for these activations."""
    if name == "tanh":
        return _aten.tanh_backward(g, a)
    if name == "relu":
        return _aten.threshold_backward(g, a, 0)
    if name == "sigmoid":
        return _aten.sigmoid_backward(g, a)
    if name == "leaky_relu":
        return _aten.leaky_relu_backward(g, z, slope, False)
    if name == "elu":
        return _aten.elu_backward(g, 1.0, 1.0, 1.0, False, z)
    if name == "gelu":
        return _aten.gelu_backward(g, z)
    if name == "silu":
        return _aten.silu_backward(g, z)
    if name == "softplus":
        return _aten.softplus_backward(g, z, 1.0, 20.0)
    if name == "linear":
        return g
    raise ValueError(f"activation '{name}' cannot run in a family")


def output_grad(name: str, out: Tensor, target: Tensor, scale: Tensor) -> Tensor:
    """dLoss/dout (K, B, U) of a training step; `scale` (K, B, 1): each row's weight in its
    job's mean (1/rows, 0 for padding), divided by U for per-unit losses, times 2 for mse."""
    if name == "cross_entropy":
        return (torch.softmax(out, -1) - target) * scale
    if name == "bce":
        return (torch.sigmoid(out) - target) * scale
    if name == "mse":
        return (out - target) * scale
    if name == "l1":
        return torch.sign(out - target) * scale
    if name == "huber":
        return (out - target).clamp(-1.0, 1.0) * scale
    raise ValueError(f"loss '{name}' cannot run in a family")


def grad_scale(name: str, weights: Tensor, units: int) -> Tensor:
    """`output_grad`'s `scale` from row weights (..., B): (..., B, 1)."""
    w = weights.unsqueeze(-1)
    if name == "cross_entropy":
        return w
    return w * (2.0 / units) if name == "mse" else w / units


def mean_loss(name: str, out: Tensor, target: Tensor, index: Tensor | None,
              mask: Tensor) -> Tensor:
    """Each job's mean loss over its real rows (torch's `reduction="mean"`; per-unit losses
    also average over the U units): (P,) for outputs `out` (P, N, U), `target` (P, N, U)
    float (one-hot, the class 0/1 for one unit, or the regression value), `index` (P, N) int64
    class ids for cross_entropy, `mask` (P, N) bool. Training's gradient: `output_grad`."""
    counts = mask.sum(1).clamp(min=1).to(out.dtype)
    weights = mask.to(out.dtype) / counts.unsqueeze(1)  # (P, N): 1/rows, 0 for padding
    if name == "cross_entropy":
        nll = -torch.log_softmax(out, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return (nll * weights).sum(1)
    d = out - target
    if name == "mse":
        elementwise = d * d
    elif name == "l1":
        elementwise = d.abs()
    elif name == "huber":
        ad = d.abs()
        elementwise = torch.where(ad < 1.0, 0.5 * d * d, ad - 0.5)
    elif name == "bce":
        elementwise = (1 - target) * out - F.logsigmoid(out)
    else:
        raise ValueError(f"loss '{name}' cannot run in a family")
    return (elementwise * (weights.unsqueeze(-1) / out.shape[-1])).sum((1, 2))


# Optimizer state each optimizer keeps per parameter, in torch's names (checkpoint format).
STATE_KEYS = {
    "sgd": (), "momentum": ("momentum_buffer",), "nesterov": ("momentum_buffer",),
    "adagrad": ("sum",), "rmsprop": ("square_avg", "momentum_buffer"),
    "adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"),
}
COUNTS_STEPS = ("adagrad", "rmsprop", "adam", "adamw")  # these keep a "step" per parameter


def optimizer_rows(names: list[str], size: int, device: torch.device) -> tuple[list, list]:
    """One `FlatOptimizer` per run of members whose optimizers `names` share a kind (members
    are sorted by kind): [(first row, end row, optimizer)], and per member (its optimizer, its
    row in it)."""
    optimizers: list[tuple[int, int, FlatOptimizer]] = []
    rows: list[tuple[FlatOptimizer, int]] = []
    start, k = 0, len(names)
    while start < k:
        end = start
        while end < k and KINDS[names[end]] == KINDS[names[start]]:
            end += 1
        optimizer = FlatOptimizer(KINDS[names[start]], names[start:end], size, device)
        optimizers.append((start, end, optimizer))
        rows += [(optimizer, row) for row in range(end - start)]
        start = end
    return optimizers, rows


def torch_state(name: str, steps: float, momentum: float, trained: bool,
                view: Callable[[str], Tensor]) -> dict | None:
    """One parameter's state as `torch.optim`'s optimizer `name` keeps it after `steps`
    updates (`trained`: the job has taken a step), its buffers copied from `view(key)`; None
    where torch keeps none (plain SGD, or before the step that makes it)."""
    if name in COUNTS_STEPS:
        if steps == 0 and name != "adagrad":  # torch makes the state at step 1
            return None
        state: dict = {"step": torch.tensor(steps)}
    elif name == "sgd" or momentum == 0 or not trained:
        return None  # plain SGD (or no step yet) keeps no state
    else:
        state = {}
    for key in STATE_KEYS[name]:
        if key == "momentum_buffer" and momentum == 0:
            continue
        state[key] = view(key).clone()
    return state
# Optimizers that one update formula covers (per-member columns choose the variant):
# SGD, momentum and Nesterov; Adam and AdamW.
KINDS = {"sgd": "sgd", "momentum": "sgd", "nesterov": "sgd", "adagrad": "adagrad",
         "rmsprop": "rmsprop", "adam": "adam", "adamw": "adam"}
KIND_STATE = {"sgd": ("momentum_buffer",), "adagrad": ("sum",),
              "rmsprop": ("square_avg", "momentum_buffer"), "adam": ("exp_avg", "exp_avg_sq")}


class FlatOptimizer:
    """One optimizer kind (KINDS) over some rows of a family's flat parameters (K, P), each
    member with its own hyperparameters as (K, 1) columns and its own step count: torch.optim's
    algorithms, with the arguments torch takes as Python floats computed in double as it does.
    `names[k]`: member k's optimizer (sgd, momentum and nesterov differ by their columns: the
    buffer's momentum, and the update a * g + c * buffer; adam and adamw by where the weight
    decay goes)."""

    def __init__(self, kind: str, names: list[str], p: int, device: torch.device) -> None:
        self.kind = kind
        self.names = names
        k = len(names)
        self.state: dict[str, Tensor] = {key: torch.zeros(k, p, device=device)
                                         for key in KIND_STATE[kind]}
        self.steps = torch.zeros(k, 1, dtype=torch.float64, device=device)
        column = lambda: torch.zeros(k, 1, device=device)  # noqa: E731
        self.lr, self.neg_lr, self.momentum, self.eps, self.alpha = (column() for _ in range(5))
        self.l2_decay, self.decay, self.a, self.c = column(), column(), column(), column()
        self.lr64 = torch.zeros(k, 1, dtype=torch.float64, device=device)
        self.beta1, self.beta2 = column(), column()
        # 1 - x computed in double, as torch computes its Python-float arguments
        self.rest_beta1, self.rest_beta2, self.rest_alpha = column(), column(), column()
        self._wd = [0.0] * k
        self.any_l2 = self.any_decay = False
        self.plain = True  # no member keeps a momentum buffer (plain SGD)

    def set_member(self, k: int, lr: float, spec, momentum: float) -> None:
        """Member `k`'s hyperparameters: `spec` is its OptimizerSpec, `momentum` its current."""
        name = self.names[k]
        mu = 0.0 if name == "sgd" or name in ("adam", "adamw", "adagrad") else momentum
        self.momentum[k, 0] = mu
        self.a[k, 0] = 0.0 if name == "momentum" and mu > 0 else 1.0
        self.c[k, 0] = 1.0 if name == "momentum" else mu if name == "nesterov" else 0.0
        self.beta1[k, 0], self.beta2[k, 0] = spec.beta1, spec.beta2
        self.rest_beta1[k, 0], self.rest_beta2[k, 0] = 1 - spec.beta1, 1 - spec.beta2
        self.eps[k, 0], self.alpha[k, 0] = spec.eps, spec.alpha
        self.rest_alpha[k, 0] = 1 - spec.alpha
        self._wd[k] = spec.weight_decay
        self.l2_decay[k, 0] = 0.0 if name == "adamw" else spec.weight_decay
        self.any_l2 = bool((self.l2_decay != 0).any())
        self.any_decay = any(w != 0 for w, n in zip(self._wd, self.names, strict=True)
                             if n == "adamw")
        self.plain = self.kind == "sgd" and bool((self.momentum == 0).all())
        self.set_lr(k, lr)

    def set_lr(self, k: int, lr: float) -> None:
        """Member `k`'s learning rate from now on (the schedule moved, or it joined)."""
        self.lr[k, 0] = lr
        self.neg_lr[k, 0] = -lr
        self.lr64[k, 0] = lr
        self.decay[k, 0] = 1 - lr * self._wd[k] if self.names[k] == "adamw" else 1.0

    def step(self, p: Tensor, g: Tensor) -> None:
        """Update parameters `p` (K, P) in place from gradients `g` (K, P)."""
        kind, lr = self.kind, self.lr
        if self.any_decay:
            p.mul_(self.decay)  # AdamW's decoupled decay (1 for the others)
        if self.any_l2:
            g = g + self.l2_decay * p  # every other optimizer's weight_decay
        if kind == "sgd":
            if self.plain:
                p.addcmul_(self.neg_lr, g)
                return
            buf = self.state["momentum_buffer"]
            buf.mul_(self.momentum).add_(g)  # momentum 0 (plain SGD): exactly g
            p.addcmul_(self.neg_lr, g * self.a + buf * self.c)
        elif kind == "adagrad":
            self.steps += 1
            total = self.state["sum"]
            total.addcmul_(g, g)
            p.sub_(lr * (g / total.sqrt().add_(self.eps)))
        elif kind == "rmsprop":
            self.steps += 1
            square = self.state["square_avg"]
            square.mul_(self.alpha).add_(self.rest_alpha * g * g)
            avg = square.sqrt().add_(self.eps)
            buf = self.state["momentum_buffer"]
            buf.mul_(self.momentum).add_(g / avg)  # momentum 0: exactly g / avg
            p.sub_(lr * buf)
        else:  # adam, adamw
            self.steps += 1
            exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
            exp_avg.lerp_(g, self.rest_beta1)
            exp_avg_sq.mul_(self.beta2).add_(self.rest_beta2 * g * g)
            correction1 = 1 - self.beta1.double() ** self.steps
            correction2 = (1 - self.beta2.double() ** self.steps).sqrt()
            step_size = (self.lr64 / correction1).float()
            denom = (exp_avg_sq.sqrt() / correction2.float()).add_(self.eps)
            p.sub_(step_size * (exp_avg / denom))
