"""The glass box, worker side: what the inspector asks of a job's model, computed in the engine
thread (issue 16).

- `edit_parameter(model, layer, param, index, value)`: one weight or bias set by hand (the
  engine allows it only while the job is paused); a bad layer, name or index is an `Invalid`
  with the range that is allowed.
- `inspect(trainer, dataset, request)`: the forward pass of one sample, layer by layer (each
  layer's output, and for dense layers the weighted sums before the activation), the output,
  the prediction, the loss against the sample's target, the gradient of that loss with respect
  to the input (and, for 2-D points, with respect to the point of the plane) and the norm of
  its gradient for each layer's parameters.
- `misclassified(trainer, dataset, limit)`: the test samples the model gets wrong now, with
  their true and predicted classes (and the pixels for images).

None of them changes the training state: the model runs in eval mode (no dropout draw, no
batch-norm statistics updated), under `torch.random.fork_rng`, and gradients are taken with
`torch.autograd.grad`, which never writes a parameter's `.grad`. A job inspected any number of
times trains on bit for bit as one never inspected (tests/engine/test_inspect.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from server.data.base import POINT_FEATURES
from server.engine.lifecycle import past
from server.engine.snapshot import MODE_DEPENDENT, layer_modules, layer_parameters
from server.train.optim import data_loss

MAX_VALUES = 32_768  # per layer output sent back; larger maps are cut to MAX_MAP_CHANNELS
MAX_MAP_CHANNELS = 16
MAX_MISCLASSIFIED = 500
CHUNK = 2048
SPLITS = {"train": ("x_train", "y_train"), "validation": ("x_val", "y_val"),
          "test": ("x_test", "y_test")}


FAILED = "This job has failed; it has no model to look into. Reset it and train it again."


def not_paused(status: str) -> str:
    """The Conflict sentence for a weight edit outside `paused` (server.engine.lifecycle's
    style)."""
    if status in ("running", "queued"):
        return f"This job is {status}; pause it to edit its weights."
    return f"This job has {past(status)}; only a paused job's weights can be edited."


@dataclass
class Invalid:
    """A request that does not fit the model or the data: where (`loc`, relative to the request
    body or query) and what is allowed (`msg`). The engine turns it into a SpecError (422)."""

    loc: tuple
    msg: str


# -- editing ---------------------------------------------------------------------------------

def edit_parameter(model: torch.nn.Module, layer: int, param: str, index: list[int],
                   value: float) -> dict | Invalid:
    """Set `model`'s layer `layer` parameter `param` at `index` to `value`; returns
    `{"layer", "param", "index", "old", "value"}` or an Invalid."""
    modules = layer_modules(model)
    if not 0 <= layer < len(modules):
        return Invalid(("layer",), f"layer is {layer}; this model has layers 0 to "
                                   f"{len(modules) - 1}")
    params = dict(layer_parameters(modules[layer]))
    if not params:
        return Invalid(("layer",), f"layer {layer} has no weights to edit")
    if param not in params:
        return Invalid(("param",), f"layer {layer} has no parameter {param!r}; it has: "
                                   f"{', '.join(params)}")
    tensor = params[param]
    shape = tuple(tensor.shape)
    if len(index) != len(shape):
        return Invalid(("index",), f"index has {len(index)} numbers; layer {layer}'s {param} "
                                   f"has shape {list(shape)}, so it needs {len(shape)}")
    for axis, (i, n) in enumerate(zip(index, shape, strict=True)):
        if not 0 <= i < n:
            return Invalid(("index", axis), f"index {axis} is {i}; layer {layer}'s {param} has "
                                            f"shape {list(shape)}, so it must be 0 to {n - 1}")
    with torch.no_grad():
        old = float(tensor[tuple(index)])
        tensor[tuple(index)] = float(value)
    return {"layer": layer, "param": param, "index": list(index), "old": old,
            "value": float(tensor[tuple(index)])}


# -- the forward pass of one sample ------------------------------------------------------------

@contextmanager
def _quiet(model: torch.nn.Module):
    """Eval mode when the model has dropout or batch norm, torch's RNG untouched."""
    needs_eval = any(isinstance(m, MODE_DEPENDENT) for m in model.modules())
    was_training = model.training
    with torch.random.fork_rng(devices=[]):
        if needs_eval:
            model.eval()
        try:
            yield
        finally:
            if needs_eval:
                model.train(was_training)


def output_transform(loss_name: str, task: str) -> str:
    """How the raw outputs read as the page shows them (as server.engine.snapshot)."""
    if task != "classification":
        return "identity"
    return {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss_name, "identity")


def predict(out: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Class of each row of `out` (batch, units), as the trainer's metrics decide it."""
    if out.shape[1] == 1:
        threshold = 0.0 if loss_name == "bce" else 0.5
        return (out[:, 0] > threshold).long()
    return out.argmax(dim=1)


def _sample(trainer, dataset, request: dict) -> tuple[np.ndarray, Any, dict] | Invalid:
    """(the model input (1, ...), the target or None, what the answer says of the sample)."""
    kind = dataset.shape.kind
    if request.get("split") is not None:
        split, index = request["split"], request.get("index")
        xs, ys = (getattr(dataset, a, None) for a in SPLITS[split])
        n = 0 if xs is None else len(xs)
        if index is None:
            return Invalid(("index",), f"index is missing; the {split} split has {n} samples")
        if not 0 <= index < n:
            return Invalid(("index",), f"index is {index}; the {split} split has {n} samples"
                                       + (f", so it must be 0 to {n - 1}" if n else ""))
        about: dict = {"split": split, "index": index}
        if kind == "points2d":
            points = dataset.points_train if split == "train" else (
                dataset.points_test if split == "test" else None)
            if points is not None:
                about["point"] = [float(v) for v in np.asarray(points[index]).reshape(-1)]
        return np.asarray(xs[index : index + 1]), np.asarray(ys[index : index + 1]), about
    if request.get("point") is not None:
        if kind != "points2d":
            return Invalid(("point",), f"point applies to two-dimensional point sets; this one "
                                       f"is {kind}: send x, the input as the model sees it")
        point = np.asarray(request["point"], dtype=np.float64).reshape(1, -1)
        if point.shape[1] != 2:
            return Invalid(("point",), f"point has {point.shape[1]} numbers; it needs 2 (x, y)")
        x = dataset.features_of(point)
        about = {"point": [float(v) for v in point[0]]}
    else:
        want = tuple(dataset.x_train.shape[1:])
        try:
            x = np.asarray(request.get("x"), dtype=np.float64)
        except (TypeError, ValueError):
            return Invalid(("x",), f"x must be numbers in nested lists of shape {list(want)}")
        if x.shape != want:
            return Invalid(("x",), f"x has shape {list(x.shape)}; this data set's inputs have "
                                   f"shape {list(want)}")
        if dataset.x_train.dtype.kind in "iu":  # token ids
            tokens = dataset.shape.input.tokens or 0
            if not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() < tokens):
                return Invalid(("x",), f"x holds token ids: whole numbers 0 to {tokens - 1}")
        x = x.reshape(1, *want).astype(dataset.x_train.dtype)
        about = {}
    target = request.get("target")
    if target is not None:
        task = dataset.shape.task
        if task == "classification":
            classes = dataset.shape.num_classes or 2
            if not (isinstance(target, int) and 0 <= target < classes):
                return Invalid(("target",), f"target is {target!r}; it must be a class, 0 to "
                                            f"{classes - 1}")
            target = np.asarray([target], dtype=np.int64)
        else:
            target = np.asarray([[float(target)]], dtype=np.float32)
    return x, target, about


def _values(t: torch.Tensor) -> tuple[list, int | None]:
    """A layer's output of the one sample as lists (cut to MAX_MAP_CHANNELS channels when
    large), and the channel count when it was cut."""
    t = t.detach().float()[0]
    cut = None
    if t.numel() > MAX_VALUES and t.dim() >= 2:
        cut = int(t.shape[0])
        t = t[:MAX_MAP_CHANNELS]
    return t.cpu().numpy().round(6).tolist(), cut


def inspect(trainer, dataset, request: dict) -> dict | Invalid:
    """The forward pass of one sample (see the module docstring)."""
    picked = _sample(trainer, dataset, request)
    if isinstance(picked, Invalid):
        return picked
    x_np, y_np, about = picked
    model = trainer.model
    device = next(model.parameters(), torch.empty(0)).device
    floating = x_np.dtype.kind == "f"
    x = torch.as_tensor(x_np, dtype=torch.float32 if floating else torch.int64, device=device)
    if floating:
        x.requires_grad_(True)
    modules = layer_modules(model)
    specs = list(model.layer_specs)
    named = [(i, layer_parameters(m)) for i, m in enumerate(modules)]
    params = [p for _, ps in named for _, p in ps if p.requires_grad]
    loss_name = trainer.loss_name or dataset.shape.auto_loss
    how = output_transform(loss_name, dataset.shape.task)
    with _quiet(model), torch.enable_grad():
        out, captures = model(x, capture=True)
        loss = None
        grads: list = []
        if y_np is not None:
            y = torch.as_tensor(y_np, device=device)
            loss = data_loss(loss_name, out, y)
            wrt = ([x] if floating else []) + params
            if wrt and loss.requires_grad:
                grads = list(torch.autograd.grad(loss, wrt, allow_unused=True))
    input_grad = grads.pop(0) if grads and floating else None
    norms = iter(grads)
    layers = []
    previous = x.detach()
    for i, (spec, capture) in enumerate(zip(specs, captures, strict=True)):
        values, cut = _values(capture)
        entry: dict = {"index": i, "type": spec.type, "shape": list(capture.shape[1:]),
                       "values": values}
        if cut is not None:
            entry["channels"] = cut
        activation = getattr(spec, "activation", None)
        if activation is not None:
            entry["activation"] = activation
        linear = getattr(modules[i], "linear", None)
        if spec.type == "dense" and linear is not None and previous.is_floating_point():
            with torch.no_grad():
                entry["pre_activation"] = _values(linear(previous.float()))[0]
        layer_params = [p for _, p in named[i][1] if p.requires_grad]
        if y_np is not None and layer_params:
            squares = 0.0
            for _ in layer_params:
                g = next(norms, None)
                if g is not None:
                    squares += float(g.detach().double().pow(2).sum())
            entry["grad_norm"] = squares ** 0.5
        layers.append(entry)
        previous = capture
    raw = out.detach().float()
    shown = {"sigmoid": raw.sigmoid, "softmax": lambda: raw.softmax(dim=-1)}.get(how, lambda: raw)()
    answer: dict = {**about, "input": x_np[0].tolist(), "layers": layers,
                    "output": raw[0].cpu().numpy().tolist(), "output_transform": how,
                    "shown": shown[0].cpu().numpy().tolist(), "loss": None,
                    "target": None, "input_gradient": None}
    if dataset.shape.task == "classification":
        answer["prediction"] = int(predict(raw, loss_name)[0])
    else:
        answer["prediction"] = float(raw[0, 0])
    if y_np is not None:
        answer["loss"] = float(loss.detach())
        answer["target"] = y_np.reshape(-1)[0].item()
    if input_grad is not None:
        answer["input_gradient"] = input_grad[0].float().cpu().numpy().tolist()
        if "point" in answer:
            answer["point_gradient"] = _point_gradient(dataset, answer["point"],
                                                       input_grad[0].double().cpu().numpy())
    return answer


def _point_gradient(dataset, point: list[float], feature_grad: np.ndarray) -> list[float]:
    """d loss / d (x, y): the gradient over the features through the features' Jacobian at the
    point, by complex-step differentiation of the feature formulas (exact to rounding)."""
    h = 1e-20
    out = []
    for axis in range(2):
        x1, x2 = complex(point[0]), complex(point[1] if len(point) > 1 else 0.0)
        if axis == 0:
            x1 += 1j * h
        else:
            x2 += 1j * h
        column = np.array([complex(POINT_FEATURES[name](x1, x2)).imag / h
                           for name in dataset.features])  # d features / d axis
        out.append(float(column @ feature_grad.reshape(-1)))
    return out


# -- the test samples the model gets wrong -----------------------------------------------------

def misclassified(trainer, dataset, limit: int) -> dict | Invalid:
    """The first `limit` misclassified test samples (in test-set order), with counts."""
    if dataset.shape.task != "classification":
        return Invalid(("job",), "misclassified samples exist for classification only; this "
                                 "job's task is regression")
    model = trainer.model
    device = next(model.parameters(), torch.empty(0)).device
    xs = np.asarray(dataset.x_test)
    ys = np.asarray(dataset.y_test).reshape(-1)
    loss_name = trainer.loss_name or dataset.shape.auto_loss
    dtype = torch.float32 if xs.dtype.kind == "f" else torch.int64
    predicted = []
    with _quiet(model), torch.no_grad():
        for start in range(0, len(xs), CHUNK):
            chunk = torch.as_tensor(xs[start : start + CHUNK], dtype=dtype, device=device)
            predicted.append(predict(model(chunk).float(), loss_name).cpu().numpy())
    pred = np.concatenate(predicted) if predicted else np.zeros(0, dtype=np.int64)
    wrong = np.flatnonzero(pred != ys)
    shown = wrong[:limit]
    answer = {"total": int(len(xs)), "count": int(len(wrong)), "indices": shown.tolist(),
              "true": ys[shown].astype(int).tolist(), "predicted": pred[shown].astype(int).tolist(),
              "class_names": list(dataset.shape.class_names or [])}
    if dataset.shape.kind == "image":
        answer["images"] = np.round(xs[shown].astype(np.float64), 3).tolist()
    elif dataset.shape.kind == "points2d" and dataset.points_test is not None:
        answer["points"] = np.round(np.asarray(dataset.points_test)[shown], 4).tolist()
    return answer
