"""A dense family's steps in C (server/train/kernel): the ctypes mirror of the kernel's
structs, filled once from a `DenseFamily` (pointers into its live buffers: weights, gradients,
optimizer state and hyperparameter columns, which the family updates in place), and
`KernelSteps.run`, which runs a chunk's steps between the epoch ends the family handles.

`KernelSteps.make(family)` is None where the C path does not apply (no library, not the CPU,
not float32, too many layers); the family then takes its torch path.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_double, c_float, c_int32, c_int64

import torch
from torch import Tensor

from server.train import kernel
from server.train.family_batches import dropout_masks
from server.train.family_math import KIND_STATE

MAX_OPS = 32
ACTS = {"tanh": 0, "relu": 1, "sigmoid": 2, "leaky_relu": 3, "elu": 4, "gelu": 5, "silu": 6,
        "softplus": 7, "linear": 8}
LOSSES = {"mse": 0, "l1": 1, "huber": 2, "bce": 3, "cross_entropy": 4}
KIND_CODES = {"sgd": 0, "adagrad": 1, "rmsprop": 2, "adam": 3}
_F, _D = POINTER(c_float), POINTER(c_double)


class Op(ctypes.Structure):
    _fields_ = [("dense", c_int32), ("out", c_int32), ("inp", c_int32), ("w_at", c_int32),
                ("b_at", c_int32), ("act", c_int32), ("slope", c_float), ("drop", c_int32)]


class Layout(ctypes.Structure):
    _fields_ = [(name, c_int32) for name in ("n_ops", "k", "size", "features", "units", "batch",
                                             "loss", "mask_width", "n_drop")] + [
        ("ops", Op * MAX_OPS)]


_COLUMNS = ("lr", "neg_lr", "momentum", "a", "c", "eps", "alpha", "rest_alpha", "beta1",
            "beta2", "rest_beta1", "rest_beta2", "l2_decay", "decay")


class Member(ctypes.Structure):
    _fields_ = ([("flat", _F), ("grad", _F), ("features", c_int32), ("out", c_int32 * MAX_OPS),
                 ("kind", c_int32), ("plain", c_int32), ("s1", _F), ("s2", _F),
                 ("steps", _D)] + [(name, _F) for name in _COLUMNS]
                + [("lr64", _D), ("l1_rate", _F), ("l2_rate", _F)])


class Chunk(ctypes.Structure):
    _fields_ = [("m", c_int32), ("rows", c_int32), ("threads", c_int32),
                ("order", POINTER(c_int64)), ("cursor", POINTER(c_int64)),
                ("batch", POINTER(c_int32)), ("samples", POINTER(c_int32)), ("x", _F),
                ("target", _F),
                ("index", POINTER(c_int64)), ("masks", _F), ("snap", POINTER(c_int32)),
                ("snaps", _F), ("losses", _F), ("work", _F), ("work_stride", ctypes.c_size_t)]


def _ptr(tensor: Tensor, kind=_F, at: int = 0):
    """A pointer to element `at` of a contiguous tensor."""
    return ctypes.cast(tensor.data_ptr() + at * tensor.element_size(), kind)


class KernelSteps:
    """The C steps of one family; see the module docstring."""

    @classmethod
    def make(cls, family) -> KernelSteps | None:
        if (family.device.type != "cpu" or family.flat.dtype != torch.float32
                or len(family.ops) > MAX_OPS):
            return None
        lib = kernel.library()
        return cls(family, lib) if lib is not None else None

    def __init__(self, family, lib: ctypes.CDLL) -> None:
        self.family, self.lib = family, lib
        ops = family.ops
        self.n_drop = sum(1 for op in ops if isinstance(op, tuple))
        widths = [op.out for op in ops if not isinstance(op, tuple)] + [family.features]
        self.mask_width = max(widths) if self.n_drop else 0
        layout = Layout(n_ops=len(ops), k=family.k, size=family.size, features=family.features,
                        units=family.units, batch=family.batch, loss=LOSSES[family.loss_name],
                        mask_width=self.mask_width, n_drop=self.n_drop)
        for p, op in enumerate(ops):
            if isinstance(op, tuple):
                layout.ops[p] = Op(dense=0, drop=op[1])
            else:
                layout.ops[p] = Op(dense=1, out=op.out, inp=op.inp, w_at=op.w_at,
                                   b_at=-1 if op.b_at is None else op.b_at, act=ACTS[op.act],
                                   slope=op.slope)
        self.layout = layout
        self.members = (Member * family.k)()
        for i, member in enumerate(family.members):
            self.members[i] = self._member(i, member)
        self.batch = torch.tensor([m.trainer.batch_size for m in family.members],
                                  dtype=torch.int32)
        self.samples = torch.tensor(family.n_train, dtype=torch.int32)
        self.threads = kernel.threads()
        self.work_stride = int(lib.work_floats(byref(layout)))
        self.work = torch.empty(self.work_stride * self.threads)

    def _member(self, i: int, member) -> Member:
        family = self.family
        optimizer, row = family._rows[i]
        c = Member(flat=_ptr(family.flat, at=i * family.size),
                   grad=_ptr(family.grad, at=i * family.size),
                   features=member.trainer.shape.input.dims[0],
                   kind=KIND_CODES[optimizer.kind], plain=int(optimizer.plain),
                   steps=_ptr(optimizer.steps, _D, row), lr64=_ptr(optimizer.lr64, _D, row),
                   l1_rate=_ptr(family.l1_rate, at=i), l2_rate=_ptr(family.l2_rate, at=i))
        for name in _COLUMNS:
            setattr(c, name, _ptr(getattr(optimizer, name), at=row))
        state = [optimizer.state[key] for key in KIND_STATE[optimizer.kind]]  # s1, s2
        if state:
            c.s1 = _ptr(state[0], at=row * family.size)
        if len(state) > 1:
            c.s2 = _ptr(state[1], at=row * family.size)
        dense = drop = 0
        for p, op in enumerate(family.ops):
            if isinstance(op, tuple):
                c.out[p] = member.dropout_width[drop]
                drop += 1
            else:
                c.out[p] = member.linears[dense].out_features
                dense += 1
        return c

    def masks(self, chunk: dict) -> Tensor | None:
        """Every step's dropout masks, drawn in the order the torch path draws them."""
        if not self.n_drop or chunk["counts"] is None:
            return None
        family = self.family
        out = torch.zeros(chunk["m"], self.n_drop, family.k, family.batch, self.mask_width)
        for step in range(chunk["m"]):
            for d, mask in enumerate(dropout_masks(family, chunk["counts"][step])):
                out[step, d, :, :, :mask.shape[2]] = mask
        return out

    def run(self, chunk: dict, on_end) -> Tensor:
        """The chunk's steps; the losses (m, K). `on_end(step, member, weights)` for each epoch
        end, in order, after the steps up to it ran (the family moves the member's counters
        and schedule there); a member with a schedule stops the steps after its epoch ends, so
        that its new learning rate counts from the next step."""
        m, family = chunk["m"], self.family
        k = family.k
        ends = [(step, i) for step in sorted(chunk["events"]) for i in chunk["events"][step]]
        snap = torch.full((m * k,), -1, dtype=torch.int32)
        if ends:
            snap[torch.tensor([step * k + i for step, i in ends])] = torch.arange(
                len(ends), dtype=torch.int32)
        snaps = torch.empty(len(ends), family.size)
        losses = torch.empty(m, k)
        order = chunk["order"]
        cursor = torch.tensor([chunk["start"], chunk["pos"]], dtype=torch.int64).T.contiguous()
        masks = self.masks(chunk)
        c = Chunk(m=m, rows=family.x.shape[1], threads=self.threads,
                  order=_ptr(order, POINTER(c_int64)), cursor=_ptr(cursor, POINTER(c_int64)),
                  batch=_ptr(self.batch, POINTER(c_int32)),
                  samples=_ptr(self.samples, POINTER(c_int32)), x=_ptr(family.x),
                  target=_ptr(family.target),
                  index=_ptr(family.index, POINTER(c_int64)), snap=_ptr(snap, POINTER(c_int32)),
                  snaps=_ptr(snaps), losses=_ptr(losses), work=_ptr(self.work),
                  work_stride=self.work_stride)
        if masks is not None:
            c.masks = _ptr(masks)
        stops = sorted({step for step, i in ends if i in family.scheduled}) + [m - 1]
        at = 0
        done = 0
        for stop in stops:
            if stop < at:
                continue
            self.lib.family_steps(byref(self.layout), self.members, byref(c), at, stop + 1)
            at = stop + 1
            while done < len(ends) and ends[done][0] <= stop:
                on_end(ends[done][0], ends[done][1], snaps[done])
                done += 1
        return losses
