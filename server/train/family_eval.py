"""A family's end-of-epoch evaluation, batched: the metric records of many (job, weights) pairs
from one forward pass per split and metrics computed on stacked tensors.

`batched_metrics` gives, for P evaluations at once, what `server.train.metrics` gives for one
(classification: accuracy, macro precision / recall / F1, the confusion matrix and the binary
ROC AUC with tied scores averaged; regression: MAE and R^2), with the same definitions, so a
job's records in a family equal its solo records within float rounding. Padded rows (a job
with fewer samples than the family's largest) are excluded by `mask`.
`evaluate_snapshots(family, snapshots)` makes the records of a chunk's epoch ends from the
weights snapshotted there: one forward pass per split for many of them at once; a family with
C steps (`family.kernel`) evaluates in C instead (server.train.family_eval_kernel), to the same
records.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from server.train.family_eval_kernel import kernel_records, usable
from server.train.family_math import act_forward, mean_loss

EVAL_VALUES = 4_000_000  # the largest activation of one batched evaluation, in floats


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def batched_metrics(task: str, out: Tensor, labels: Tensor, mask: Tensor, num_classes: int,
                    threshold: float) -> list[dict]:
    """Metrics of P evaluations: `out` (P, N, U) outputs, `labels` (P, N) class ids (int64)
    or (P, N, 1) regression targets, `mask` (P, N) real rows. One dict per evaluation, with
    the keys of `server.train.metrics.classification_metrics` / `regression_metrics`."""
    if task == "classification":
        return _classification(out, labels, mask, num_classes, threshold)
    return _regression(out, labels, mask)


def _classification(out: Tensor, labels: Tensor, mask: Tensor, num_classes: int,
                    threshold: float) -> list[dict]:
    p_count, _, units = out.shape
    k = max(num_classes, 2)
    score = None
    if units == 1:
        score = out[..., 0]  # (P, N)
        predicted = (score >= threshold).long()
    else:
        predicted = out.argmax(-1)
        if units == 2:
            score = out[..., 1] - out[..., 0]
    predicted = predicted.clamp(max=k - 1)
    which = torch.arange(p_count, device=out.device).unsqueeze(1) * (k * k)
    flat = (which + labels * k + predicted)[mask]
    cm = torch.bincount(flat, minlength=p_count * k * k).view(p_count, k, k)
    tp = cm.diagonal(dim1=1, dim2=2).double()  # (P, k)
    predicted_count = cm.sum(1).double()  # column sums: how often each class was predicted
    true_count = cm.sum(2).double()
    precision = torch.where(predicted_count > 0, tp / predicted_count.clamp(min=1), 0.0)
    recall = torch.where(true_count > 0, tp / true_count.clamp(min=1), 0.0)
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.where(both > 0, 1.0), 0.0)
    n = mask.sum(1).double()
    accuracy = (tp.sum(1) / n.clamp(min=1)).tolist()
    auc = _auc(score, labels, mask) if k == 2 and score is not None else None
    rows = zip(accuracy, precision.mean(1).tolist(), recall.mean(1).tolist(),
               f1.mean(1).tolist(), cm.tolist(), n.tolist(), strict=True)
    records = []
    for i, (acc, prec, rec, f, matrix, count) in enumerate(rows):
        record = {"accuracy": _finite(acc) if count else None, "precision": _finite(prec),
                  "recall": _finite(rec), "f1": _finite(f), "confusion_matrix": matrix}
        if k == 2:
            record["auc"] = auc[i] if auc is not None else None
        records.append(record)
    return records


def _auc(score: Tensor, labels: Tensor, mask: Tensor) -> list[float | None]:
    """Mann-Whitney AUC per row with average ranks for ties (metrics.roc_auc, batched)."""
    n = score.shape[1]
    ok = (torch.isfinite(score) | ~mask).all(1)
    s = torch.where(mask & torch.isfinite(score), score, math.inf)  # padding sorts last
    ordered, order = s.sort(dim=1)  # within a run of ties every order gives one sum
    positive = ((labels == 1) & mask).gather(1, order)
    # A run of equal scores shares the average of its ranks: (first + last) / 2 + 1.
    positions = torch.arange(n, device=score.device).expand_as(ordered)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, positions, 0).cummax(1).values
    last = torch.where(ends, positions, n).flip(1).cummin(1).values.flip(1)
    ranks = (first + last).double() / 2.0 + 1.0
    n_pos = positive.sum(1).double()
    n_neg = mask.sum(1).double() - n_pos
    u = (ranks * positive).sum(1) - n_pos * (n_pos + 1) / 2.0
    auc = u / (n_pos * n_neg).clamp(min=1)
    valid = (ok & (n_pos > 0) & (n_neg > 0)).tolist()
    return [_finite(a) if v else None for a, v in zip(auc.tolist(), valid, strict=True)]


def _regression(out: Tensor, targets: Tensor, mask: Tensor) -> list[dict]:
    pred = out[..., 0].double()
    true = targets[..., 0].double()
    m = mask.double()
    n = m.sum(1)
    diff = (true - pred) * m
    residual = (diff * diff).sum(1)
    mean = (true * m).sum(1) / n.clamp(min=1)
    centred = (true - mean.unsqueeze(1)) * m
    total = (centred * centred).sum(1)
    mae = (diff.abs().sum(1) / n.clamp(min=1)).tolist()
    records = []
    for count, a, res, tot in zip(n.tolist(), mae, residual.tolist(), total.tolist(),
                                  strict=True):
        if not count:
            records.append({"mae": None, "r2": None})
            continue
        if not math.isfinite(res):
            r2 = math.nan
        elif tot == 0:
            r2 = 1.0 if res == 0 else 0.0
        else:
            r2 = 1.0 - res / tot
        records.append({"mae": _finite(a), "r2": _finite(r2)})
    return records


def forward(family, flat: Tensor, x: Tensor, masks: list[Tensor] | None,
             unit_rows: Tensor | None = None) -> tuple[Tensor, list]:
    saved = []
    h = x
    drop = 0
    for op in family.ops:
        if not isinstance(op, tuple):
            w = flat[:, op.w_at:op.w_at + op.out * op.inp].view(-1, op.out, op.inp)
            if op.b_at is not None:
                b = flat[:, op.b_at:op.b_at + op.out].unsqueeze(1)
                z = torch.baddbmm(b, h, w.transpose(1, 2))
            else:
                z = torch.bmm(h, w.transpose(1, 2))
            a = act_forward(op.act, z, op.slope)
            if op.unit_mask is not None:
                a = a * (op.unit_mask if unit_rows is None else op.unit_mask[unit_rows])
            saved.append((h, z, a, w))
            h = a
        else:
            if masks is not None:
                h = h * masks[drop]
            saved.append(masks[drop] if masks is not None else None)
            drop += 1
    return h, saved

# -- after a chunk -----------------------------------------------------------------------


def evaluate_snapshots(family, snapshots: list) -> dict[int, list]:
    """{member: [(step, record, raw train loss)]} of the chunk's epoch ends."""
    if usable(family):
        made = kernel_records(family, snapshots)
        if made is not None:
            return made
    pending = []
    for step, ended, weights, infos in snapshots:
        for row, (i, info) in enumerate(zip(ended, infos, strict=True)):
            pending.append((step, i, weights[row], info))
    out: dict[int, list] = {}
    rows = family.eval_data[0].shape[1] * len(family.eval_splits)
    widest = max(max(o.out, o.inp) for o in [o for o in family.ops if not isinstance(o, tuple)])
    size = max(1, EVAL_VALUES // (rows * widest))
    for start in range(0, len(pending), size):
        group = pending[start:start + size]
        slots = torch.tensor([g[1] for g in group], device=family.device)
        flat = torch.stack([g[2] for g in group])
        made = _records(family, flat, slots, group)
        for (step, i, _w, _info), (record, raw) in zip(group, made, strict=True):
            out.setdefault(i, []).append((step, record, raw))
    return out


def _records(family, flat: Tensor, slots: Tensor, group: list) -> list[tuple[dict, float]]:
    """Each group entry's record (Trainer._end_epoch's) from weights `flat` (P, size)."""
    with torch.no_grad():
        weights = flat * family.penalized
        zeros = [0.0] * len(group)
        l1 = weights.abs().sum(1).tolist() if family.any_l1 else zeros
        l2 = weights.square().sum(1).tolist() if family.any_l2 else zeros
        records = []
        for (_step, _i, _w, info), a, b in zip(group, l1, l2, strict=True):
            kind, rate = info["penalty"]
            value = 0.0 if kind == "none" or rate == 0 else (
                rate * a if kind == "l1" else 0.5 * rate * b)
            records.append({"epoch": info["epoch"], "step": info["step"],
                            "learning_rate": info["lr"], "batch_size": info["batch_size"],
                            "train_penalty": value if math.isfinite(value) else None})
        raws = [math.nan] * len(group)
        splits, p_count = family.eval_splits, len(group)
        which = (torch.arange(len(splits), device=flat.device) * family.k).unsqueeze(1)
        rows = (which + slots.unsqueeze(0)).view(-1)  # split s of entry p at s * P + p
        x, target, index, labels, mask = (t[rows] for t in family.eval_data)
        out, _ = forward(family, flat.repeat(len(splits), 1), x, None,
                         unit_rows=slots.repeat(len(splits)))
        losses = mean_loss(family.loss_name, out, target, index, mask).tolist()
        metrics = batched_metrics(family.task, out, labels, mask, family.num_classes,
                                  family.threshold)
        members = slots.tolist()
        for s, split in enumerate(splits):
            have = family.split_data[split][5]
            for p, i in enumerate(members):
                if not have[i]:
                    continue
                loss, values = losses[s * p_count + p], metrics[s * p_count + p]
                if split == "train":
                    raws[p] = loss
                records[p][f"{split}_loss"] = loss if math.isfinite(loss) else None
                records[p].update({f"{split}_{k}": v for k, v in values.items()})
    return list(zip(records, raws, strict=True))
