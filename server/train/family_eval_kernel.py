"""A dense family's epoch-end evaluation in C (server/train/kernel/evaluate.c): the ctypes
mirror of its `Eval` struct and `kernel_records`, which evaluates every snapshot of a chunk in
one call and builds the records `family_eval._records` builds on the torch path (the same keys,
the same rules for missing and non-finite values), from each member's own widths and rows.
Used by `family_eval.evaluate_snapshots` when the family has its C steps (`family.kernel`).
"""

from __future__ import annotations

import ctypes
import gc
import weakref
from ctypes import byref, c_float, c_int32, c_void_p

import torch

TASKS = {"classification": 0, "regression": 1}
WIDTH = 8  # values per (split, evaluation): evaluate.c's V_WIDTH


class Eval(ctypes.Structure):
    _fields_ = [("p", c_int32), ("s", c_int32), ("n", c_int32), ("task", c_int32),
                ("classes", c_int32), ("threshold", c_float)] + [
        (name, c_void_p) for name in ("weights", "slots", "xt", "target", "index", "labels",
                                      "values", "mask", "out", "confusion", "penalty")] + [
        ("threads", c_int32)]


_transposed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inputs_transposed(family) -> torch.Tensor:
    """The family's stacked inputs (S*K, N, F) as (S*K, F, N), made once: the kernel reads a
    feature's values over all rows together."""
    x = family.eval_data[0]
    kept = _transposed.get(family)
    if kept is None or kept[0] is not x:
        kept = (x, x.transpose(1, 2).contiguous())
        _transposed[family] = kept
    return kept[1]


def usable(family) -> bool:
    """Whether the C evaluation applies to the family (its data as the kernel reads it)."""
    x, target, index, labels, mask = family.eval_data
    return (family.kernel is not None and x.dtype == torch.float32
            and target.dtype == torch.float32 and index.dtype == torch.int64
            and mask.dtype == torch.bool
            and labels.dtype == (torch.int64 if family.task == "classification"
                                 else torch.float32)
            and all(t.is_contiguous() for t in family.eval_data))


def kernel_records(family, snapshots: list) -> dict[int, list] | None:
    """{member: [(step, record, raw train loss)]} of the chunk's epoch ends (snapshots as
    `DenseFamily._run` makes them: (step, ended members, their weights (a (rows, size) tensor or
    a list of rows), their infos)); None where the kernel could not run."""
    pointers: list[int] = []
    slots: list[int] = []
    steps: list[int] = []
    infos: list[dict] = []
    keep = []
    for step, ended, weights, row_infos in snapshots:
        if isinstance(weights, torch.Tensor):  # (rows, size), or a list of rows
            if not weights.is_contiguous():
                weights = weights.contiguous()
            base, stride = weights.data_ptr(), weights.stride(0) * weights.element_size()
            pointers.extend(base + row * stride for row in range(len(ended)))
        else:
            weights = [w if w.is_contiguous() else w.contiguous() for w in weights]
            pointers.extend(w.data_ptr() for w in weights)
        keep.append(weights)
        slots.extend(ended)
        steps.extend([step] * len(ended))
        infos.extend(row_infos)
    count = len(slots)
    if not count:
        return {}
    splits = family.eval_splits
    x, target, index, labels, mask = family.eval_data
    classes = max(family.num_classes, 2)
    classify = family.task == "classification"
    out = torch.empty(len(splits), count, WIDTH, dtype=torch.float64)
    confusion = torch.zeros(len(splits), count, classes, classes, dtype=torch.int64)
    penalty = torch.zeros(count, 2, dtype=torch.float64)
    pointer_array = (c_void_p * count)(*pointers)
    slot_array = (c_int32 * count)(*slots)
    ev = Eval(p=count, s=len(splits), n=x.shape[1], task=TASKS[family.task], classes=classes,
              threshold=family.threshold, weights=ctypes.addressof(pointer_array),
              slots=ctypes.addressof(slot_array), xt=_inputs_transposed(family).data_ptr(),
              target=target.data_ptr(), index=index.data_ptr(), mask=mask.data_ptr(),
              out=out.data_ptr(), confusion=confusion.data_ptr(),
              threads=family.kernel.threads if count >= 64 else 1)
    if family.any_l1 or family.any_l2:
        ev.penalty = penalty.data_ptr()
    if classify:
        ev.labels = labels.data_ptr()
    else:
        ev.values = labels.data_ptr()
    kernel = family.kernel
    if kernel.lib.family_evaluate(byref(kernel.layout), kernel.members, byref(ev)) != 0:
        return None  # no memory for its scratch: the torch path then
    # Thousands of small lists and dicts at once: with the collector on, their allocations
    # would run it many times over (a generation-2 pass over the whole heap among them, which
    # cost more than the evaluation itself); it runs once afterwards instead.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(family, steps, slots, infos, out.tolist(),
                      confusion.tolist() if classify else None, penalty.tolist())
    finally:
        if collecting:
            gc.enable()


def _build(family, steps, slots, infos, values, matrices, penalties) -> dict[int, list]:
    records = []
    for info, (a, b) in zip(infos, penalties, strict=True):
        kind, rate = info["penalty"]
        value = 0.0 if kind == "none" or rate == 0 else (
            rate * a if kind == "l1" else 0.5 * rate * b)
        records.append({"epoch": info["epoch"], "step": info["step"],
                        "learning_rate": info["lr"], "batch_size": info["batch_size"],
                        "train_penalty": value if value - value == 0 else None})
    raws = [float("nan")] * len(slots)
    binary = max(family.num_classes, 2) == 2
    for s, split in enumerate(family.eval_splits):
        have = family.split_data[split][5]
        rows = values[s]
        loss_key = f"{split}_loss"
        if matrices is not None:
            keys = [f"{split}_{name}" for name in ("accuracy", "precision", "recall", "f1",
                                                    "confusion_matrix", "auc")]
            cms = matrices[s]
            for p, i in enumerate(slots):
                if not have[i]:
                    continue
                _n, loss, acc, prec, rec, f1, auc, _ = rows[p]
                if split == "train":
                    raws[p] = loss
                record = records[p]
                record[loss_key] = loss if loss - loss == 0 else None
                record[keys[0]] = acc if acc - acc == 0 else None  # NaN without rows
                record[keys[1]] = prec if prec - prec == 0 else None
                record[keys[2]] = rec if rec - rec == 0 else None
                record[keys[3]] = f1 if f1 - f1 == 0 else None
                record[keys[4]] = cms[p]
                if binary:
                    record[keys[5]] = auc if auc - auc == 0 else None
        else:
            mae_key, r2_key = f"{split}_mae", f"{split}_r2"
            for p, i in enumerate(slots):
                if not have[i]:
                    continue
                _n, loss, mae, r2 = rows[p][:4]
                if split == "train":
                    raws[p] = loss
                record = records[p]
                record[loss_key] = loss if loss - loss == 0 else None
                record[mae_key] = mae if mae - mae == 0 else None
                record[r2_key] = r2 if r2 - r2 == 0 else None
    made: dict[int, list] = {}
    for step, i, record, raw in zip(steps, slots, records, raws, strict=True):
        made.setdefault(i, []).append((step, record, raw))
    return made
