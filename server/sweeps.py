"""Sweeps, pure part: what a sweep asks for (`SweepRequest`, `Axis`), which spec fields it may
vary, the values of each axis, and the variants (one JobSpec each) of a grid or random sweep.

A path names a field of the job spec by its keys and list indexes, dot-separated:
`training.optimizer.learning_rate`, `model.layers.0.units`, `dataset.params.noise`. It may name
any number (int or float) or choice (a Literal, a bool) of the base spec: the fields of its
layers (by index), of its data set's own parameters (the catalogue's), and the training and
data settings. Not the job's name, `start`, a layer's `type`, the data set's name or features.

Everything here raises SpecError with locations relative to the request body (`("axes", 1,
"values", 2)`), so the API answers 422 naming the axis and the value. No I/O, no FastAPI: the
data set's parameter model is passed in (`params_model`).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from server.spec.errors import SpecError
from server.spec.job import JobSpec
from server.spec.layers import LAYER_TYPES

NOT_SWEPT = {("name",), ("start",), ("dataset", "name"), ("dataset", "features")}
SIGNIFICANT_DIGITS = 12  # range values are rounded: 10**-2 reads 0.01, not 0.010000000000000002


class Axis(BaseModel):
    """One axis of a sweep: a path with its values, or with a range and a count."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., min_length=1, max_length=200,
                      description="A field of the job spec, e.g. training.optimizer.learning_rate.")
    values: list[Any] | None = Field(None, min_length=1, max_length=1000,
                                     description="The values to try.")
    range: tuple[float, float] | None = Field(
        None, description="[low, high]: `count` values from low to high (both included).")
    count: int | None = Field(None, ge=1, le=1000, description="Values in the range.")
    scale: Literal["linear", "log"] = Field("linear", description="Spacing of a range's values.")

    @model_validator(mode="after")
    def _values_or_range(self) -> Axis:
        if (self.values is None) == (self.range is None):
            raise ValueError("an axis needs either `values` or `range` (with `count`), not both")
        if self.range is not None:
            lo, hi = self.range
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(f"range must be [low, high] with low <= high; got [{lo}, {hi}]")
            if self.scale == "log" and lo <= 0:
                raise ValueError(f"a log range needs low > 0; got {lo}")
        return self


class SweepRequest(BaseModel):
    """Body of POST /api/sweeps."""

    model_config = ConfigDict(extra="forbid")
    base: JobSpec
    axes: list[Axis] = Field(..., min_length=1, max_length=8)
    mode: Literal["grid", "random"] = "grid"
    count: int | None = Field(None, ge=1, description="Variants of a random sweep.")


@dataclass(frozen=True)
class Leaf:
    """A field a sweep may vary: `kind` int, float or choice (with its `choices`)."""

    path: str
    kind: str
    choices: tuple = ()


@dataclass
class Variant:
    """One job of a sweep: its values on the axes ({path: value}) and its spec."""

    values: dict[str, Any]
    spec: JobSpec


def _unwrap(annotation: Any) -> Any:
    """The type inside Optional[...] and Annotated[...]."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            inner = [a for a in get_args(annotation) if a is not type(None)]
            if len(inner) != 1:
                return annotation
            annotation = inner[0]
        else:
            return annotation


def _leaf_kind(annotation: Any) -> tuple[str, tuple] | None:
    annotation = _unwrap(annotation)
    if get_origin(annotation) is Literal:
        return "choice", get_args(annotation)
    if annotation is bool:
        return "choice", (True, False)
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def sweepable(base: JobSpec, params_model: type[BaseModel] | None) -> dict[str, Leaf]:
    """Every path a sweep of `base` may vary, in the spec's order."""
    found: dict[str, Leaf] = {}

    def walk(cls: type[BaseModel], value: Any, prefix: tuple[str, ...]) -> None:
        for name, field in cls.model_fields.items():
            path = (*prefix, name)
            if path in NOT_SWEPT or (len(prefix) == 3 and prefix[:2] == ("model", "layers")
                                     and name == "type"):
                continue
            child = getattr(value, name, None) if value is not None else None
            inner = _unwrap(field.annotation)
            if path == ("model", "layers"):
                for i, layer in enumerate(child or []):
                    walk(type(layer), layer, (*path, str(i)))
            elif path == ("dataset", "params"):
                if params_model is not None:
                    walk(params_model, None, path)
            elif _is_model(inner):
                walk(inner, child, path)
            else:
                kind = _leaf_kind(field.annotation)
                if kind is not None:
                    dotted = ".".join(path)
                    found[dotted] = Leaf(dotted, *kind)

    walk(JobSpec, base, ())
    return found


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _distinct(values: list) -> list:
    seen, out = set(), []
    for v in values:
        key = json.dumps(v, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def range_values(axis: Axis, leaf: Leaf) -> list:
    """The `count` values of a range axis: evenly spaced (linear) or by equal factors (log);
    an integer field gets integers, without repeats."""
    lo, hi = axis.range
    n = axis.count
    if n == 1:
        points = [lo]
    elif axis.scale == "log":
        a, b = math.log10(lo), math.log10(hi)
        points = [10 ** (a + (b - a) * i / (n - 1)) for i in range(n)]
    else:
        points = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    if leaf.kind == "int":
        return _distinct([int(round(p)) for p in points])
    return [_round(p) for p in points]


def resolve_axes(request: SweepRequest,
                 params_model: type[BaseModel] | None) -> list[tuple[Axis, Leaf]]:
    """Each axis with the field it varies; SpecError (loc `("axes", i, "path")`) for a path
    the base spec does not have, or a range on a choice field."""
    allowed = sweepable(request.base, params_model)
    resolved, seen = [], set()
    for i, axis in enumerate(request.axes):
        leaf = allowed.get(axis.path)
        if leaf is None:
            raise SpecError(("axes", i, "path"),
                            f"a sweep cannot vary {axis.path!r}: it is not a number or choice "
                            f"of this spec; it can vary: {', '.join(allowed)}")
        if axis.path in seen:
            raise SpecError(("axes", i, "path"), f"{axis.path!r} is already an axis of this sweep")
        seen.add(axis.path)
        if axis.range is not None:
            if leaf.kind == "choice":
                choices = ", ".join(json.dumps(c) for c in leaf.choices)
                raise SpecError(("axes", i, "range"),
                                f"{axis.path!r} is a choice, not a number: give `values` "
                                f"from {choices}")
            if axis.count is None and request.mode == "grid":
                raise SpecError(("axes", i, "count"),
                                f"the range of {axis.path!r} needs a `count` of values")
        resolved.append((axis, leaf))
    return resolved


def variant_count(request: SweepRequest, resolved: list[tuple[Axis, Leaf]]) -> int:
    if request.mode == "random":
        return request.count or 0
    return math.prod(len(axis_values(a, leaf)) for a, leaf in resolved)


def axis_values(axis: Axis, leaf: Leaf) -> list:
    return _distinct(axis.values) if axis.values is not None else range_values(axis, leaf)


def _sample(axis: Axis, leaf: Leaf, rng: random.Random) -> Any:
    if axis.values is not None:
        return rng.choice(axis.values)
    lo, hi = axis.range
    if axis.scale == "log":
        value = 10 ** rng.uniform(math.log10(lo), math.log10(hi))
    else:
        value = rng.uniform(lo, hi)
    return int(round(value)) if leaf.kind == "int" else _round(value)


def points(request: SweepRequest, resolved: list[tuple[Axis, Leaf]]) -> list[dict[str, Any]]:
    """The values of every variant ({path: value}): the cartesian product of the axes (grid),
    or `count` draws seeded by the base spec's training seed (random), so that the same
    request gives the same sweep."""
    if request.mode == "grid":
        lists = [axis_values(a, leaf) for a, leaf in resolved]
        return [{a.path: v for (a, _), v in zip(resolved, combo, strict=True)}
                for combo in itertools.product(*lists)]
    if request.count is None:
        raise SpecError(("count",), "a random sweep needs a `count` of variants")
    rng = random.Random(request.base.training.seed)
    return [{a.path: _sample(a, leaf, rng) for a, leaf in resolved}
            for _ in range(request.count)]


def _set(doc: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node: Any = doc
    for key in keys[:-1]:
        if isinstance(node, list):
            node = node[int(key)]
        else:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
    node[keys[-1]] = value


def _blame(request: SweepRequest, values: dict[str, Any], loc: list) -> int | None:
    """The axis an error at spec location `loc` comes from: the one whose path is the longest
    that contains it or lies inside it; the only axis of a one-axis sweep; else None."""
    if len(loc) > 3 and tuple(loc[:2]) == ("model", "layers") and loc[3] in LAYER_TYPES:
        loc = [*loc[:3], *loc[4:]]  # pydantic puts the layer's type tag in the location
    dotted = ".".join(str(part) for part in loc)
    best, best_len = None, -1
    for i, axis in enumerate(request.axes):
        related = (dotted == axis.path or dotted.startswith(axis.path + ".")
                   or axis.path.startswith(dotted + ".") or not dotted)
        if axis.path in values and related and len(axis.path) > best_len:
            best, best_len = i, len(axis.path)
    if best is None and len(request.axes) == 1:
        return 0
    return best


def _where(request: SweepRequest, i: int, value: Any) -> tuple:
    axis = request.axes[i]
    if request.mode == "grid" and axis.values is not None:
        keys = [json.dumps(v, sort_keys=True) for v in axis.values]
        return ("axes", i, "values", keys.index(json.dumps(value, sort_keys=True)))
    return ("axes", i)


def explain(request: SweepRequest, values: dict[str, Any], loc: list, msg: str) -> dict:
    """A 422 detail entry (locations relative to the body) for a variant whose spec failed at
    `loc` with `msg`: at the axis and value it comes from, else at the base spec's field."""
    shown = ", ".join(f"{p}={json.dumps(v)}" for p, v in values.items())
    i = _blame(request, values, loc)
    if i is None:
        return {"loc": ["base", *loc], "type": "value_error",
                "msg": f"{msg} (in the variant {shown})"}
    path = request.axes[i].path
    value = values[path]
    also = f" (variant {shown})" if len(values) > 1 else ""
    return {"loc": list(_where(request, i, value)), "type": "value_error",
            "msg": f"axis {path!r} value {json.dumps(value)}: {msg}{also}"}


def variant_name(base: JobSpec, values: dict[str, Any]) -> str:
    parts = []
    for path, value in values.items():
        short = ".".join(path.split(".")[-3:]) if ".layers." in path else path.split(".")[-1]
        parts.append(f"{short}={value:g}" if isinstance(value, float) else f"{short}={value}")
    return f"{base.name or 'sweep'} [{', '.join(parts)}]"[:200]


def variants(request: SweepRequest, params_model: type[BaseModel] | None,
             max_variants: int) -> list[Variant]:
    """Every variant of the sweep as a validated JobSpec; SpecError for an unknown path, a bad
    value (naming the axis and the value) or more variants than `max_variants`."""
    resolved = resolve_axes(request, params_model)
    n = variant_count(request, resolved)
    if n > max_variants:
        where = ("count",) if request.mode == "random" else ("axes",)
        raise SpecError(where, f"this sweep has {n} variants; this server allows at most "
                               f"{max_variants} per sweep (PLAYGROUND_MAX_SWEEP_VARIANTS): "
                               "try fewer values")
    base = request.base.model_dump(mode="json", exclude_unset=True)
    out = []
    for values in points(request, resolved):
        doc = json.loads(json.dumps(base))
        for path, value in values.items():
            _set(doc, path, value)
        doc["name"] = variant_name(request.base, values)
        try:
            spec = JobSpec.model_validate(doc)
        except ValidationError as exc:
            raise SpecError.many([explain(request, values, list(e["loc"]), e["msg"])
                                  for e in exc.errors(include_url=False)[:1]]) from None
        out.append(Variant(values, spec))
    return out
