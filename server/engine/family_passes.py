"""The batched passes behind a family's frames (server.engine.family_frames), on the family's
flat weight buffer: every layer's output over a grid for many members at once (`forward`:
unit-major `baddbmm` into scratch buffers, activations in place), and the per-row statistics
the frames need (`quantize_rows`: `server.stream.wire.quantize` of every row; `histograms`:
`snapshot._histogram` of every row over its valid entries; `confusion`: one bincount for
every member's test-set confusion matrix).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from server.engine.snapshot import HIST_BINS
from server.train.family import DenseFamily
from server.train.family_math import act_forward

_MINUS_ONE = torch.tensor(-1.0)


def activate(name: str, z: Tensor, slope: float) -> None:
    """`family_math.act_forward` in place (a frame's grids are large: no new buffers).
    tanh as 2 sigmoid(2z) - 1: torch's tanh kernel is several times slower on the CPU, and
    the two differ by about 2e-7, far below a frame's quantization step."""
    if name == "tanh":  # z arrives doubled (`_forward`)
        torch.add(_MINUS_ONE, z.sigmoid_(), alpha=2.0, out=z)
    elif name == "relu":
        z.relu_()
    elif name == "sigmoid":
        z.sigmoid_()
    elif name == "leaky_relu":
        F.leaky_relu_(z, slope)
    elif name == "elu":
        F.elu_(z)
    elif name == "silu":
        F.silu(z, inplace=True)
    elif name != "linear":
        z.copy_(act_forward(name, z, slope))


def forward(family: DenseFamily, a: int, b: int, x: Tensor, work: list,
             output_only: bool = False) -> list[Tensor]:
    """Every layer's output (n, units, points), padded units included, of members a..b-1 on
    inputs `x` (n, features, points): unit-major batched products (several times faster
    than point-major ones for these shapes), written into the buffers `work` (per layer).
    `output_only`: only the last output is wanted; a hidden tanh layer then leaves
    s = sigmoid(2z) and the next layer takes 2s - 1 through its weights (2W, b - W 1), which
    saves a pass over the grid."""
    n = b - a
    flat = family.flat[a:b]
    last = max(i for i, op in enumerate(family.ops) if not isinstance(op, tuple))
    h, outs, halved = x, [], False  # halved: h holds s, the layer's output is 2s - 1
    for i, (op, buffer) in enumerate(zip(family.ops, work, strict=True)):
        if isinstance(op, tuple):  # dropout: the identity in a frame (eval mode)
            outs.append(h)
            continue
        w = flat[:, op.w_at:op.w_at + op.out * op.inp].view(n, op.out, op.inp)
        bias = flat[:, op.b_at:op.b_at + op.out].unsqueeze(2) if op.b_at is not None else None
        if halved:
            shift = w.sum(2, keepdim=True)  # (n, out, 1)
            bias = -shift if bias is None else bias - shift
            w = w * 2.0
        z = buffer[:n]
        scale = 2.0 if op.act == "tanh" else 1.0  # tanh(z) = 2 sigmoid(2z) - 1
        if bias is not None:
            torch.baddbmm(bias, w, h, beta=scale, alpha=scale, out=z)
        else:
            torch.bmm(w, h, out=z)
            if scale != 1.0:
                z.mul_(scale)
        halved = output_only and op.act == "tanh" and i < last
        if halved:
            z.sigmoid_()
        else:
            activate(op.act, z, op.slope)
        outs.append(z)
        h = z
    return outs


def quantize_rows(values: Tensor) -> tuple[np.ndarray, list, list]:
    """`server.stream.wire.quantize` of every row of `values` (R, N) at once; `values` is
    overwritten (it is a frame's scratch buffer)."""
    lo, hi = values.amin(1), values.amax(1)  # a NaN or an infinity shows in these
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        # coded as the row's finite minimum, as quantize does
        finite = torch.isfinite(values)
        lo = torch.where(finite, values, torch.inf).amin(1)
        hi = torch.where(finite, values, -torch.inf).amax(1)
        lo = torch.where(torch.isfinite(lo), lo, 0.0)
        hi = torch.where(torch.isfinite(hi), hi, 0.0)
        values.copy_(torch.where(finite, values, lo.unsqueeze(1)))
    scale = torch.where(hi > lo, 255.0 / torch.where(hi > lo, hi - lo, 1.0), 0.0)
    values.sub_(lo.unsqueeze(1)).mul_(scale.unsqueeze(1)).add_(0.5).clamp_(0, 255)
    return values.to(torch.uint8).cpu().numpy(), lo.tolist(), hi.tolist()


def histograms(values: Tensor, valid: Tensor) -> tuple[np.ndarray, list[list[float]]]:
    """`snapshot._histogram` of every row of `values` (R, L) over its `valid` entries:
    counts (R, HIST_BINS) and each row's [lo, hi], with numpy's float32 arithmetic."""
    ok = valid & torch.isfinite(values)
    lo = torch.where(ok, values, torch.inf).amin(1)
    hi = torch.where(ok, values, -torch.inf).amax(1)
    empty = ~ok.any(1)
    lo = torch.where(empty, 0.0, lo)
    hi = torch.where(empty, 0.0, hi)
    lo64, hi64 = lo.double(), hi.double()
    hi64 = torch.where((hi64 <= lo64) & ~empty, lo64 + 1e-6, hi64)
    scale = (HIST_BINS / torch.where(empty, 1.0, hi64 - lo64)).float()
    safe = torch.where(ok, values, lo.unsqueeze(1))
    bins = ((safe - lo.unsqueeze(1)) * scale.unsqueeze(1)).to(torch.int32)
    bins.clamp_(max=HIST_BINS - 1)
    rows = values.shape[0]
    slot = torch.arange(rows, device=values.device).unsqueeze(1) * HIST_BINS + bins
    slot = torch.where(ok, slot, rows * HIST_BINS)  # invalid entries: one bin past the end
    counts = torch.bincount(slot.reshape(-1), minlength=rows * HIST_BINS + 1)
    counts = counts[:rows * HIST_BINS].view(rows, HIST_BINS).to(torch.int32).cpu().numpy()
    return counts, torch.stack((lo64, hi64), 1).tolist()


def confusion(logits: Tensor, truth: Tensor, valid: Tensor, classes: int,
               how: str) -> np.ndarray:
    """(n, classes, classes) counts from `logits` (n, outputs, rows), as snapshot._confusion
    makes them per job."""
    if logits.shape[1] == 1:
        threshold = 0.0 if how == "sigmoid" else 0.5
        predicted = (logits[:, 0] > threshold).long()
    else:
        predicted = logits.argmax(dim=1)
    n = logits.shape[0]
    cell = (torch.arange(n, device=logits.device).unsqueeze(1) * classes * classes
            + truth * classes + predicted.clamp(0, classes - 1))
    cell = torch.where(valid, cell, n * classes * classes)
    counts = torch.bincount(cell.reshape(-1), minlength=n * classes * classes + 1)
    cells = counts[:n * classes * classes].view(n, classes, classes)
    return cells.to(torch.int32).cpu().numpy()
