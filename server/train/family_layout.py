"""What a family is made of: which trainers may form one (`family_key`), its padded layer
layout (`layout`: every dense layer as wide as its widest member, offsets in the flat buffer)
and its members' data, padded (`load_data`). Used by server.train.family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from server.spec.layers.core import DenseSpec, DropoutSpec
from server.train.family_math import FAMILY_ACTIVATIONS, FAMILY_LOSSES, FAMILY_OPTIMIZERS

SPLITS = ("train", "validation", "test")


def _bucket(n: int) -> int:
    """Sizes up to 16 are one bucket (such models cost their operations' count, not their
    size); above, powers of two, so no member pads to more than twice its own size."""
    return max(4, math.ceil(math.log2(max(1, n))))


def family_key(trainer) -> tuple | None:
    """The key of trainers that can train together, or None (this one trains alone)."""
    model = getattr(trainer, "model", None)
    spec = getattr(trainer, "spec", None)
    if model is None or spec is None or not hasattr(model, "layer_specs"):
        return None
    training = spec.training
    if (training.early_stopping is not None or training.gradient_clip is not None
            or trainer.loss_name not in FAMILY_LOSSES
            or training.optimizer.name not in FAMILY_OPTIMIZERS
            or trainer.shape.input.rank != 1 or trainer.shape.input.tokens is not None):
        return None
    ops: list[tuple] = []
    widths = [trainer.shape.input.dims[0]]
    for layer_spec, module in zip(model.layer_specs, model.layers, strict=True):
        if isinstance(layer_spec, DenseSpec):
            if layer_spec.activation not in FAMILY_ACTIVATIONS:
                return None
            slope = layer_spec.negative_slope if layer_spec.activation == "leaky_relu" else 0.0
            ops.append(("dense", layer_spec.activation, slope, layer_spec.bias))
            widths.append(layer_spec.units)
        elif isinstance(layer_spec, DropoutSpec) and isinstance(module, nn.Dropout):
            if trainer.device.type != "cpu" and layer_spec.p > 0:
                return None  # CUDA draws dropout masks with another kernel
            ops.append(("dropout",))
        else:
            return None
    if not ops or ops[-1][0] != "dense":
        return None
    rows = max(len(x) for x, _ in trainer.data.values())
    return ("dense", str(trainer.device), trainer.shape.task, trainer.shape.num_classes,
            trainer.loss_name, widths[-1], tuple(ops), _bucket(max(widths[:-1])),
            _bucket(rows))


@dataclass
class Dense:
    out: int  # padded sizes
    inp: int
    w_at: int  # offset of the weights in the flat buffer
    b_at: int | None  # offset of the bias, None without bias
    act: str
    slope: float
    unit_mask: Tensor | None = None  # (K, 1, out): padded units of nonzero-at-zero activations
    w: Tensor | None = None  # views into the family's flat buffers (_train_views)
    wt: Tensor | None = None
    b: Tensor | None = None
    gw: Tensor | None = None
    gb: Tensor | None = None


@dataclass
class Member:
    trainer: object
    linears: list[nn.Linear]
    dropout_p: list[float]  # per dropout op
    dropout_width: list[int]  # the member's own width at each dropout op
    generator: torch.Generator | None = None  # its dropout randomness (the trainer's _rng_cpu)
    matrix: Tensor | None = None  # the batches of its current epoch (batches, B) as indices
    events: list = field(default_factory=list)


def layout(family, trainers: list) -> None:
    """The family's members (their linears, dropout rates and widths) and its padded layers."""
    per_member = []
    for trainer in trainers:
        linears, probs, widths = [], [], []
        width = trainer.shape.input.dims[0]
        for layer_spec, module in zip(trainer.model.layer_specs, trainer.model.layers,
                                      strict=True):
            if isinstance(layer_spec, DenseSpec):
                linears.append(module.linear)
                width = layer_spec.units
            else:
                probs.append(float(layer_spec.p))
                widths.append(width)
        per_member.append(Member(trainer, linears, probs, widths))
    family.members = per_member
    family.features = max(t.shape.input.dims[0] for t in trainers)
    offset = 0
    dense_index = 0
    specs = list(trainers[0].model.layer_specs)
    for layer_spec in specs:
        if isinstance(layer_spec, DenseSpec):
            out = max(m.linears[dense_index].out_features for m in per_member)
            inp = max(m.linears[dense_index].in_features for m in per_member)
            w_at, offset = offset, offset + out * inp
            b_at = None
            if layer_spec.bias:
                b_at, offset = offset, offset + out
            slope = layer_spec.negative_slope if layer_spec.activation == "leaky_relu" else 0.0
            family.ops.append(Dense(out, inp, w_at, b_at, layer_spec.activation, slope))
            dense_index += 1
        else:
            family.ops.append(("dropout", len([o for o in family.ops if isinstance(o, tuple)])))
    family.size = offset
    family.units = family.ops[-1].out

def load_data(family) -> None:
    """Every member's splits, padded: (K, rows + 1, features), the last row a dummy that
    padded batch slots point at."""
    k, dev = family.k, family.device
    family.n_train = [m.trainer.n_train for m in family.members]
    family.rows = max(family.n_train)
    family.dummy = family.rows
    family.split_data: dict[str, tuple] = {}
    for split in SPLITS:
        have = [split in m.trainer.data for m in family.members]
        if not any(have):
            continue
        rows = max(len(m.trainer.data[split][0]) for m, h in zip(family.members, have,
                                                               strict=True) if h)
        rows = max(rows, family.rows) if split == "train" else rows
        x = torch.zeros(k, rows + 1, family.features, device=dev)
        target = torch.zeros(k, rows + 1, family.units, device=dev)
        index = torch.zeros(k, rows + 1, dtype=torch.long, device=dev)
        labels = (torch.zeros(k, rows + 1, dtype=torch.long, device=dev)
                  if family.task == "classification" else torch.zeros(k, rows + 1, 1,
                                                                     device=dev))
        mask = torch.zeros(k, rows + 1, dtype=torch.bool, device=dev)
        for i, member in enumerate(family.members):
            if not have[i]:
                continue
            xs, ys = member.trainer.data[split]
            n, f = xs.shape
            x[i, :n, :f] = xs
            mask[i, :n] = True
            if family.task == "classification":
                labels[i, :n] = ys
                index[i, :n] = ys
                if family.units == 1:
                    target[i, :n, 0] = ys.to(target.dtype)
                else:
                    target[i, :n] = nn.functional.one_hot(ys, family.units).to(target.dtype)
            else:
                labels[i, :n] = ys
                target[i, :n] = ys
        family.split_data[split] = (x, target, index, labels, mask, have)
    family.x, family.target, family.index = family.split_data["train"][:3]
    _stack_splits(family)
    family.batch = max(m.trainer.batch_size for m in family.members)
    family.dummies = torch.full((family.batch,), family.dummy, dtype=torch.long, device=dev)



def _stack_splits(family) -> None:
    """Every split's rows stacked for the epoch-end evaluation, split s of member i at row
    s * K + i, each padded (mask False) to the longest split: one forward pass and one set of
    metric operations then covers all splits at once (`family_eval`)."""
    splits = list(family.split_data)
    width = max(data[0].shape[1] for data in family.split_data.values()) - 1  # no dummy row

    def stacked(j: int) -> torch.Tensor:
        parts = []
        for split in splits:
            t = family.split_data[split][j][:, :-1]
            if t.shape[1] < width:
                t = torch.cat((t, t.new_zeros((t.shape[0], width - t.shape[1], *t.shape[2:]))),
                              1)
            parts.append(t)
        return torch.cat(parts)

    family.eval_splits = splits
    family.eval_data = tuple(stacked(j) for j in range(5))  # x, target, index, labels, mask
