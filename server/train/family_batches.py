"""A family's batches: which samples each member trains on in the next steps, gathered for all
members at once, and each member's dropout masks (server.train.family).

A member's batch order is its own: at the start of each of its epochs it draws a permutation
from its own generator (as `Trainer` does alone, at the same moment of its run); the epoch's
batches are the rows of that permutation cut at its batch size, padded to the family's largest
batch with a dummy index (a zero row whose weight in the loss is 0). `gather(family, m)` cuts
the next m rows of every member and gathers inputs, targets and row weights in one indexing;
`dropout_masks` draws each member's masks from its own generator, in the shapes it draws alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def epoch_matrix(family, member) -> Tensor:
    """A new epoch of the member: its permutation (drawn now, from its own generator, as
    alone) cut into batches, as (batches, family batch) indices padded with the dummy row."""
    t = member.trainer
    perm = torch.randperm(t.n_train, generator=t.generator).to(family.device)
    t._perm = perm
    batches = math.ceil(t.n_train / t.batch_size)
    short = batches * t.batch_size - t.n_train
    rows = (torch.cat((perm, family.dummies[:short])) if short else perm).view(
        batches, t.batch_size)
    if t.batch_size < family.batch:
        rows = F.pad(rows, (0, family.batch - t.batch_size), value=family.dummy)
    return rows


def gather(family, m: int) -> dict:
    """The indices ("idx", (m, K, B)) of the next `m` steps of every member, the epoch ends
    among them ("events": step -> members) and their inputs, targets and row weights, gathered
    in one indexing (the torch path's chunk; the C steps take `plan`'s)."""
    rows, events = [], []
    for i, member in enumerate(family.members):
        t = member.trainer
        parts, need, j = [], m, t.batch_in_epoch
        matrix = member.matrix
        if matrix is None and t._perm is not None:  # mid-epoch, joined from alone
            matrix = matrix_from_perm(family, t, t._perm)
        while need > 0:
            if matrix is None:
                matrix = epoch_matrix(family, member)
            take = min(need, matrix.shape[0] - j)
            parts.append(matrix[j:j + take])
            need -= take
            j += take
            if j == matrix.shape[0]:
                events.append((m - need - 1, i))
                j, matrix = 0, None
                t._perm = None
        member.matrix = matrix
        rows.append(torch.cat(parts) if len(parts) > 1 else parts[0])
    idx = torch.stack(rows, 1)  # (m, K, B)
    by_step: dict[int, list[int]] = {}
    for step, i in events:
        by_step.setdefault(step, []).append(i)
    dropout = any(mb.generator is not None for mb in family.members)
    chunk = {"m": m, "idx": idx, "events": by_step,
             "epoch0": [mb.trainer.epoch for mb in family.members]}
    valid = idx != family.dummy
    counts = valid.sum(2)  # (m, K) rows per batch
    chunk["counts"] = counts.tolist() if dropout else None
    members = torch.arange(family.k, device=family.device).view(1, family.k, 1)
    weights = valid.to(family.x.dtype) / counts.clamp(min=1).unsqueeze(2).to(family.x.dtype)
    chunk.update(x=family.x[members, idx], target=family.target[members, idx],
                 index=family.index[members, idx], weights=weights)
    return chunk


def plan(family, m: int) -> dict:
    """The next `m` steps of every member for the C steps, which cut the batches themselves:
    the permutations of the member's epochs that these steps touch (each drawn from its own
    generator exactly when it would draw alone: at its epoch's first batch), concatenated in
    "order" (member k's first at "start"[k], from position "pos"[k]), the epoch ends
    ("events": step -> members) and, with dropout, each step's rows per member ("counts")."""
    perms, start, pos = [], [], []
    by_step: dict[int, list[int]] = {}
    offset = 0
    dropout = any(mb.generator is not None for mb in family.members)
    counts = [[0] * family.k for _ in range(m)] if dropout else None
    for i, member in enumerate(family.members):
        t = member.trainer
        n, bs = t.n_train, t.batch_size
        perm, p = t._perm, t._pos
        if perm is None:
            perm, p = torch.randperm(n, generator=t.generator), 0
        start.append(offset)
        pos.append(p)
        perms.append(perm)
        offset += n
        step = 0
        while True:
            if counts is not None:
                for j, at in enumerate(range(p, n, bs)):
                    if step + j < m:
                        counts[step + j][i] = min(bs, n - at)
            left = -(-(n - p) // bs)  # batches left in this epoch
            if step + left > m:
                break  # the epoch goes on past the chunk
            step += left
            by_step.setdefault(step - 1, []).append(i)
            p = 0
            if step == m:
                perm = None  # the next epoch begins in the next chunk
                break
            perm = torch.randperm(n, generator=t.generator)
            perms.append(perm)
            offset += n
        t._perm = perm
    return {"m": m, "order": torch.cat(perms) if len(perms) > 1 else perms[0],
            "start": start, "pos": pos, "events": by_step, "counts": counts,
            "epoch0": [mb.trainer.epoch for mb in family.members]}


def matrix_from_perm(family, t, perm: Tensor) -> Tensor:
    """The batches of an epoch that began alone (the member joined mid-epoch): the
    remaining samples from `_pos` on, as the rows that follow `batch_in_epoch`."""
    batches = t.batch_in_epoch + math.ceil((t.n_train - t._pos) / t.batch_size)
    matrix = torch.full((batches, family.batch), family.dummy, dtype=torch.long,
                        device=family.device)
    for row in range(t.batch_in_epoch, batches):
        start = t._pos + (row - t.batch_in_epoch) * t.batch_size
        chunk = perm[start:min(start + t.batch_size, t.n_train)].to(family.device)
        matrix[row, :len(chunk)] = chunk
    return matrix


def dropout_masks(family, counts: list[int]) -> list[Tensor]:
    masks = []
    for op_index in range(sum(1 for o in family.ops if isinstance(o, tuple))):
        width = dropout_padded_width(family, op_index)
        mask = torch.zeros(family.k, family.batch, width, device=family.device)
        for i, member in enumerate(family.members):
            p = member.dropout_p[op_index]
            rows, units = counts[i], member.dropout_width[op_index]
            if p == 0:
                mask[i] = 1.0
                continue
            noise = torch.empty(rows, units).bernoulli_(1 - p, generator=member.generator)
            noise.div_(1 - p)
            mask[i, :rows, :units] = noise
        masks.append(mask)
    return masks


def dropout_padded_width(family, op_index: int) -> int:
    seen, width = -1, family.features
    for op in family.ops:
        if not isinstance(op, tuple):
            width = op.out
        else:
            seen += 1
            if seen == op_index:
                return width
    raise IndexError(op_index)
