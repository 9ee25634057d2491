"""What a snapshot frame holds, per kind of data (docs/STREAM.md), computed in the engine thread.

`Snapshots` is one engine's frame maker (held by its `server.engine.frames.Frames`; nothing
here is shared between engines): `Snapshots.frame(trainer, dataset, options) -> bytes` runs the
model without gradients (in eval mode when it has dropout or batchnorm) on inputs fixed per job
(the heatmap grids for 2-D points, a few sample images or sequences), cached in a `Context` per
trainer with the model's layout so that only the forward passes repeat per frame, and encodes
the result with `server.stream.wire`. Its `budget` (a `FrameBudget`) is what the engine asks
before a frame that training made due, so that frames stay a small share of its time.
The fixed inputs (grid, sample choice) and `describe(dataset)`, the data the client draws
under the frames, are in `server.engine.samples`. The trainer is a
`server.train.protocol.TrainerLike`. Nothing here knows about sockets.

Layer `i` is the index in `Network.layer_specs` (the appended output layer last), which is
also the index of `captures` from `Network.forward(x, capture=True)`.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from server.engine.samples import (
    BOUNDARY,
    IMAGE_GRID,
    IMAGE_SAMPLES,
    SEQUENCE_SAMPLES,
    THUMBNAIL,
    grid_indices,
    grid_xy,
    sample_indices,
)
from server.stream.wire import FrameBuilder
from server.train.protocol import TrainerLike

if TYPE_CHECKING:
    from server.nn.build import Network

PROTOCOL = 1
HIST_BINS = 32
HIST_MAX_VALUES = 262_144  # larger layers are histogrammed on an even subsample
WEIGHTS_MAX_PARAMETERS = 65_536  # send every parameter only for models this small
TILE_BOUNDARY = 50  # the output map's side in a "tile" frame (the class wall's tiles)
LIGHT_DETAILS = ("boundary", "tile")  # frames with only the main view
MAX_FILTERS = 64
MAX_MAP_CHANNELS = 16
MAX_UNITS_SENT = 64  # a flat layer's first units in image and sequence frames
CONFUSION_MAX = 2000
RECURRENT = ("rnn", "lstm", "gru")
# Modules that behave differently in training; without them a frame skips eval()/train().
MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)


@dataclass
class Context:
    """Per-job inputs fixed once: the grid features or the sample indices and tensors."""

    kind: str
    device: torch.device
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    quantized_input: np.ndarray | None = None
    seq: int = 0
    model: weakref.ref | None = None  # the model the layout below was read from (reset: new)
    modules: list[nn.Module] = field(default_factory=list)
    params: list[tuple[int, list[tuple[str, nn.Parameter]]]] = field(default_factory=list)
    send_weights: bool = True
    needs_eval: bool = True  # dropout or batchnorm: frames must run in eval mode

    def layout(self, model: nn.Module) -> None:
        """Read the model's layers and parameters once per model, not per frame."""
        if self.model is not None and self.model() is model:
            return
        self.model = weakref.ref(model)
        self.modules = layer_modules(model)
        self.params = [(i, named) for i, m in enumerate(self.modules)
                       if (named := layer_parameters(m))]
        self.send_weights = sum(p.numel() for p in model.parameters()) <= WEIGHTS_MAX_PARAMETERS
        self.needs_eval = any(isinstance(m, MODE_DEPENDENT) for m in model.modules())


class FrameBudget:
    """Keeps the engine's frame work under `share` of its wall time over the last `window`
    seconds, so that thirty watched jobs cost training no more than one does in proportion.
    Frames past the budget wait (the engine asks `allows` before a frame that only training
    made due); a job whose last frame is older than `starve_seconds` goes anyway. Engine
    thread only."""

    def __init__(self, share: float = 0.1, window: float = 1.0,
                 starve_seconds: float = 2.0) -> None:
        self.share, self.window, self.starve_seconds = share, window, starve_seconds
        self._costs: deque[tuple[float, float]] = deque()  # (end time, seconds) of each frame
        self._spent = 0.0

    def _forget(self, now: float) -> None:
        while self._costs and self._costs[0][0] < now - self.window:
            self._spent -= self._costs.popleft()[1]

    def allows(self, waited: float = 0.0) -> bool:
        now = time.perf_counter()
        self._forget(now)
        return waited >= self.starve_seconds or self._spent < self.share * self.window

    def spend(self, seconds: float) -> None:
        now = time.perf_counter()
        self._costs.append((now, seconds))
        self._spent += seconds
        self._forget(now)

    def wait(self) -> float:
        """Seconds until `allows()` holds again without starving (0: it holds now)."""
        now = time.perf_counter()
        self._forget(now)
        spent, limit = self._spent, self.share * self.window
        for end, seconds in self._costs:
            if spent < limit:
                break
            spent -= seconds
            if spent < limit:
                return max(0.0, end + self.window - now)
        return 0.0


class Snapshots:
    """One engine's snapshot frames: the per-trainer contexts and the frame budget."""

    def __init__(self, budget: FrameBudget | None = None) -> None:
        self.budget = budget or FrameBudget()
        self.contexts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # trainer -> ctx

    def frame(self, trainer: TrainerLike, dataset, options: dict | None = None) -> bytes:
        """One binary snapshot frame of `trainer`'s model now. `options` may carry `job_id`.
        The time it takes is charged to `budget`."""
        # The engine thread's own CPU time: waiting for the interpreter lock while the event
        # loop sends frames is not frame work (on CUDA, where the GPU works apart, it is).
        ctx = self._context(trainer, dataset)
        clock = time.thread_time if ctx.device.type == "cpu" else time.perf_counter
        started = clock()
        try:
            return _frame(trainer, dataset, options or {}, ctx)
        finally:
            self.budget.spend(clock() - started)

    def _context(self, trainer: TrainerLike, dataset) -> Context:
        device = next(trainer.model.parameters(), torch.empty(0)).device
        ctx = self.contexts.get(trainer)
        if ctx is None or ctx.device != device:
            ctx = self.contexts[trainer] = _new_context(dataset, device)
        return ctx


def _new_context(dataset, device: torch.device) -> Context:
    kind = dataset.shape.kind
    ctx = Context(kind, device)
    if kind == "points2d":
        thumb = dataset.features_of(grid_xy(dataset.domain, THUMBNAIL))  # (T*T, features)
        fine = dataset.features_of(grid_xy(dataset.domain, BOUNDARY))  # (B*B, features)
        ctx.inputs["thumb"] = torch.as_tensor(thumb, dtype=torch.float32, device=device)
        ctx.inputs["fine"] = torch.as_tensor(fine, dtype=torch.float32, device=device)
        ctx.quantized_input = thumb.T.reshape(-1, THUMBNAIL, THUMBNAIL)  # (features, T, T)
    elif kind == "image":
        ctx.inputs["samples"] = _tensor(dataset.x_test[sample_indices(dataset, IMAGE_SAMPLES)],
                                        device)
        ctx.inputs["grid"] = _tensor(dataset.x_test[grid_indices(dataset, IMAGE_GRID)], device)
    else:
        ctx.inputs["samples"] = _tensor(
            dataset.x_test[sample_indices(dataset, SEQUENCE_SAMPLES)], device)
    if dataset.shape.task == "classification":  # the test set's confusion matrix, every kind
        n = min(len(dataset.x_test), CONFUSION_MAX)
        ctx.inputs["test_x"] = _tensor(dataset.x_test[:n], device)
        ctx.inputs["test_y"] = torch.as_tensor(np.asarray(dataset.y_test[:n]).reshape(n, -1)[:, 0],
                                               device=device)
    return ctx


def coarse_grid(ctx: Context, dataset) -> torch.Tensor:
    """The TILE_BOUNDARY grid's features (points2d), made the first time a tile asks."""
    if "coarse" not in ctx.inputs:
        coarse = dataset.features_of(grid_xy(dataset.domain, TILE_BOUNDARY))
        ctx.inputs["coarse"] = torch.as_tensor(coarse, dtype=torch.float32, device=ctx.device)
    return ctx.inputs["coarse"]


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    a = np.asarray(a)
    dtype = torch.int64 if a.dtype.kind in "iu" else torch.float32
    return torch.as_tensor(a, dtype=dtype, device=device)


def output_transform(trainer: TrainerLike, dataset) -> str:
    """How raw outputs become what the client shows: sigmoid, softmax or identity."""
    if dataset.shape.task != "classification":
        return "identity"
    loss = trainer.loss_name or dataset.shape.auto_loss
    return {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss, "identity")


def _transform(out: torch.Tensor, how: str) -> torch.Tensor:
    if how == "sigmoid":
        return out.sigmoid()
    if how == "softmax":
        return out.softmax(dim=-1)
    return out


def layer_modules(model: Network) -> list[nn.Module]:
    """The module of each layer spec, in order (the network's `layers` container)."""
    return list(model.layers)


def layer_parameters(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of one layer; a wrapper's single parametrized child is not named
    (`linear.weight` -> `weight`, `rnn.weight_ih_l0` -> `weight_ih_l0`)."""
    named = list(module.named_parameters())
    prefixes = {n.split(".", 1)[0] for n, _ in named if "." in n}
    direct = [n for n, _ in named if "." not in n]
    if len(prefixes) == 1 and not direct:
        cut = len(prefixes.pop()) + 1
        return [(n[cut:], p) for n, p in named]
    return named


def _histogram(values: list[torch.Tensor]) -> tuple[np.ndarray, list[float]]:
    """Counts over HIST_BINS equal bins between the values' min and max (numpy: small arrays
    are cheaper there than through torch's per-op overhead)."""
    flat = np.concatenate([v.detach().reshape(-1).float().cpu().numpy() for v in values])
    if flat.size > HIST_MAX_VALUES:
        flat = flat[:: flat.size // HIST_MAX_VALUES + 1]
    lo, hi = float(flat.min()), float(flat.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return np.zeros(HIST_BINS, dtype=np.int32), [0.0, 0.0]
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1e-6
    bins = ((flat - lo) * (HIST_BINS / (hi - lo))).astype(np.int32)  # (n,) bin of each value
    np.minimum(bins, HIST_BINS - 1, out=bins)
    return np.bincount(bins, minlength=HIST_BINS).astype(np.int32), [lo, hi]


def _add_parameters(b: FrameBuilder, ctx: Context) -> None:
    b.header["weights"] = ctx.send_weights
    for i, params in ctx.params:
        counts, span = _histogram([p for _, p in params])
        b.add(f"layer{i}.weight_hist", counts, "int32", range=span)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in params]
        counts, span = _histogram(grads)
        b.add(f"layer{i}.grad_hist", counts, "int32", range=span)
        if ctx.send_weights:
            for name, p in params:
                b.add(f"layer{i}.{name}", p.detach().float().cpu().numpy())


def _points(b: FrameBuilder, trainer, ctx: Context, how: str) -> None:
    model = trainer.model
    b.add_quantized("input.heatmap", ctx.quantized_input)
    _, captures = model(ctx.inputs["thumb"], capture=True)
    for i, c in enumerate(captures):
        if c.dim() == 2:  # (T*T, units)
            maps = c.float().T.reshape(-1, THUMBNAIL, THUMBNAIL)  # (units, T, T)
            b.add_quantized(f"layer{i}.heatmap", maps.cpu().numpy())
    out = _transform(model(ctx.inputs["fine"]).float(), how)  # (B*B, outputs)
    b.add_quantized("output.boundary", out.T.reshape(-1, BOUNDARY, BOUNDARY).cpu().numpy())


def _boundary(b: FrameBuilder, model, ctx: Context, how: str, grid: torch.Tensor) -> None:
    """Only the output map over `grid` (detail "boundary": a view that draws nothing else,
    the BOUNDARY grid; "tile": the TILE_BOUNDARY grid, a quarter of the points, for the class
    wall's small tiles)."""
    side = round(grid.shape[0] ** 0.5)
    out = _transform(model(grid).float(), how)
    b.add_quantized("output.boundary", out.T.reshape(-1, side, side).cpu().numpy())


def _images(b: FrameBuilder, trainer, ctx: Context, how: str) -> None:
    model = trainer.model
    image = tuple(ctx.inputs["samples"].shape[1:])  # (channels, height, width)
    for i, params in ctx.params:
        w = dict(params).get("weight")
        if w is None:
            continue
        if w.dim() == 4:  # (filters, channels, kh, kw)
            b.add("filters", w.detach()[:MAX_FILTERS].float().cpu().numpy())
            b.header["filters_layer"] = i
        elif w.dim() == 2 and w.shape[1] == int(np.prod(image)):  # dense on the flat image
            filters = w.detach()[:MAX_FILTERS].reshape(-1, *image)  # (units, C, H, W)
            b.add("filters", filters.float().cpu().numpy())
            b.header["filters_layer"] = i
        break
    _, captures = model(ctx.inputs["samples"], capture=True)
    for i, c in enumerate(captures):
        if c.dim() == 4:  # (samples, channels, h, w)
            maps = c[:, :MAX_MAP_CHANNELS].float().transpose(0, 1)  # (channels, samples, h, w)
            b.add_quantized(f"layer{i}.feature_maps", maps.cpu().numpy())
        elif c.dim() == 2:  # (samples, units): a flat layer's outputs, for the drawing
            b.add(f"layer{i}.units", c[:, :MAX_UNITS_SENT].float().cpu().numpy())
    b.add("predictions", _transform(model(ctx.inputs["grid"]).float(), how).cpu().numpy())


def _confusion(b: FrameBuilder, trainer, ctx: Context, how: str) -> None:
    """The test set's confusion matrix now (rows: true class, columns: predicted)."""
    classes = trainer_classes(trainer)
    if not classes or "test_x" not in ctx.inputs:
        return
    model = trainer.model
    logits = torch.cat([model(x) for x in ctx.inputs["test_x"].split(500)])  # (n, outputs)
    if logits.shape[1] == 1:
        threshold = 0.0 if how == "sigmoid" else 0.5
        predicted = (logits[:, 0] > threshold).long()  # (n,)
    else:
        predicted = logits.argmax(dim=1)  # (n,)
    truth = ctx.inputs["test_y"].long()  # (n,)
    cells = torch.bincount(truth * classes + predicted.clamp(0, classes - 1),
                           minlength=classes * classes)
    b.add("confusion", cells.reshape(classes, classes).cpu().numpy(), "int32")


def trainer_classes(trainer: TrainerLike) -> int:
    shape = trainer.shape
    if shape.task != "classification":
        return 0
    return int(shape.num_classes or 0)


def _sequences(b: FrameBuilder, trainer: TrainerLike, ctx: Context, how: str,
               modules: list[nn.Module], specs: list) -> None:
    model = trainer.model
    x = ctx.inputs["samples"]  # (samples, time[, features])
    out, captures = model(x, capture=True)
    b.add("predictions", _transform(out.float(), how).cpu().numpy())
    for i, c in enumerate(captures):
        if c.dim() == 2 and c.is_floating_point():  # (samples, units): a flat layer's outputs
            b.add(f"layer{i}.units", c[:, :MAX_UNITS_SENT].float().cpu().numpy())
    for i, weights in model.attention_weights.items():
        if weights is not None:
            b.add(f"layer{i}.attention", weights[0].float().cpu().numpy())  # (heads, time, time)
    for i, spec in enumerate(specs):
        if spec.type not in RECURRENT or i >= len(modules):
            continue
        rnn = modules[i].rnn
        inputs = x if i == 0 else captures[i - 1]
        if inputs.dim() < 3 or not inputs.is_floating_point():
            continue
        states, _ = rnn(inputs[:1].float())  # (1, time, units * dirs)
        b.add(f"layer{i}.hidden", states[0].float().cpu().numpy())  # (time, units * dirs)


def _frame(trainer: TrainerLike, dataset, options: dict, ctx: Context) -> bytes:
    model = trainer.model
    ctx.seq += 1
    how = output_transform(trainer, dataset)
    b = FrameBuilder(type="snapshot", protocol=PROTOCOL, job_id=options.get("job_id"),
                     kind=ctx.kind, seq=ctx.seq, time=time.time(),
                     epoch=int(trainer.epoch), step=int(trainer.step),
                     learning_rate=float(trainer.learning_rate or 0.0),
                     output_transform=how)
    ctx.layout(model)
    modules = ctx.modules
    specs = list(model.layer_specs)
    was_training = model.training
    if ctx.needs_eval:
        model.eval()
    light = options.get("detail") in LIGHT_DETAILS
    b.header["detail"] = options["detail"] if light else "full"
    if options.get("health") is not None:  # server.engine.health's hints (issue 16)
        b.header["health"] = options["health"]
    try:
        with torch.no_grad():
            if ctx.kind == "points2d" and light:
                _boundary(b, model, ctx, how, coarse_grid(ctx, dataset)
                          if options["detail"] == "tile" else ctx.inputs["fine"])
            elif ctx.kind == "points2d":
                _points(b, trainer, ctx, how)
            elif ctx.kind == "image":
                _images(b, trainer, ctx, how)
            else:
                _sequences(b, trainer, ctx, how, modules, specs)
            if not light:
                _confusion(b, trainer, ctx, how)
        if not light:
            _add_parameters(b, ctx)
    finally:
        if ctx.needs_eval:
            model.train(was_training)
    return b.encode()
