"""A family of jobs whose models are not dense-on-points (CNNs, attention) trained as one with
`torch.func`: `VmapFamily`, and `vmap_key` (which trainers may form one).

Members have exactly the same architecture (layers, their settings, parameter shapes, input
shape, loss) and batch size; what may differ: seeds, data (samples and order), learning rate
and schedule, optimizer (rows by kind, as `DenseFamily`: server.train.family_math's
`FlatOptimizer`), regularization, dropout rates, epoch budget and early stopping.

How: every member's parameters live in one flat buffer (K members x P numbers); the member's
own parameters are views into it, so its model (frames, evaluation, export, the inspector)
reads the live weights. A step gathers each member's own next batch (drawn from its own
generator exactly when it draws alone), draws its dropout masks from its own randomness in the
shapes it draws alone, runs the stacked forward with `vmap(functional_call)` layer by layer,
sums the members' losses and lets autograd give each member's gradient (a member's loss only
reaches its own row), then one optimizer update per kind. Batches shorter than the family's
(an epoch's last) are padded with rows that weigh 0. A member's epoch end is its own Trainer's
`_end_epoch` on the live weights (the same evaluation, early stopping, schedule and records as
alone). Divergence is judged per member, as alone.

What is not here: recurrent layers (`aten::lstm` has no vmap rule; the same cells unrolled
over time under vmap, with torch's CPU formulas, were measured at 0.59x the time slices' steps
at 8 jobs and 1.10x at 30 on the README's LSTM), batch norm (running statistics), gradient
clipping; those jobs keep their own time slices. Which jobs form
families and when: server.engine.families.
"""

from __future__ import annotations

import copy
import json
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from server.spec.layers.core import DropoutSpec
from server.train.family_math import (
    KINDS,
    STATE_KEYS,
    optimizer_rows,
    torch_state,
)
from server.train.protocol import Diverged

__all__ = ["VmapFamily", "vmap_key"]

# Layer types whose stacked forward is exact under vmap.
VMAP_LAYERS = ("dense", "activation", "dropout", "layernorm", "conv2d", "maxpool2d",
               "avgpool2d", "flatten", "embedding", "attention", "pool_sequence")
# A family is formed for models with one of these (dense-only models are DenseFamily's, or
# train alone where it cannot take them: bench/vmap_family_bench.py measured these).
VMAP_KINDS = ("conv2d", "embedding", "attention")
VMAP_LOSSES = ("mse", "l1", "huber", "bce", "cross_entropy")
VMAP_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
# What changes only numbers, not operations (a dropout's rate; initialization).
_NUMBERS = {"init", "p"}


def vmap_key(trainer) -> tuple | None:
    """The key of trainers that can train together in a VmapFamily, or None."""
    model = getattr(trainer, "model", None)
    spec = getattr(trainer, "spec", None)
    if model is None or spec is None or not hasattr(model, "layer_specs"):
        return None
    training = spec.training
    if (training.gradient_clip is not None or trainer.loss_name not in VMAP_LOSSES
            or training.optimizer.name not in VMAP_OPTIMIZERS):
        return None
    types = {layer_spec.type for layer_spec in model.layer_specs}
    if not types & set(VMAP_KINDS) or not types <= set(VMAP_LAYERS):
        return None
    layers = []
    for layer_spec in model.layer_specs:
        if (isinstance(layer_spec, DropoutSpec) and layer_spec.p > 0
                and trainer.device.type != "cpu"):
            return None  # CUDA draws dropout masks with another kernel
        layers.append(json.dumps(layer_spec.model_dump(exclude=_NUMBERS), sort_keys=True,
                                 default=str))
    params = tuple((name, tuple(p.shape)) for name, p in model.named_parameters())
    shape = trainer.shape
    return ("vmap", str(trainer.device), shape.task, shape.num_classes, trainer.loss_name,
            tuple(shape.input.dims), shape.input.tokens, trainer.batch_size, tuple(layers),
            params)


class _Member:
    """One job in the family: its trainer, parameters and dropout randomness."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.params = [p for _name, p in trainer.model.named_parameters()]
        self.generator: torch.Generator | None = None
        self.left = False  # diverged: its trainer holds its own (rewound) state now


class VmapFamily:
    """Trainers with equal `vmap_key`s, stacked; see the module docstring."""

    def __init__(self, trainers: list) -> None:
        order = list(dict.fromkeys(KINDS.values()))
        trainers = sorted(trainers, key=lambda t: order.index(
            KINDS[t.spec.training.optimizer.name]))  # each optimizer kind in adjacent rows
        first = trainers[0]
        self.device = first.device
        self.k = len(trainers)
        self.loss_name = first.loss_name
        # Equal in a family (the key holds it); a batch size PATCHed while the engine still
        # had the old key cached costs padding, not exactness.
        self.batch = max(t.batch_size for t in trainers)
        self.members = [_Member(t) for t in trainers]
        self.seconds_per_batch = 0.0  # the scheduler sizes a family's slices from this
        self.steps = 0
        self._plan(first.model)
        self._load_data()
        self._bind()

    # -- set-up ------------------------------------------------------------------------------

    def _plan(self, model: nn.Module) -> None:
        """The layers as the stacked forward runs them, and each parameter's span in `flat`."""
        self.base = copy.deepcopy(model).to("meta")  # the modules' code, no weights of its own
        self.spans: list[tuple[int, int, tuple[int, ...]]] = []
        names, offset = [], 0
        for name, param in model.named_parameters():
            self.spans.append((offset, offset + param.numel(), tuple(param.shape)))
            names.append(name)
            offset += param.numel()
        self.size = offset
        buffers = dict(model.named_buffers())
        self.penalized = [j for j, (_a, _b, shape) in enumerate(self.spans) if len(shape) >= 2]
        self.layers: list[tuple] = []  # ("dropout", input shape) or ("call", module, ...)
        shapes = [tuple(model.input_shape.dims)] + [tuple(s.dims) for s in model.shapes]
        for i, (layer_spec, module) in enumerate(zip(model.layer_specs, self.base.layers,
                                                     strict=True)):
            if isinstance(layer_spec, DropoutSpec):
                self.layers.append(("dropout", shapes[i]))
                continue
            prefix = f"layers.{i}."
            own = [(j, n[len(prefix):]) for j, n in enumerate(names) if n.startswith(prefix)]
            mine = {n[len(prefix):]: b for n, b in buffers.items() if n.startswith(prefix)}
            self.layers.append(("call", module, own, mine))
        self.dropout_p = [[float(s.p) for s in m.trainer.model.layer_specs
                           if isinstance(s, DropoutSpec)] for m in self.members]

    def _load_data(self) -> None:
        """Every member's training split, padded: (K, rows + 1, ...), the last row a zero
        that padded batch slots point at."""
        xs = [m.trainer.data["train"][0] for m in self.members]
        ys = [m.trainer.data["train"][1] for m in self.members]
        rows = max(len(x) for x in xs)
        self.dummy = rows
        self.x = torch.zeros(self.k, rows + 1, *xs[0].shape[1:], dtype=xs[0].dtype,
                             device=self.device)
        self.y = torch.zeros(self.k, rows + 1, *ys[0].shape[1:], dtype=ys[0].dtype,
                             device=self.device)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            self.x[i, :len(x)] = x
            self.y[i, :len(y)] = y
        self.rows_of = torch.arange(self.k, device=self.device).unsqueeze(1)  # (K, 1)

    def _bind(self) -> None:
        """Copy each member's weights and optimizer state in; its parameters become views."""
        k, dev = self.k, self.device
        self.flat = torch.zeros(k, self.size, device=dev, requires_grad=True)
        self.flat.grad = torch.zeros(k, self.size, device=dev)
        data, grad = self.flat.detach(), self.flat.grad
        names = [m.trainer.spec.training.optimizer.name for m in self.members]
        self.optimizers, self._rows = optimizer_rows(names, self.size, dev)
        self.l1 = torch.zeros(k, device=dev)
        self.l2 = torch.zeros(k, device=dev)
        for i, member in enumerate(self.members):
            trainer = member.trainer
            optimizer, row = self._rows[i]
            for param, (a, b, shape) in zip(member.params, self.spans, strict=True):
                data[i, a:b] = param.detach().reshape(-1)
                state = trainer.optimizer.state.get(param, {})
                for key in STATE_KEYS[names[i]]:
                    if key in state:
                        optimizer.state[key][row, a:b] = state[key].reshape(-1)
                if "step" in state:
                    optimizer.steps[row, 0] = float(state["step"])
                param.data = data[i, a:b].view(shape)
                param.grad = grad[i, a:b].view(shape)  # the frames' gradient histograms
            optimizer.set_member(row, trainer.learning_rate, trainer.spec.training.optimizer,
                                 trainer.momentum)
            kind, rate = trainer.regularization
            if kind == "l1":
                self.l1[i] = rate
            elif kind == "l2":
                self.l2[i] = rate
            if any(p > 0 for p in self.dropout_p[i]):
                member.generator = torch.Generator()
                member.generator.set_state(trainer._rng_cpu)
            trainer.family = self
        self.any_l1 = bool((self.l1 != 0).any())
        self.any_l2 = bool((self.l2 != 0).any())
        self.parts = [(data[a:b], grad[a:b], optimizer) for a, b, optimizer in self.optimizers]
        self.forward = vmap(self._forward)

    # -- leaving -----------------------------------------------------------------------------

    def sync(self, trainer) -> None:
        """Write the member's optimizer state and dropout randomness into its Trainer, in the
        format its own torch optimizer keeps (its checkpoint then reads as if alone)."""
        i = next(j for j, m in enumerate(self.members) if m.trainer is trainer)
        member = self.members[i]
        if member.left:
            return
        optimizer, row = self._rows[i]
        name = optimizer.names[row]
        steps = float(optimizer.steps[row, 0])
        momentum = float(optimizer.momentum[row, 0])
        for param, (a, b, shape) in zip(member.params, self.spans, strict=True):
            state = torch_state(name, steps, momentum, trainer.step > 0,
                                lambda key, a=a, b=b, shape=shape:
                                optimizer.state[key][row, a:b].view(shape))
            if state is not None:
                trainer.optimizer.state[param] = state
        if member.generator is not None:
            trainer._rng_cpu = member.generator.get_state()

    def release(self) -> None:
        """Every member syncs and gets parameters of its own again; the family is done."""
        for member in self.members:
            self.sync(member.trainer)  # not a member that left: its state is its own
            for param in member.params:
                param.data = param.data.clone()
                if param.grad is not None:
                    param.grad = param.grad.clone()
            member.trainer.family = None
        self.members = []

    # -- training ----------------------------------------------------------------------------

    def _forward(self, flat: Tensor, x: Tensor, masks: list[Tensor]) -> Tensor:
        """One member's outputs (B, U) from its row of `flat` (vmapped over the members)."""
        drop = 0
        for layer in self.layers:
            if layer[0] == "dropout":
                if masks:
                    x = x * masks[drop]
                drop += 1
                continue
            _kind, module, own, buffers = layer
            params = {name: flat[self.spans[j][0]:self.spans[j][1]].view(self.spans[j][2])
                      for j, name in own}
            x = functional_call(module, (params, buffers), (x,)) if params or buffers \
                else module(x)
        return x

    def _masks(self, counts: list[int]) -> list[Tensor]:
        """Each dropout layer's masks (K, B, *its input): a member's rows drawn from its own
        generator in the shape it draws alone; padded rows and rate 0 keep everything."""
        masks = []
        for position, (_d, shape) in enumerate(d for d in self.layers if d[0] == "dropout"):
            mask = torch.ones(self.k, self.batch, *shape, device=self.device)
            for i, member in enumerate(self.members):
                p = self.dropout_p[i][position]
                if p > 0:
                    noise = torch.empty(counts[i], *shape).bernoulli_(
                        1 - p, generator=member.generator)
                    mask[i, :counts[i]] = noise.div_(1 - p)
            masks.append(mask)
        return masks

    def _losses(self, out: Tensor, y: Tensor, weights: Tensor) -> Tensor:
        """Each member's mean loss over its real rows (`optim.data_loss`), plus its penalty."""
        k, b, units = out.shape
        name = self.loss_name
        if name == "cross_entropy":
            rows = F.cross_entropy(out.reshape(k * b, units), y.reshape(-1),
                                   reduction="none").view(k, b)
        else:
            if y.dtype == torch.int64:
                target = (y.to(out.dtype).unsqueeze(-1) if units == 1
                          else F.one_hot(y, units).to(out.dtype))
            else:
                target = y
            if name == "mse":
                each = F.mse_loss(out, target, reduction="none")
            elif name == "l1":
                each = F.l1_loss(out, target, reduction="none")
            elif name == "huber":
                each = F.huber_loss(out, target, reduction="none")
            else:
                each = F.binary_cross_entropy_with_logits(out, target, reduction="none")
            rows = each.mean(-1)
        losses = (rows * weights).sum(1)  # (K,)
        if self.any_l1 or self.any_l2:
            flat = self.flat
            for j in self.penalized:
                a, b_, _shape = self.spans[j]
                w = flat[:, a:b_]
                if self.any_l1:
                    losses = losses + self.l1 * w.abs().sum(1)
                if self.any_l2:
                    losses = losses + (0.5 * self.l2) * w.square().sum(1)
        return losses

    def _batch(self) -> tuple[Tensor, list[int]]:
        """Every member's next batch as indices (K, B) (padded with the dummy row), drawing a
        member's new epoch permutation from its own generator when it starts one."""
        rows, counts = [], []
        for member in self.members:
            t = member.trainer
            if t._perm is None:
                t._perm = torch.randperm(t.n_train, generator=t.generator).to(self.device)
            idx = t._perm[t._pos:t._pos + t.batch_size]
            counts.append(len(idx))
            if len(idx) < self.batch:
                idx = F.pad(idx, (0, self.batch - len(idx)), value=self.dummy)
            rows.append(idx)
        return torch.stack(rows), counts

    def train(self, n: int) -> dict:
        """Up to `n` steps of every member: {trainer: (records, Diverged or None)}. Stops
        early when a member finishes or diverges (the engine then takes it out and the others
        go on in a new family)."""
        results: dict = {m.trainer: [] for m in self.members}
        failed: dict = {}
        for _ in range(n):
            idx, counts = self._batch()
            x, y = self.x[self.rows_of, idx], self.y[self.rows_of, idx]
            valid = idx != self.dummy
            weights = valid.to(torch.float32) / torch.tensor(
                counts, dtype=torch.float32, device=self.device).unsqueeze(1)
            masks = self._masks(counts) if any(m.generator for m in self.members) else []
            self.flat.grad.zero_()
            out = self.forward(self.flat, x, masks)  # (K, B, U)
            losses = self._losses(out, y, weights)
            losses.sum().backward()
            with torch.no_grad():
                for rows, rows_grad, optimizer in self.parts:
                    optimizer.step(rows, rows_grad)
            self.steps += 1
            values = losses.detach().tolist()
            stop = False
            for i, member in enumerate(self.members):
                t = member.trainer
                if member.left:
                    continue
                t._pos += counts[i]
                t.step += 1
                t.batch_in_epoch += 1
                value = values[i]
                if not math.isfinite(value) or t._pos >= t.n_train:
                    stop = self._member_call(i, value, results, failed) or stop
            if stop:
                break
        for t, error in failed.items():
            error.records = results[t]
        return {t: (records, failed.get(t)) for t, records in results.items()}

    def _member_call(self, i: int, loss: float, results: dict, failed: dict) -> bool:
        """Member i's own Trainer takes over for a moment, with its state synced and its
        randomness in place, as alone: a non-finite batch loss diverges (`_diverge`: its
        rewind and diagnosis), an epoch's end is its `_end_epoch` (evaluation, early
        stopping, schedule, the state kept to rewind to, a divergence found there). True: the
        family must stop (the member finished or diverged)."""
        member = self.members[i]
        t = member.trainer
        self.sync(t)
        before = t.learning_rate
        try:
            with t._own_rng():
                if not math.isfinite(loss):
                    t._diverge("NaN" if math.isnan(loss) else "infinite", t.step)
                results[t].append(t._end_epoch())
        except Diverged as error:
            failed[t] = error
            member.left = True  # it may have rewound: its state is its trainer's now
            return True
        if member.generator is not None:
            member.generator.set_state(t._rng_cpu)
        if t.learning_rate != before:  # its schedule moved on
            optimizer, row = self._rows[i]
            optimizer.set_lr(row, t.learning_rate)
        return t.finished
