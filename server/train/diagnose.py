"""Why a run blew up: which layer's values or gradients went wrong first, and the sentence.

Used by `server.train.trainer.Trainer` when its loss becomes NaN, infinite or explodes
(`EXPLODE_FACTOR` times the first epoch's train loss), after it has put back the state of its
last good epoch:

- `replay(trainer, limit)` trains again from that state, step by step and exactly as
  `Trainer._train_step` does (same batches, same operations, so on the CPU the same numbers),
  but looks at every layer's output (forward hooks: `values`), the loss, every layer's
  parameter gradients (`gradients`, from the output layer back, the order backpropagation
  reaches them) and the parameters after the update, and stops at the first non-finite one:
  `{"step", "epoch", "layer", "layer_type", "where", "what"}`. The caller puts the good state
  back afterwards.
- `largest_gradients(trainer)`: for an exploding (still finite) loss, one forward and backward
  pass on the first batch of training samples at the bad weights, without touching `.grad`;
  the layer with the largest gradient norm.
- `sentence(...)`: the user's sentence, in the style of the older "diverged: loss became NaN at
  epoch 12; try a lower learning rate".

Layer `i` is the index in the model's `layers` (for a `Network`, as in frames and the inspector:
the appended output layer last); a model without `layers` counts its children.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from server.train.optim import data_loss

EXPLODE_FACTOR = 1e6  # a train loss over this many times the first epoch's has exploded
EXPLODE_FLOOR = 1e-3  # ... with the first epoch's loss taken as at least this (a near-0 start)


def exploded(loss: float, first: float | None) -> bool:
    """Whether an epoch's train loss `loss` has exploded against the first epoch's `first`."""
    return first is not None and loss > EXPLODE_FACTOR * max(first, EXPLODE_FLOOR)


def layers_of(model: nn.Module) -> list[nn.Module]:
    layers = getattr(model, "layers", None)
    return list(layers) if layers is not None else list(model.children())


def layer_type(model: nn.Module, index: int | None) -> str | None:
    if index is None:
        return None
    specs = getattr(model, "layer_specs", None)
    if specs is not None and index < len(specs):
        return str(specs[index].type)
    layers = layers_of(model)
    return type(layers[index]).__name__.lower() if index < len(layers) else None


def _what(t: Tensor) -> str:
    return "NaN" if bool(torch.isnan(t).any()) else "infinite"


def _finite(t: Any) -> bool:
    return not torch.is_tensor(t) or not t.is_floating_point() or bool(torch.isfinite(t).all())


@contextmanager
def watching(layers: list[nn.Module]) -> Iterator[list[tuple[int, str]]]:
    """Forward hooks on `layers` for the block: the list gets (layer, what) of the first layer
    whose output is not finite."""
    bad: list[tuple[int, str]] = []

    def watch(i: int):
        def hook(_module, _inputs, output):
            if not bad and torch.is_tensor(output) and not _finite(output):
                bad.append((i, _what(output)))
        return hook

    hooks = [layer.register_forward_hook(watch(i)) for i, layer in enumerate(layers)]
    try:
        yield bad
    finally:
        for h in hooks:
            h.remove()


def checked_step(trainer, xb: Tensor, yb: Tensor) -> tuple[str, int, str] | None:
    """One training step of `trainer`, the same operations as `Trainer._train_step`, checked:
    (where, layer, what) of the first non-finite value it meets, or None."""
    model = trainer.model
    layers = layers_of(model)
    with watching(layers) as bad:
        out = model(xb)
    loss = trainer.backward(out, yb)
    finding: tuple[str, int, str] | None = None
    if bad:
        finding = ("values", bad[0][0], bad[0][1])
    else:
        for i in range(len(layers) - 1, -1, -1):  # backpropagation reaches the last one first
            grads = [p.grad for p in layers[i].parameters() if p.grad is not None]
            broken = [g for g in grads if not _finite(g)]
            if broken:
                finding = ("gradients", i, _what(broken[0]))
                break
    if finding is None and not _finite(loss.detach()):  # finite outputs, the loss overflowed
        finding = ("values", len(layers) - 1, _what(loss.detach()))
    trainer.optimizer.step()
    if finding is None:  # finite gradients, but the update overflowed the weights
        for i, layer in enumerate(layers):
            broken = [p for p in layer.parameters() if not _finite(p.detach())]
            if broken:
                finding = ("gradients", i, _what(broken[0].detach()))
                break
    return finding


def replay(trainer, limit: int) -> dict | None:
    """Train up to `limit` steps (at most to the end of the epoch under way) with every layer
    checked; the first non-finite value found, or None. Changes the trainer's state: the caller
    puts it back."""
    x, y = trainer.data["train"]
    for _ in range(max(0, limit)):
        if trainer._perm is None:  # as Trainer._run draws it
            perm = torch.randperm(trainer.n_train, generator=trainer.generator)
            trainer._perm = perm.to(trainer.device)
        idx = trainer._perm[trainer._pos:trainer._pos + trainer.batch_size]  # (batch,)
        finding = checked_step(trainer, x[idx], y[idx])
        trainer._pos += len(idx)
        trainer.step += 1
        trainer.batch_in_epoch += 1
        if finding is not None:
            where, layer, what = finding
            return {"step": int(trainer.step), "epoch": int(trainer.epoch) + 1, "layer": layer,
                    "layer_type": layer_type(trainer.model, layer), "where": where,
                    "what": what}
        if trainer._pos >= trainer.n_train:
            break
    layer, what = checked_forward(trainer, x)  # the epoch's end evaluates the whole split
    if layer is None:
        return None
    return {"step": int(trainer.step), "epoch": int(trainer.epoch) + 1, "layer": layer,
            "layer_type": layer_type(trainer.model, layer), "where": "values", "what": what}


def checked_forward(trainer, x: Tensor) -> tuple[int | None, str | None]:
    """(layer, what) of the first layer whose outputs on `x` are not finite, in eval mode as
    the epoch-end evaluation runs; (None, None) when all are."""
    model = trainer.model
    layers = layers_of(model)
    was_training = model.training
    model.eval()
    try:
        with watching(layers) as bad, torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    if bad:
        return bad[0]
    if not _finite(out):
        return len(layers) - 1, _what(out)
    return None, None


def gradient_norms(trainer, xb: Tensor, yb: Tensor) -> list[float | None]:
    """Each layer's parameter-gradient norm (None: no parameters) on one batch, without touching
    the parameters' `.grad`."""
    model = trainer.model
    layers = layers_of(model)
    loss = data_loss(trainer.loss_name, model(xb), yb)
    params = [p for layer in layers for p in layer.parameters() if p.requires_grad]
    if not params:
        return [None] * len(layers)
    grads = dict(zip(map(id, params), torch.autograd.grad(loss, params, allow_unused=True),
                     strict=True))
    norms: list[float | None] = []
    for layer in layers:
        own = [grads.get(id(p)) for p in layer.parameters() if p.requires_grad]
        own = [g for g in own if g is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g.float()) for g in own]))) if own else None)
    return norms


def largest_gradients(trainer) -> dict:
    """The layer with the largest gradient norm now, on the first batch of training samples."""
    x, y = trainer.data["train"]
    n = min(len(x), max(1, trainer.batch_size))
    with torch.enable_grad():
        norms = gradient_norms(trainer, x[:n], y[:n])
    known = [(v if math.isfinite(v) else math.inf, i) for i, v in enumerate(norms)
             if v is not None]
    if not known:
        return {"layer": None, "layer_type": None, "gradient_norm": None}
    norm, layer = max(known)
    return {"layer": layer, "layer_type": layer_type(trainer.model, layer),
            "gradient_norm": norm if math.isfinite(norm) else None}


def _layer(layer: int | None, kind: str | None) -> str:
    return f"layer {layer} ({kind})" if kind else f"layer {layer}"


def sentence(diagnosis: dict) -> str:
    """The user's sentence for `diagnosis` (keys as `Trainer` fills them: `loss_became`,
    `epoch`, `step`, `layer`, `layer_type`, `where`, `what`, `train_loss`, `rewound_to`)."""
    became, epoch = diagnosis["loss_became"], diagnosis["epoch"]
    where = _layer(diagnosis.get("layer"), diagnosis.get("layer_type"))
    if became == "exploding":
        head = (f"diverged: loss exploded at epoch {epoch} (train loss "
                f"{diagnosis.get('train_loss') or 0:.3g}, over {EXPLODE_FACTOR:.0e} times the "
                "first epoch's)")
        if diagnosis.get("layer") is not None:
            head += f"; the largest gradients are in {where}"
    else:
        head = f"diverged: loss became {became} at epoch {epoch}"
        if diagnosis.get("layer") is not None:
            part = "outputs" if diagnosis["where"] == "values" else "gradients"
            head += f"; {where}'s {part} became {diagnosis['what']} first"
            if diagnosis.get("step") is not None:
                head += f", at step {diagnosis['step']}"
    good = diagnosis.get("rewound_to")
    tail = (f"; paused at epoch {good['epoch']}, its last good state: " if good is not None
            else "; ")
    return head + tail + "try a lower learning rate or gradient clipping"
