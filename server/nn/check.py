"""Check a model spec against a data set before anything is allocated.

`plan_model` walks the layers (with the output layer that `output: "auto"` appends) and infers
every layer's input and output shape from the data set's; `check_model` adds the server's
limits, the parameter count and a training-memory estimate and returns a `ModelReport`.
Everything here is integer arithmetic: a 10^12-parameter spec is refused in microseconds.
Problems raise `SpecError` at the location of the bad field, in words a student can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from server.config import Settings
from server.spec.errors import SpecError
from server.spec.job import ModelSpec
from server.spec.layers import LayerShapeError, LayerSpec
from server.spec.layers.core import ActivationSpec, DenseSpec, FlattenSpec
from server.spec.shapes import DataShape, Shape

BYTES_PER_NUMBER = 4  # float32
OPTIMIZER_SLOTS = 2  # Adam keeps two numbers per parameter; the estimate assumes the worst


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of a checked model: its spec, the shapes around it, the layer before it."""

    index: int
    spec: LayerSpec
    input: Shape
    output: Shape
    previous: LayerSpec | None
    appended: bool  # the output layer added by `output: "auto"`


class LayerReport(BaseModel):
    index: int
    type: str
    input_shape: list[int]
    output_shape: list[int]
    parameters: int
    appended: bool = Field(False, description="The output layer added by output auto.")


class MemoryEstimate(BaseModel):
    """Bytes for training one batch: weights, gradients, optimizer state (2 slots), and the
    activations kept for the backward pass (counted twice: values and their gradients)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    total: int


class ModelReport(BaseModel):
    """What POST /api/models/check answers."""

    input_shape: list[int]
    input_tokens: int | None = Field(None, description="Vocabulary size of token id input.")
    output_shape: list[int]
    layers: list[LayerReport]
    total_parameters: int
    memory_bytes: int
    memory: MemoryEstimate
    batch_size: int
    loss: str = Field(description="The loss training will use (auto resolved).")


def task_words(data: DataShape) -> str:
    """"regression", "binary classification" or "classification into 3 classes"."""
    if data.task == "regression":
        return "regression"
    if data.output_units == 1:
        return "binary classification"
    return f"classification into {data.output_units} classes"


def output_layer(data: DataShape) -> DenseSpec:
    """The layer `output: "auto"` appends: linear units, one per output the task needs (the loss
    applies sigmoid or softmax itself)."""
    return DenseSpec(units=data.output_units, activation="linear")


def _layer_words(index: int, spec: LayerSpec) -> str:
    return f"layer {index} ({spec.layer_type()})"


def _shape_error(plan: PlannedLayer, err: LayerShapeError, data: DataShape) -> SpecError:
    if plan.appended:
        return _output_input_error(plan.input, data)
    hint = err.hint
    if err.wants_rank and err.wants_rank > 1 and isinstance(plan.previous, FlattenSpec):
        hint = "remove the flatten before it"
    msg = f"{_layer_words(plan.index, plan.spec)} {err.text}" + (f": {hint}" if hint else "")
    return SpecError(("model", "layers", plan.index), msg)


def _output_input_error(shape: Shape, data: DataShape) -> SpecError:
    if shape.tokens is not None:
        hint = "add an embedding and a sequence layer before it"
    elif shape.rank == 3:
        hint = "end the layers with a flatten"
    else:
        hint = ("end the layers with a pool_sequence, or set return_sequences to false on the "
                "last recurrent layer")
    return SpecError(
        ("model", "output"),
        f"the output layer ({data.output_units} units for {task_words(data)}) needs flat input "
        f"[features] but the last layer gives {shape.describe()}: {hint}",
    )


def plan_model(model: ModelSpec, data: DataShape) -> list[PlannedLayer]:
    """Every layer with its input and output shape, the appended output layer included.
    Raises SpecError at the first layer that does not fit."""
    specs: list[LayerSpec] = list(model.layers)
    if model.output == "auto":
        specs.append(output_layer(data))
    plans, shape, previous = [], data.input, None
    for i, spec in enumerate(specs):
        appended = i >= len(model.layers)
        if appended and (shape.tokens is not None or shape.rank != 1):
            raise _output_input_error(shape, data)
        try:
            out = spec.output_shape(shape)
        except LayerShapeError as err:
            raise _shape_error(PlannedLayer(i, spec, shape, shape, previous, appended), err,
                               data) from None
        plans.append(PlannedLayer(i, spec, shape, out, previous, appended))
        shape, previous = out, spec
    if model.output == "none":
        _check_explicit_output(plans, data)
    return plans


def _check_explicit_output(plans: list[PlannedLayer], data: DataShape) -> None:
    units, task = data.output_units, task_words(data)
    if not plans:
        raise SpecError(
            ("model", "layers"),
            f"output none makes the last layer the output, but there are no layers: add a dense "
            f"layer with {units} units for {task}, or set output to auto",
        )
    last = plans[-1]
    where = ("model", "layers", last.index)
    words = f"{_layer_words(last.index, last.spec)} is the output (output none)"
    if last.output.tokens is not None or last.output.rank != 1:
        raise SpecError(where, f"{words} and must give flat [{units}] for {task} but gives "
                        f"{last.output.describe()}: end with a dense layer of {units} units, "
                        "or set output to auto")
    if last.output.dims[0] != units:
        raise SpecError(where, f"{words} and gives [{last.output.dims[0]}] but {task} needs "
                        f"[{units}]: give it {units} units, or set output to auto")


def resolve_loss(loss: str, data: DataShape) -> str:
    """The loss a job trains with: `auto` resolved, and refused when it cannot fit the task."""
    if loss == "auto":
        return data.auto_loss
    task = task_words(data)
    where = ("training", "loss")
    if data.task == "regression" and loss in ("bce", "cross_entropy"):
        raise SpecError(where, f"loss {loss} is for classification but this data set is "
                        "regression: use mse, l1, huber or auto")
    if data.task == "classification" and loss == "cross_entropy" and data.output_units == 1:
        raise SpecError(where, f"loss cross_entropy needs one output per class but {task} has "
                        "one output unit: use bce or auto")
    if data.task == "classification" and loss == "bce" and data.output_units > 1:
        raise SpecError(where, f"loss bce is for two classes but this task is {task}: use "
                        "cross_entropy or auto")
    return loss


def _check_squashed_output(plans: list[PlannedLayer], loss: str) -> None:
    # bce and cross_entropy take logits; a sigmoid or softmax before them squashes twice.
    last = plans[-1].spec if plans else None
    if loss in ("bce", "cross_entropy") and isinstance(last, DenseSpec | ActivationSpec) \
            and last.activation in ("sigmoid", "softmax"):
        raise SpecError(
            ("model", "layers", plans[-1].index),
            f"{_layer_words(plans[-1].index, last)} ends with {last.activation} but the loss "
            f"{loss} applies it itself: set its activation to linear",
        )


def _check_limits(model: ModelSpec, settings: Settings) -> None:
    if len(model.layers) > settings.max_layers:
        raise SpecError(("model", "layers"), f"the model has {len(model.layers)} layers but "
                        f"this server allows at most {settings.max_layers}: remove some")
    for i, spec in enumerate(model.layers):
        for name, value in spec.widths().items():
            if value > settings.max_units:
                raise SpecError(
                    ("model", "layers", i, name),
                    f"{_layer_words(i, spec)} has {name} {value} but this server allows at most "
                    f"{settings.max_units}: use fewer",
                )


def _megabytes(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


def check_model(model: ModelSpec, data: DataShape, settings: Settings, batch_size: int,
                loss: str = "auto") -> ModelReport:
    """Shapes, parameter counts and a memory estimate for `model` on `data`, checked against
    the limits in `settings`; raises SpecError naming the first problem. Allocates nothing."""
    _check_limits(model, settings)
    plans = plan_model(model, data)
    resolved = resolve_loss(loss, data)
    if model.output == "none":
        _check_squashed_output(plans, resolved)
    reports, activations = [], data.input.size
    for p in plans:
        n = p.spec.param_count(p.input, p.previous)
        reports.append(LayerReport(index=p.index, type=p.spec.layer_type(),
                                   input_shape=p.input.as_list(), output_shape=p.output.as_list(),
                                   parameters=n, appended=p.appended))
        activations += p.spec.activation_count(p.input, p.previous)
    total = sum(r.parameters for r in reports)
    if total > settings.max_parameters:
        big = max(reports, key=lambda r: r.parameters)
        where = ("model", "output") if big.appended else ("model", "layers", big.index)
        raise SpecError(
            where,
            f"the model has {total:,} parameters but this server allows at most "
            f"{settings.max_parameters:,}; layer {big.index} ({big.type}) has {big.parameters:,}: "
            "make it smaller (fewer units or filters, or pool before flatten)",
        )
    weights = BYTES_PER_NUMBER * total
    acts = BYTES_PER_NUMBER * activations * batch_size * 2
    memory = MemoryEstimate(weights=weights, gradients=weights,
                            optimizer=OPTIMIZER_SLOTS * weights, activations=acts,
                            total=(2 + OPTIMIZER_SLOTS) * weights + acts)
    if memory.total > settings.max_memory_bytes:
        raise SpecError(
            ("model",),
            f"training this model would need about {_megabytes(memory.total)} (activations of "
            f"one batch of {batch_size}: {_megabytes(acts)}) but this server allows "
            f"{_megabytes(settings.max_memory_bytes)}: use smaller layers or a smaller batch_size",
        )
    last = plans[-1].output if plans else data.input
    return ModelReport(
        input_shape=data.input.as_list(), input_tokens=data.input.tokens,
        output_shape=last.as_list(), layers=reports, total_parameters=total,
        memory_bytes=memory.total, memory=memory, batch_size=batch_size, loss=resolved,
    )
