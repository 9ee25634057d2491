"""A family: several jobs' dense networks trained as one tensor program, one step for all.

`family_key(trainer)` says which trainers can train together (None: this one trains alone):
equal keys mean the same sequence of operations (depth, activations, bias, dropout places,
loss, output units) and comparable sizes (widths, data). Members with different optimizers
share a family: members are kept in rows by optimizer kind, each kind updates its own rows.
`DenseFamily(trainers)` stacks their weights, padded to the largest width of each layer, into
one flat buffer (K jobs x P parameters); each job's `nn.Linear` parameters become views into
it, so the job's own model (frames, evaluation, export) always sees the live weights.

`train(n)` runs n steps of every member. Each member keeps everything that makes its run its
own: its data, its batch order (drawn from its own generator exactly when it would draw alone),
batch size, learning rate and schedule, optimizer hyperparameters and state, regularization
rate, dropout randomness (its own generator, same draws as alone) and epoch budget. Steps run
in chunks between events known in advance (a member finishing its budget ends a chunk); the
batches of a chunk are gathered at once. A member's epoch end snapshots its weights; the
records of a chunk are evaluated together (`family_eval`). The result: the same records,
weights and checkpoints as the job alone, within float rounding.

`sync(trainer)` writes a member's optimizer state and dropout randomness back into its
Trainer (before a checkpoint); `release()` gives every member its own parameters again.
What is not here: which jobs form families and when (server.engine.families).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from server.train.diagnose import exploded
from server.train.family_batches import dropout_masks, gather, plan
from server.train.family_eval import evaluate_snapshots
from server.train.family_kernel import KernelSteps
from server.train.family_layout import Dense, Member, family_key, layout, load_data
from server.train.family_math import (
    KINDS,
    NONZERO_AT_ZERO,
    STATE_KEYS,
    act_backward,
    act_forward,
    grad_scale,
    mean_loss,
    optimizer_rows,
    output_grad,
    torch_state,
)
from server.train.protocol import Diverged

__all__ = ["DenseFamily", "family_key"]

MAX_CHUNK = 128  # steps gathered at once


class DenseFamily:
    """Trainers with equal `family_key`s, stacked; see the module docstring."""

    def __init__(self, trainers: list) -> None:
        order = list(KINDS.values())
        trainers = sorted(trainers, key=lambda t: order.index(
            KINDS[t.spec.training.optimizer.name]))  # each optimizer kind in adjacent rows
        first = trainers[0]
        self.device = first.device
        self.k = len(trainers)
        self.loss_name = first.loss_name
        self.task = first.shape.task
        self.num_classes = first.shape.num_classes or 2
        self.threshold = 0.0 if self.loss_name == "bce" else 0.5
        self.members: list[Member] = []
        self.ops: list = []
        self.seconds_per_batch = 0.0  # the scheduler sizes a family's slices from this
        self.steps = 0
        self.ends: dict[tuple[int, int], tuple[int, Tensor]] = {}  # (member, epoch) -> weights
        layout(self, trainers)
        # members whose learning rate moves at their epoch ends
        self.scheduled = {i for i, m in enumerate(self.members)
                          if m.trainer.spec.training.schedule.name != "constant"}
        load_data(self)
        self._bind()
        self.kernel = KernelSteps.make(self)  # the C steps, or None: the torch path

    # -- set-up ------------------------------------------------------------------------------

    def _bind(self) -> None:
        """Copy each member's weights and optimizer state in; its parameters become views."""
        k, dev = self.k, self.device
        self.flat = torch.zeros(k, self.size, device=dev)
        self.penalized = torch.zeros(1, self.size, device=dev)
        names = [m.trainer.spec.training.optimizer.name for m in self.members]
        # (first row, end, its optimizer) per kind; member -> (its optimizer, its row there)
        self.optimizers, self._rows = optimizer_rows(names, self.size, dev)
        self.l1_rate = torch.zeros(k, 1, device=dev)
        self.l2_rate = torch.zeros(k, 1, device=dev)
        for dense in (o for o in self.ops if isinstance(o, Dense)):
            self.penalized[0, dense.w_at:dense.w_at + dense.out * dense.inp] = 1.0
            if dense.act in NONZERO_AT_ZERO:
                dense.unit_mask = torch.zeros(k, 1, dense.out, device=dev)
        for i, member in enumerate(self.members):
            trainer = member.trainer
            for dense, linear in zip(self._denses(), member.linears, strict=True):
                if dense.unit_mask is not None:
                    dense.unit_mask[i, 0, :linear.out_features] = 1.0
                for param, view in self._views(i, dense, linear):
                    view.copy_(param.detach())
                    state = trainer.optimizer.state.get(param, {})
                    for key in STATE_KEYS[names[i]]:
                        if key in state:
                            self._state_view(key, i, dense, linear, param)[...] = state[key]
                    if "step" in state:
                        optimizer, row = self._rows[i]
                        optimizer.steps[row, 0] = float(state["step"])
                    param.data = view
            optimizer, row = self._rows[i]
            optimizer.set_member(row, trainer.learning_rate, trainer.spec.training.optimizer,
                                 trainer.momentum)
            kind, rate = trainer.regularization
            if kind == "l1":
                self.l1_rate[i, 0] = rate
            elif kind == "l2":
                self.l2_rate[i, 0] = rate
            if any(p > 0 for p in member.dropout_p):
                member.generator = torch.Generator()
                member.generator.set_state(trainer._rng_cpu)
            trainer.family = self
        self._train_views()

    def _train_views(self) -> None:
        """Views of every layer's weights, biases and their gradients in the flat buffers,
        made once: the optimizer updates `flat` in place, so they stay valid."""
        k = self.k
        self.grad = torch.zeros(k, self.size, device=self.device)
        for dense in self._denses():
            span = slice(dense.w_at, dense.w_at + dense.out * dense.inp)
            dense.w = self.flat[:, span].view(k, dense.out, dense.inp)
            dense.wt = dense.w.transpose(1, 2)
            dense.gw = self.grad[:, span].view(k, dense.out, dense.inp)
            dense.b = dense.gb = None
            if dense.b_at is not None:
                bias = slice(dense.b_at, dense.b_at + dense.out)
                dense.b = self.flat[:, bias].unsqueeze(1)
                dense.gb = self.grad[:, bias]
        self.l1_penalized = self.l1_rate * self.penalized  # (K, P)
        self.l2_penalized = self.l2_rate * self.penalized
        self.any_l1 = bool((self.l1_rate != 0).any())
        self.any_l2 = bool((self.l2_rate != 0).any())
        # Each member's `.grad` is a view of its gradient here, as alone: the frames'
        # gradient histograms read it.
        for i, member in enumerate(self.members):
            for dense, linear in zip(self._denses(), member.linears, strict=True):
                for param, view in self._views(i, dense, linear, self.grad):
                    param.grad = view

    def _denses(self) -> list[Dense]:
        return [o for o in self.ops if isinstance(o, Dense)]

    def _views(self, i: int, dense: Dense, linear: nn.Linear,
               buffer: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """(parameter, its region of `buffer` (the weights by default)) of member i's layer."""
        buffer = self.flat if buffer is None else buffer
        o, n = linear.out_features, linear.in_features
        weight = buffer[i, dense.w_at:dense.w_at + dense.out * dense.inp]
        pairs = [(linear.weight, weight.view(dense.out, dense.inp)[:o, :n])]
        if linear.bias is not None:
            pairs.append((linear.bias, buffer[i, dense.b_at:dense.b_at + o]))
        return pairs

    def _state_view(self, key: str, i: int, dense: Dense, linear: nn.Linear,
                    param: Tensor) -> Tensor:
        optimizer, row = self._rows[i]
        buffer = optimizer.state[key][row]
        o, n = linear.out_features, linear.in_features
        if param is linear.weight:
            return buffer[dense.w_at:dense.w_at + dense.out * dense.inp].view(
                dense.out, dense.inp)[:o, :n]
        return buffer[dense.b_at:dense.b_at + o]

    # -- leaving -----------------------------------------------------------------------------

    def sync(self, trainer) -> None:
        """Write the member's optimizer state and dropout randomness into its Trainer, in the
        format its own torch optimizer keeps (its checkpoint then reads as if alone)."""
        i = next(j for j, m in enumerate(self.members) if m.trainer is trainer)
        member = self.members[i]
        optimizer, row = self._rows[i]
        name = optimizer.names[row]
        steps = float(optimizer.steps[row, 0])
        momentum = float(optimizer.momentum[row, 0])
        for dense, linear in zip(self._denses(), member.linears, strict=True):
            for param, _view in self._views(i, dense, linear):
                state = torch_state(name, steps, momentum, trainer.step > 0,
                                    lambda key, d=dense, lin=linear, p=param:
                                    self._state_view(key, i, d, lin, p))
                if state is not None:
                    trainer.optimizer.state[param] = state
        if member.generator is not None:
            trainer._rng_cpu = member.generator.get_state()

    def release(self) -> None:
        """Every member syncs and gets parameters of its own again; the family is done."""
        for member in self.members:
            self.sync(member.trainer)
            for linear in member.linears:
                for param in linear.parameters():
                    param.data = param.data.clone()
                    if param.grad is not None:
                        param.grad = param.grad.clone()
            member.trainer.family = None
        self.members = []

    def state_at(self, trainer, epoch: int) -> tuple[int, Callable[[], dict]] | None:
        """(step, a function giving the member's model state dict) at the end of `epoch`,
        when it ended during the last `train` call (its weights were snapshotted there); else
        None. The function is cheap to keep (the snapshot row and the layout, no copy) and
        still works after the family changed. The timeline pictures a member's kept epochs
        exactly with it."""
        i = next((j for j, m in enumerate(self.members) if m.trainer is trainer), None)
        entry = self.ends.get((i, epoch)) if i is not None else None
        if entry is None:
            return None
        step, row = entry
        pairs = list(zip(self._denses(), self.members[i].linears, strict=True))
        views = self._views

        def state() -> dict[str, Tensor]:
            buffer = row.unsqueeze(0).expand(i + 1, -1)  # row i of a (K, size) buffer
            values = {}
            for dense, linear in pairs:
                for param, view in views(i, dense, linear, buffer):
                    values[param] = view.clone()
            out = {name: values[p] if p in values else p.detach().clone()
                   for name, p in trainer.model.named_parameters()}
            for name, b in trainer.model.named_buffers():
                out[name] = b.detach().clone()
            return out

        return step, state

    # -- training ----------------------------------------------------------------------------

    def train(self, n: int) -> dict:
        """Up to `n` steps of every member: {trainer: (records, Diverged or None)}. Stops
        early when a member finishes its epoch budget or diverges (the engine then takes it
        out and the others go on in a new family)."""
        results = {m.trainer: [] for m in self.members}
        failed: dict = {}
        done = 0
        self.ends = {}
        while done < n:
            m = self._chunk_length(n - done)
            chunk = plan(self, m) if self.kernel is not None else gather(self, m)
            losses, snapshots = self._run(chunk)
            for _step, ended, weights, infos in snapshots:
                for row, (i, info) in enumerate(zip(ended, infos, strict=True)):
                    self.ends[(i, info["epoch"])] = (info["step"], weights[row])
            done += m
            self.steps += m
            stop = self._finish_chunk(chunk, losses, snapshots, results, failed)
            if stop:
                break
        return {t: (records, failed.get(t)) for t, records in results.items()}

    def _chunk_length(self, limit: int) -> int:
        m = min(limit, MAX_CHUNK)
        for member in self.members:
            t = member.trainer
            if t.epochs is None:
                continue
            per_epoch = math.ceil(t.n_train / t.batch_size)
            left = (t.epochs - t.epoch - 1) * per_epoch + (per_epoch - t.batch_in_epoch)
            m = min(m, max(1, left))
        return m

    def _run(self, chunk: dict) -> tuple[Tensor, list]:
        """The chunk's steps; (losses (m, K), weight snapshots at epoch ends)."""
        if self.kernel is not None:
            ends: dict[int, tuple[list, list, list]] = {}

            def on_end(step: int, i: int, weights: Tensor) -> None:
                members, rows, infos = ends.setdefault(step, ([], [], []))
                members.append(i)
                rows.append(weights)
                infos += self._epoch_end([i], step)

            losses = self.kernel.run(chunk, on_end)
            return losses, [(step, *ends[step]) for step in sorted(ends)]
        outs, snapshots = [], []
        flat, grad = self.flat, self.grad
        parts = [(flat[a:b], grad[a:b], optimizer) for a, b, optimizer in self.optimizers]
        events = chunk["events"]
        xs, targets = chunk["x"].unbind(0), chunk["target"].unbind(0)
        scales = grad_scale(self.loss_name, chunk["weights"], self.units).unbind(0)
        counts = chunk["counts"]
        for step in range(chunk["m"]):
            masks = dropout_masks(self, counts[step]) if counts else None
            outs.append(self._step(xs[step], targets[step], scales[step], masks))
            if self.any_l2:
                grad.addcmul_(self.l2_penalized, flat)
            if self.any_l1:
                grad.addcmul_(self.l1_penalized, torch.sign(flat))
            for rows, rows_grad, optimizer in parts:
                optimizer.step(rows, rows_grad)
            ended = events.get(step)
            if ended:
                snapshots.append((step, ended, flat[ended].clone(),
                                  self._epoch_end(ended, step)))
        out = torch.stack(outs)  # (m, K, B, U): every step's loss at once
        m, k, b, u = out.shape
        losses = mean_loss(self.loss_name, out.view(m * k, b, u),
                           chunk["target"].view(m * k, b, u), chunk["index"].view(m * k, b),
                           chunk["weights"].view(m * k, b) > 0).view(m, k)
        return losses, snapshots

    def _step(self, x: Tensor, target: Tensor, scale: Tensor,
              masks: list[Tensor] | None) -> Tensor:
        """One training step's forward and backward; the gradients land in `self.grad`.
        Returns the outputs (K, B, U)."""
        saved = []
        h = x
        drop = 0
        for op in self.ops:
            if isinstance(op, Dense):
                z = (torch.baddbmm(op.b, h, op.wt) if op.b is not None
                     else torch.bmm(h, op.wt))
                a = act_forward(op.act, z, op.slope)
                if op.unit_mask is not None:
                    a = a * op.unit_mask
                saved.append((h, z, a))
                h = a
            else:
                mask = masks[drop] if masks is not None else None
                if mask is not None:
                    h = h * mask
                saved.append(mask)
                drop += 1
        out = h
        g = output_grad(self.loss_name, out, target, scale)
        for position in range(len(self.ops) - 1, -1, -1):
            op = self.ops[position]
            if not isinstance(op, Dense):
                if saved[position] is not None:
                    g = g * saved[position]
                continue
            h, z, a = saved[position]
            g = act_backward(op.act, g, z, a, op.slope)
            torch.bmm(g.transpose(1, 2), h, out=op.gw)
            if op.gb is not None:
                torch.sum(g, 1, out=op.gb)
            if position > 0:
                g = torch.bmm(g, op.w)
        return out

    def _epoch_end(self, ended: list[int], step: int) -> list[dict]:
        """Members `ended` finish an epoch: their counters, schedule and budget move on as
        `Trainer._end_epoch` moves them; what the record needs is returned."""
        infos = []
        for i in ended:
            t = self.members[i].trainer
            infos.append({"lr": t.learning_rate, "epoch": t.epoch + 1, "step": t.step + step + 1,
                          "batch_size": t.batch_size, "penalty": t.regularization})
            t.epoch += 1
            if t.epochs is not None and t.epoch >= t.epochs and not t.finished:
                t.finished = True
                t.stop_reason = "epochs"
            if i not in self.scheduled:
                continue  # a constant schedule: the rate stays
            before = t.learning_rate
            t._apply_lr()
            if t.learning_rate != before:
                optimizer, row = self._rows[i]
                optimizer.set_lr(row, t.learning_rate)
        return infos

    def _finish_chunk(self, chunk: dict, losses: Tensor, snapshots: list, results: dict,
                      failed: dict) -> bool:
        """Counters of the epoch under way, the chunk's records, divergences (as alone: a
        non-finite batch loss first, then a non-finite train loss at an epoch end); True when
        the family must stop (a member finished or diverged)."""
        m = chunk["m"]
        last_end: dict[int, int] = {}
        for step, ended, *_ in snapshots:
            for i in ended:
                last_end[i] = step
        for i, member in enumerate(self.members):
            t = member.trainer
            t.step += m
            if i in last_end:
                t.batch_in_epoch = m - 1 - last_end[i]
                t._pos = t.batch_in_epoch * t.batch_size
            else:
                t.batch_in_epoch += m
                t._pos += m * t.batch_size
        records = evaluate_snapshots(self, snapshots)
        bad = ~torch.isfinite(losses)  # (m, K)
        first_bad: dict[int, tuple[int, str]] = {}
        if bool(bad.any()):
            for i in bad.any(0).nonzero().flatten().tolist():
                step = int(bad[:, i].nonzero()[0])
                what = "NaN" if bool(torch.isnan(losses[step, i])) else "infinite"
                first_bad[i] = (step, what)
        stop = False
        for i, member in enumerate(self.members):
            t = member.trainer
            cut = first_bad.get(i)
            kept, diverged = [], None
            for step, record, raw in records.get(i, []):
                if cut is not None and step >= cut[0]:
                    break
                if not math.isfinite(raw):
                    diverged = (record["epoch"], "NaN" if math.isnan(raw) else "infinite")
                    break
                if exploded(raw, t.first_loss):  # as Trainer._end_epoch judges it
                    diverged = (record["epoch"], "exploding")
                    break
                if t.first_loss is None:
                    t.first_loss = raw
                kept.append(record)
            if diverged is None and cut is not None:
                diverged = (chunk["epoch0"][i] + len(kept) + 1, cut[1])
            results[t].extend(kept)
            if diverged is not None:
                t.finished = True
                t.stop_reason = "diverged"
                error = Diverged(f"diverged: loss became {diverged[1]} at epoch {diverged[0]}; "
                                 "try a lower learning rate", what=diverged[1],
                                 epoch=diverged[0], good_epoch=diverged[0] - 1,
                                 step=(t.step - m + cut[0] + 1) if cut is not None else None)
                error.records = results[t]
                failed[t] = error
                stop = True
            elif t.finished:
                stop = True
        return stop

