"""DataRegistry: every data set by name (built-in and uploaded), its catalogue entry, its
shape without generating it, the loaded and split arrays (cached), previews and CSV uploads.

The kind modules declare the sets (`SETS` lists of `DataSetDef`); this module only collects
them, validates a `DatasetSpec` against them, splits (server.data.splits), standardizes
tabular sets with training statistics and caches. Thread-safe: the engine thread and the
API's worker threads call it at once.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from server.config import Settings
from server.data import images, points, sequences, tabular, upload
from server.data.base import Dataset, DataSetDef, point_features
from server.data.splits import split_indices
from server.spec.errors import SpecError
from server.spec.job import DatasetSpec
from server.spec.shapes import DataShape, Shape

BUILTIN: list[DataSetDef] = [*points.SETS, *tabular.SETS, *images.SETS, *sequences.SETS]
CACHE_SIZE = 16
DEFAULT_FEATURES = ("x1", "x2")
PREVIEW_POINTS = 1000
PREVIEW_IMAGES = 16
PREVIEW_SEQUENCES = 8
PREVIEW_ROWS = 20
PREVIEW_GENERATE = 200


class DataSetNotFound(KeyError):
    """No data set has this name; `str()` is the message naming the choices."""

    def __str__(self) -> str:
        return str(self.args[0])


class DataRegistry:
    def __init__(self, upload_dir: Path, settings: Settings) -> None:
        self.upload_dir = Path(upload_dir)
        self.settings = settings
        self._lock = threading.RLock()
        self._cache: OrderedDict[str, Dataset] = OrderedDict()
        self._builtin = {d.name: d for d in BUILTIN}
        self._uploads: dict[str, DataSetDef] = {
            name: d for name, d in upload.load_all(self.upload_dir).items()
            if name not in self._builtin
        }

    # --- lookup -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return [*self._builtin, *sorted(self._uploads)]

    def definition(self, name: str) -> DataSetDef:
        """The declaration of `name`; raises DataSetNotFound with the choices."""
        with self._lock:
            found = self._builtin.get(name) or self._uploads.get(name)
        if found is None:
            raise DataSetNotFound(
                f"Data set not found: {name!r}. Choose one of: {', '.join(self.names())}."
            )
        return found

    def params(self, definition: DataSetDef, params: dict[str, Any],
               loc: tuple[str | int, ...] = ("dataset", "params")) -> BaseModel:
        """Validate a set's params (and the server's sample limit); SpecError on bad ones."""
        model = definition.params
        try:
            parsed = model.model_validate(params)
        except ValidationError as exc:
            allowed = ", ".join(model.model_fields) or "none"
            errors = []
            for err in exc.errors():
                where = [*loc, *err["loc"]]
                if err["type"] == "extra_forbidden":
                    msg = (f"{definition.name!r} has no parameter {err['loc'][-1]!r}; "
                           f"its parameters are: {allowed}.")
                elif err["loc"]:
                    field = err["loc"][0]
                    given = repr(err.get("input"))
                    given = given if len(given) <= 40 else given[:37] + "..."
                    msg = f"{definition.name!r} parameter {field!r}={given}: {err['msg']}."
                else:
                    why = err["msg"].removeprefix("Value error, ")
                    msg = f"{definition.name!r} parameters: {why}."
                errors.append({"loc": where, "msg": msg, "type": "value_error"})
            raise SpecError.many(errors) from None
        samples = getattr(parsed, "samples", None)
        if samples is not None and samples > self.settings.max_samples:
            raise SpecError(
                (*loc, "samples"),
                f"samples={samples} is above this server's limit of {self.settings.max_samples}; "
                "ask for fewer samples.",
            )
        return parsed

    def _features(self, definition: DataSetDef, spec: DatasetSpec) -> tuple[str, ...]:
        if definition.kind != "points2d":
            return ()
        # The spec's default (x1, x2) means "this set's default": a stored or re-sent spec
        # carries it explicitly, and for `line` it must still mean x1 alone.
        if "features" not in spec.model_fields_set or tuple(spec.features) == DEFAULT_FEATURES:
            return definition.default_features
        bad = [f for f in spec.features if f not in definition.allowed_features]
        if bad:
            raise SpecError(
                ("dataset", "features"),
                f"{definition.name!r} cannot use the feature(s) {', '.join(bad)}; it allows only: "
                f"{', '.join(definition.allowed_features)}.",
            )
        return tuple(spec.features)

    # --- the interface ------------------------------------------------------------------------

    def catalog(self) -> list[dict]:
        """One entry per data set (built-in first, then uploads), with its params' schema."""
        return [self.entry(name) for name in self.names()]

    def entry(self, name: str) -> dict:
        d = self.definition(name)
        defaults = d.params()
        shape = self._shape(d, defaults, d.default_features)
        schema = d.params.model_json_schema()
        samples = schema.get("properties", {}).get("samples")
        if samples is not None and samples.get("maximum", 0) > self.settings.max_samples:
            samples["maximum"] = self.settings.max_samples
        entry = {
            "name": d.name,
            "title": d.title,
            "description": d.description,
            "teaches": d.teaches,
            "task": d.task,
            "kind": d.kind,
            "input_shape": shape.input.as_list(),
            "input_tokens": shape.input.tokens,
            "num_classes": shape.num_classes,
            "class_names": list(shape.class_names),
            "params": schema,
            "feature_names": d.feature_names(defaults),
            "notes": d.notes,
            "uploaded": d.name in self._uploads,
        }
        if d.kind == "points2d":
            entry["features"] = list(d.allowed_features)
            entry["default_features"] = list(d.default_features)
            entry["domain"] = [-6.0, 6.0]
        return entry

    def describe(self, spec: DatasetSpec) -> DataShape:
        """The shape a model gets from `spec`, without generating data; SpecError if bad."""
        try:
            d = self.definition(spec.name)
        except DataSetNotFound as exc:
            raise SpecError(("dataset", "name"), str(exc)) from None
        params = self.params(d, spec.params)
        return self._shape(d, params, self._features(d, spec))

    def _shape(self, d: DataSetDef, params: BaseModel, features: tuple[str, ...]) -> DataShape:
        names = tuple(d.class_names(params)) if d.task == "classification" else ()
        input_shape = Shape((len(features),)) if d.kind == "points2d" else d.input_shape(params)
        return DataShape(
            kind=d.kind, task=d.task, input=input_shape,
            num_classes=len(names) if d.task == "classification" else None, class_names=names,
        )

    def load(self, spec: DatasetSpec) -> Dataset:
        """The split arrays for `spec`: the same spec gives the same arrays, bit for bit.
        Cached; treat the arrays as read-only."""
        shape = self.describe(spec)
        d = self.definition(spec.name)
        params = self.params(d, spec.params)
        features = self._features(d, spec)
        key = json.dumps([d.name, params.model_dump(mode="json"), features, spec.train_fraction,
                          spec.validation_fraction, spec.seed])
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            dataset = self._build(d, params, features, shape, spec)
            self._cache[key] = dataset
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return dataset

    def _build(self, d: DataSetDef, params: BaseModel, features: tuple[str, ...],
               shape: DataShape, spec: DatasetSpec) -> Dataset:
        data_rng = np.random.default_rng([spec.seed, 0])
        split_rng = np.random.default_rng([spec.seed, 1])
        x, y = d.generate(params, data_rng)
        classification = d.task == "classification"
        train, val, test = split_indices(
            y, classification, spec.train_fraction, spec.validation_fraction, split_rng
        )
        if len(train) == 0 or len(test) == 0:
            empty = "training" if len(train) == 0 else "test"
            raise SpecError(
                ("dataset", "train_fraction"),
                f"The {empty} split of {d.name!r} is empty ({len(y)} samples, train_fraction "
                f"{spec.train_fraction}, validation_fraction {spec.validation_fraction}); ask "
                "for more samples or change the fractions.",
            )
        y = y.astype(np.int64) if classification else np.asarray(y, np.float64).reshape(-1, 1)
        extra: dict[str, Any] = {}
        feature_names = d.feature_names(params)
        if d.kind == "points2d":
            raw = np.asarray(x, dtype=np.float32)  # drawing coordinates; features come from these
            inputs = point_features(raw, features)
            feature_names = list(features)
            if raw.shape[1] == 1:  # line: draw (x, y)
                raw = np.concatenate([raw, y.astype(np.float32)], axis=1)
            extra = {"points_train": raw[train], "points_val": raw[val], "points_test": raw[test],
                     "features": features}
        elif x.dtype.kind in "iu":
            inputs = x.astype(np.int64)  # token ids
            names = d.extra.get("token_names")
            if names is not None:
                extra["token_names"] = tuple(names(params))
        else:
            inputs = np.asarray(x, dtype=np.float64)
            if d.standardize:
                mean, std = inputs[train].mean(axis=0), inputs[train].std(axis=0)
                inputs = (inputs - mean) / np.where(std > 0, std, 1.0)
            inputs = inputs.astype(np.float32)
        if not classification and d.standardize_target:
            mean, std = float(y[train].mean()), float(y[train].std()) or 1.0
            y = (y - mean) / std
            extra.update(target_mean=mean, target_std=std)
        if not classification:
            y = y.astype(np.float32)
        return Dataset(
            shape=shape,
            x_train=inputs[train], y_train=y[train],
            x_val=inputs[val], y_val=y[val],
            x_test=inputs[test], y_test=y[test],
            feature_names=feature_names,
            **extra,
        )

    # --- previews and uploads -----------------------------------------------------------------

    def preview(self, name: str, params: dict[str, Any], seed: int = 1) -> dict:
        """A sample of the data for a thumbnail (all samples, unsplit, unstandardized).
        Raises DataSetNotFound or SpecError (bad params, locations under ("query",))."""
        d = self.definition(name)
        parsed = self.params(d, params, loc=("query",))
        generate_with = parsed
        if d.kind in ("image", "sequence") and getattr(parsed, "samples", 0) > PREVIEW_GENERATE:
            # A thumbnail shows a few; do not draw 20,000 images to show 16.
            generate_with = parsed.model_copy(update={"samples": PREVIEW_GENERATE})
        x, y = d.generate(generate_with, np.random.default_rng([seed, 0]))
        out: dict[str, Any] = {"name": d.name, "kind": d.kind, "task": d.task,
                               "params": parsed.model_dump(mode="json"),
                               "class_names": list(d.class_names(parsed)),
                               "samples": int(len(y))}
        labels = [int(v) if d.task == "classification" else round(float(v), 5) for v in y]
        if d.kind == "points2d":
            step = max(1, len(y) // PREVIEW_POINTS)
            xy = np.asarray(x, dtype=np.float64)
            if xy.shape[1] == 1:  # line: the value is the y coordinate
                xy = np.concatenate([xy, np.asarray(y, np.float64).reshape(-1, 1)], axis=1)
            out["domain"] = [-6.0, 6.0]
            out["points"] = [
                {"x": round(float(a), 4), "y": round(float(b), 4), "label": label}
                for (a, b), label in zip(xy[::step], labels[::step], strict=True)
            ]
        elif d.kind == "image":
            pick = _spread(y, PREVIEW_IMAGES, d.task == "classification")
            out["images"] = [
                {"pixels": np.round(x[i], 3).tolist(), "label": labels[i]} for i in pick
            ]
        elif d.kind == "sequence":
            pick = list(range(min(PREVIEW_SEQUENCES, len(y))))
            tokens = d.extra.get("token_names")
            if tokens is not None:
                out["token_names"] = tokens(parsed)
            out["sequences"] = [
                {"input": np.round(x[i], 4).tolist() if x.dtype.kind == "f" else x[i].tolist(),
                 "target": labels[i]}
                for i in pick
            ]
        else:
            out["columns"] = d.feature_names(parsed)
            out["rows"] = [[round(float(v), 5) for v in row] for row in x[:PREVIEW_ROWS]]
            out["targets"] = labels[:PREVIEW_ROWS]
        return out

    def add_upload(self, content: bytes, target: str, task: str | None = None,
                   name: str | None = None, filename: str | None = None) -> dict:
        """Parse, check and store an uploaded CSV; returns its catalogue entry.
        Raises upload.UploadError (a message naming the row or column) for a bad file."""
        upload.check_name(name, filename, set(self.names()))  # fail fast, before parsing
        parsed = upload.parse_csv(content, target, task, self.settings)
        with self._lock:
            name = upload.check_name(name, filename, set(self.names()))
            self._uploads[name] = upload.save(self.upload_dir, name, parsed, filename)
        return self.entry(name)


def _spread(y: np.ndarray, count: int, by_class: bool) -> list[int]:
    """Up to `count` indices, taking classes in turn so that every class shows."""
    if not by_class:
        return list(range(min(count, len(y))))
    queues = [list(np.flatnonzero(y == c)) for c in np.unique(y)]
    picked: list[int] = []
    while len(picked) < count and any(queues):
        for q in queues:
            if q and len(picked) < count:
                picked.append(int(q.pop(0)))
    return picked
