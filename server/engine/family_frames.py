"""The frames of a family's watched jobs, built together (issue 17): one batched pass each.

When several jobs due for a frame train in the same `server.train.family.DenseFamily` on 2-D
points, `FamilyFrames.frames(family, items)` builds all their frames at once from the family's
live weight buffer (`family.flat`, `family.grad`): one batched forward over the thumbnail grid
(every layer's activations: the per-neuron heatmaps), one over the 100x100 boundary grid, one
over the test set (the confusion matrices), then one quantization of all the maps, one
histogram pass over every layer's weights and gradients, and per member only the cutting of
its own rows and units and the byte assembly (`wire.encode`). The passes themselves are in
`server.engine.family_passes`. Each member's grid features are
padded with zeros to the family's feature width, as `family_layout` pads its data; padded
weights are zero, so a member's own units compute what its model alone computes.

The frames decode to what `server.engine.snapshot.Snapshots.frame` makes for each job alone:
the same header fields (`seq` continues the job's own count: its `Context` is shared), array
names, order, shapes and dtypes, values within one quantization step (the histograms and
confusion matrices equal; tests/engine/test_family_frames.py). The time it takes is charged
to the snapshots' `FrameBudget`, an equal part per frame. A member with `detail: "boundary"`
gets only the boundary map; with `detail: "tile"` only the boundary map on the coarser
TILE_BOUNDARY grid, from a pass of its own over that grid. What cannot be batched (a model
over WEIGHTS_MAX_PARAMETERS, other kinds of data) is refused by `batch_family` and goes the
per-job way.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from server.engine.family_passes import confusion as confusion_counts
from server.engine.family_passes import forward, histograms, quantize_rows
from server.engine.samples import BOUNDARY, THUMBNAIL
from server.engine.snapshot import (
    CONFUSION_MAX,
    LIGHT_DETAILS,
    PROTOCOL,
    TILE_BOUNDARY,
    WEIGHTS_MAX_PARAMETERS,
    Context,
    Snapshots,
    coarse_grid,
    output_transform,
    trainer_classes,
)
from server.stream.wire import encode, quantize
from server.train.family import DenseFamily

WORK_VALUES = 4_000_000  # floats of one pass's scratch outputs; more members go in groups


def batch_family(trainer, dataset) -> DenseFamily | None:
    """The dense family whose frames can include this job's, or None (its own frame)."""
    family = getattr(trainer, "family", None)
    if (not isinstance(family, DenseFamily) or not family.members
            or dataset.shape.kind != "points2d"
            or family.size > WEIGHTS_MAX_PARAMETERS):  # the frame sends every parameter
        return None
    return family


@dataclass
class _Layer:
    """One dense layer of the family: where each member's parameters lie in the flat row."""

    index: int  # the layer's index in the model (captures, array names)
    sizes: list[tuple[int, int, bool]]  # per member: (out, in, has bias)
    gather: Tensor  # (K, L) columns of `flat` holding the member's weights then bias
    valid: Tensor  # (K, L) which of them are real (the rest: padding)


class _Batch:
    """What is fixed for one family: members' contexts, their padded inputs stacked (filled
    as each member is first seen: only the jobs' own records know their data sets), where
    each member's parameters lie, its own widths, and the scratch buffers of the passes."""

    def __init__(self, family: DenseFamily) -> None:
        self.family = weakref.ref(family)
        self.trainers = [m.trainer for m in family.members]
        self.row = {id(t): i for i, t in enumerate(self.trainers)}
        k, features, device = family.k, family.features, family.device
        self.contexts: list[Context | None] = [None] * k
        self.inputs: list[tuple | None] = [None] * k  # input heatmap codes: constant per job
        # Inputs unit-major, as the passes want them: (K, features, points).
        self.thumb = torch.zeros(k, features, THUMBNAIL * THUMBNAIL, device=device)
        self.fine = torch.zeros(k, features, BOUNDARY * BOUNDARY, device=device)
        self.coarse = torch.zeros(k, features, TILE_BOUNDARY * TILE_BOUNDARY, device=device)
        self.classes = trainer_classes(self.trainers[0])
        n = max(min(CONFUSION_MAX, len(t.data["test"][0])) if "test" in t.data else 0
                for t in self.trainers) if self.classes else 0
        self.test_x = torch.zeros(k, features, n, device=device)
        self.test_y = torch.zeros(k, n, dtype=torch.long, device=device)
        self.test_valid = torch.zeros(k, n, dtype=torch.bool, device=device)
        self.layers = self._layers(family)
        self.widths = [_own_widths(family, m) for m in family.members]
        units = sum(op.out for op in family.ops if not isinstance(op, tuple))
        self.group = max(1, min(k, WORK_VALUES // (units * BOUNDARY * BOUNDARY)))
        self._work: dict[str, list] = {}

    def work(self, grid: str) -> list:
        """Scratch outputs of each dense layer over `grid` for `group` members at once."""
        if grid not in self._work:
            family = self.family()
            points = {"fine": self.fine, "coarse": self.coarse, "thumb": self.thumb,
                      "test": self.test_x}[grid]
            self._work[grid] = [
                None if isinstance(op, tuple) else torch.empty(
                    self.group, op.out, points.shape[2], device=family.device)
                for op in family.ops]
        return self._work[grid]

    def fill(self, snapshots: Snapshots, row: int, trainer, dataset) -> None:
        """Member `row`'s inputs, from its frame context, into the stacked buffers."""
        known = self.contexts[row]
        if known is not None and snapshots.contexts.get(trainer) is known:
            return
        ctx = snapshots._context(trainer, dataset)
        coarse_grid(ctx, dataset)  # the TILE_BOUNDARY grid's features, into ctx.inputs
        self.contexts[row] = ctx
        self.inputs[row] = quantize(ctx.quantized_input)
        for name, buffer in (("thumb", self.thumb), ("fine", self.fine),
                             ("coarse", self.coarse)):
            x = ctx.inputs[name]  # (points, features)
            buffer[row] = 0.0
            buffer[row, :x.shape[1]] = x.T
        self.test_valid[row] = False
        if self.classes and "test_x" in ctx.inputs:
            x, y = ctx.inputs["test_x"], ctx.inputs["test_y"].long()
            if x.shape[0] > self.test_x.shape[2]:
                raise ValueError("the test set is longer than the family's")
            self.test_x[row] = 0.0
            self.test_x[row, :x.shape[1], :x.shape[0]] = x.T
            self.test_y[row, :len(y)] = y
            self.test_valid[row, :len(y)] = True

    def _layers(self, family: DenseFamily) -> list[_Layer]:
        layers = []
        dense = 0
        for index, op in enumerate(family.ops):
            if isinstance(op, tuple):
                continue
            sizes, columns = [], []
            for member in family.members:
                linear = member.linears[dense]
                o, n = linear.out_features, linear.in_features
                weights = (op.w_at + torch.arange(o).unsqueeze(1) * op.inp
                           + torch.arange(n)).reshape(-1)  # row-major (o, n) in (out, inp)
                has_bias = linear.bias is not None
                bias = (op.b_at + torch.arange(o) if has_bias
                        else torch.empty(0, dtype=torch.long))
                columns.append(torch.cat((weights, bias)))
                sizes.append((o, n, has_bias))
            width = max(len(c) for c in columns)
            gather = torch.zeros(len(columns), width, dtype=torch.long)
            valid = torch.zeros(len(columns), width, dtype=torch.bool)
            for i, c in enumerate(columns):
                gather[i, :len(c)] = c
                valid[i, :len(c)] = True
            layers.append(_Layer(index, sizes, gather.to(family.device),
                                 valid.to(family.device)))
            dense += 1
        return layers

    def current(self, family: DenseFamily) -> bool:
        return (self.family() is family and len(family.members) == len(self.trainers)
                and all(m.trainer is t for m, t in zip(family.members, self.trainers,
                                                       strict=True)))


def _own_widths(family: DenseFamily, member) -> list[int]:
    """A member's own units at each layer (a dropout keeps its input's)."""
    widths, dense, width = [], 0, member.linears[0].in_features
    for op in family.ops:
        if not isinstance(op, tuple):
            width = member.linears[dense].out_features
            dense += 1
        widths.append(width)
    return widths


class FamilyFrames:
    """Batched frames of family members (engine thread only); one `_Batch` per family."""

    def __init__(self, snapshots: Snapshots) -> None:
        self.snapshots = snapshots
        self._batches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def frames(self, family: DenseFamily, items: list[tuple]) -> list[bytes]:
        """One frame per (trainer, dataset, options) in `items`, in that order, every trainer
        a member of `family`. Raises ValueError for one that is not (build those per job)."""
        clock = time.thread_time if family.device.type == "cpu" else time.perf_counter
        started = clock()
        try:
            batch = self._batches.get(family)
            if batch is None or not batch.current(family):
                batch = self._batches[family] = _Batch(family)
            rows = []
            for trainer, dataset, _options in items:
                row = batch.row.get(id(trainer))
                if row is None:
                    raise ValueError("not a member of this family")
                batch.fill(self.snapshots, row, trainer, dataset)
                rows.append(row)
            order = sorted(range(len(items)), key=rows.__getitem__)
            built = _build(family, batch, [rows[p] for p in order], [items[p] for p in order])
            frames: list[bytes] = [b""] * len(items)
            for p, data in zip(order, built, strict=True):
                frames[p] = data
            return frames
        finally:
            share = (clock() - started) / max(1, len(items))
            for _ in items:
                self.snapshots.budget.spend(share)


def _runs(rows: list[int], size: int) -> list[tuple[int, int]]:
    """(first, end) of each run of consecutive rows, cut at `size` rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row and row - runs[-1][0] < size:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs


def _build(family: DenseFamily, batch: _Batch, rows: list[int],
           items: list[tuple]) -> list[bytes]:
    """The frames of `items` (members at `rows`, ascending): batched passes, then bytes."""
    stamp = time.time()
    how = output_transform(items[0][0], items[0][1])
    full = {row for row, (_t, _d, o) in zip(rows, items, strict=True)
            if (o or {}).get("detail") not in LIGHT_DETAILS}
    tiles = [row for row, (_t, _d, o) in zip(rows, items, strict=True)
             if (o or {}).get("detail") == "tile"]
    boundary: dict[int, tuple] = {}
    heat: dict[int, list] = {}
    confusion: dict[int, np.ndarray] = {}
    units = family.units
    with torch.no_grad():
        for a, b in _runs(tiles, batch.group):  # only the output, on the coarser grid
            n, side = b - a, TILE_BOUNDARY
            out = forward(family, a, b, batch.coarse[a:b], batch.work("coarse"), True)[-1]
            _output(out, how)
            codes, lo, hi = quantize_rows(out.view(n * units, side * side))
            for j in range(n):
                cut = slice(j * units, (j + 1) * units)
                boundary[a + j] = (codes[cut].reshape(units, side, side), lo[cut], hi[cut])
        tiled = set(tiles)
        for a, b in _runs([row for row in rows if row not in tiled], batch.group):
            n = b - a
            out = forward(family, a, b, batch.fine[a:b], batch.work("fine"), True)[-1]
            _output(out, how)
            codes, lo, hi = quantize_rows(out.view(n * units, BOUNDARY * BOUNDARY))
            for j in range(n):
                cut = slice(j * units, (j + 1) * units)
                boundary[a + j] = (codes[cut].reshape(units, BOUNDARY, BOUNDARY), lo[cut],
                                   hi[cut])
            if not any(a <= row < b for row in full):
                continue
            outs = forward(family, a, b, batch.thumb[a:b], batch.work("thumb"))
            widths = [o.shape[1] for o in outs]
            total = sum(widths)
            maps = torch.cat(outs, 1).view(n * total, THUMBNAIL * THUMBNAIL)
            codes, lo, hi = quantize_rows(maps)
            for j in range(n):
                start, layers = j * total, []
                for width, own in zip(widths, batch.widths[a + j], strict=True):
                    cut = slice(start, start + own)
                    layers.append((codes[cut].reshape(own, THUMBNAIL, THUMBNAIL), lo[cut],
                                   hi[cut]))
                    start += width
                heat[a + j] = layers
            if batch.classes:
                logits = forward(family, a, b, batch.test_x[a:b], batch.work("test"),
                                  True)[-1]
                cells = confusion_counts(logits, batch.test_y[a:b], batch.test_valid[a:b],
                                   batch.classes, how)
                for j in range(n):
                    confusion[a + j] = cells[j]
        hist = _parameter_histograms(family, batch, sorted(full)) if full else None
        weights = family.flat.detach().cpu().numpy()
    order = {row: f for f, row in enumerate(sorted(full))}
    return [_assemble(batch, row, trainer, options or {}, how, stamp, boundary[row],
                      heat.get(row), confusion.get(row), hist, order.get(row), len(full),
                      weights)
            for row, (trainer, _d, options) in zip(rows, items, strict=True)]


def _output(out: Tensor, how: str) -> None:
    """The output transform (snapshot.output_transform) in place, over units (dim 1)."""
    if how == "sigmoid":
        out.sigmoid_()
    elif how == "softmax":
        out.copy_(out.softmax(dim=1))


def _parameter_histograms(family: DenseFamily, batch: _Batch, full: list[int]) -> tuple:
    """Weight and gradient histograms of every layer of the members `full`: rows ordered
    layer, then weights / gradients, then member."""
    index = torch.tensor(full, device=family.device)
    flat, grad = family.flat[index], family.grad[index]
    parts = []
    for layer in batch.layers:
        cols, valid = layer.gather[index], layer.valid[index]
        parts.append((flat.gather(1, cols), grad.gather(1, cols), valid))
    width = max(p[0].shape[1] for p in parts)
    values = torch.cat([F.pad(torch.cat((w, g)), (0, width - w.shape[1])) for w, g, _v in parts])
    valid = torch.cat([F.pad(torch.cat((v, v)), (0, width - v.shape[1])) for _w, _g, v in parts])
    return histograms(values, valid)


def _assemble(batch: _Batch, row: int, trainer, options: dict, how: str, stamp: float,
              boundary: tuple, heat: list | None, confusion: np.ndarray | None, hist,
              f: int | None, n_full: int, weights: np.ndarray) -> bytes:
    """One member's frame from the batch's results, in `snapshot._frame`'s order. Every
    array here is in its wire dtype already (uint8 codes, int32 counts, float32 weights), so
    it goes to `wire.encode` as it is (what `FrameBuilder.add` would check and copy)."""
    ctx = batch.contexts[row]
    ctx.seq += 1
    light = f is None
    header = {"type": "snapshot", "protocol": PROTOCOL, "job_id": options.get("job_id"),
              "kind": ctx.kind, "seq": ctx.seq, "time": stamp, "epoch": int(trainer.epoch),
              "step": int(trainer.step), "learning_rate": float(trainer.learning_rate or 0.0),
              "output_transform": how, "detail": options.get("detail") if light else "full"}
    if options.get("health") is not None:  # server.engine.health's hints (issue 16)
        header["health"] = options["health"]
    arrays: list[tuple[dict, np.ndarray]] = []

    def add(name: str, data: np.ndarray, dtype: str, **extra: object) -> None:
        arrays.append(({"name": name, "dtype": dtype, "shape": list(data.shape), **extra},
                       data))

    if not light:
        codes, lo, hi = batch.inputs[row]
        add("input.heatmap", codes, "uint8", min=lo, max=hi)
        for i, (codes, lo, hi) in enumerate(heat):
            add(f"layer{i}.heatmap", codes, "uint8", min=lo, max=hi)
    codes, lo, hi = boundary
    add("output.boundary", codes, "uint8", min=lo, max=hi)
    if light:
        return encode(header, arrays)
    if confusion is not None:
        add("confusion", confusion, "int32")
    header["weights"] = True
    counts, spans = hist
    family = batch.family()
    for n, layer in enumerate(batch.layers):
        o, i, has_bias = layer.sizes[row]
        at = 2 * n * n_full + f
        add(f"layer{layer.index}.weight_hist", counts[at], "int32", range=spans[at])
        add(f"layer{layer.index}.grad_hist", counts[at + n_full], "int32",
            range=spans[at + n_full])
        op = family.ops[layer.index]
        add(f"layer{layer.index}.weight",
            weights[row, op.w_at:op.w_at + op.out * op.inp].reshape(op.out, op.inp)[:o, :i],
            "float32")
        if has_bias:
            add(f"layer{layer.index}.bias", weights[row, op.b_at:op.b_at + o], "float32")
    return encode(header, arrays)
