"""DataRegistry: every data set by name (built-in and uploaded), its catalogue entry, its
shape without generating it, the loaded and split arrays (cached), previews and CSV uploads.

The kind modules declare the sets (`SETS` lists of `DataSetDef`); this module only collects
them, validates a `DatasetSpec` against them, splits (server.data.splits), standardizes
tabular sets with training statistics and caches. Thread-safe: the engine thread and the
API's worker threads call it at once.

Why it is one module of about 470 lines: who may see, train on, delete or share an upload
(server.data.ownership decides) is applied to the same name table, under the same lock, as
every lookup; parsing and storing a CSV live in csv_parse.py and upload.py.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydantic import BaseModel, ValidationError

from server.config import Settings
from server.data import images, ownership, points, sequences, tabular, upload
from server.data.base import Dataset, DataSetDef, point_features
from server.data.ownership import EVERYONE, Viewer
from server.data.splits import split_indices
from server.data.starters import Starter, table_starter
from server.spec.errors import SpecError
from server.spec.job import DatasetSpec
from server.spec.shapes import DataShape, Shape
from server.spec.vocabulary import POINT_DOMAIN

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
        # Uploads (H5): by the name jobs use, with their metadata (owner, title, shared).
        upload.clean(self.upload_dir)
        stored = upload.load_all(self.upload_dir)
        self._uploads: dict[str, DataSetDef] = {
            name: d for name, (d, _) in stored.items() if name not in self._builtin
        }
        self._upload_meta: dict[str, dict] = {name: stored[name][1] for name in self._uploads}

    # --- lookup -----------------------------------------------------------------------------

    def names(self, viewer: Viewer = EVERYONE) -> list[str]:
        """Built-in sets, then the uploads `viewer` may see."""
        with self._lock:
            return [*self._builtin, *sorted(
                n for n in self._uploads if ownership.can_see(self._upload_meta[n], viewer))]

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
            # H4 (issue 12): a job spec is strict (`true` is not 1, "3" is not 3); a preview's
            # query string is all text, so only there are numbers read from strings.
            parsed = model.model_validate(params, strict=loc[:1] != ("query",))
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

    def catalog(self, viewer: Viewer = EVERYONE) -> list[dict]:
        """One entry per data set (built-in first, then the uploads `viewer` may see), with
        its params' schema."""
        return [self.entry(name, viewer) for name in self.names(viewer)]

    def entry(self, name: str, viewer: Viewer = EVERYONE) -> dict:
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
            "starter": self.starter(name).as_spec(
                d.default_features if d.kind == "points2d" else None),
        }
        if d.kind == "points2d":
            entry["features"] = list(d.allowed_features)
            entry["default_features"] = list(d.default_features)
            entry["domain"] = list(POINT_DOMAIN)
        meta = self._upload_meta.get(d.name)
        if meta is not None:  # H5: whose it is, shared or not, what it takes on disk
            entry.update(owner=meta.get("owner_name"), shared=bool(meta.get("shared")),
                         deletable=viewer.everything or meta.get("owner") == viewer.owner,
                         rows=meta["rows"], stored_bytes=meta["bytes"],
                         filename=meta.get("filename"))
        return entry

    def starter(self, name: str) -> Starter:
        """The setup `name` opens with: its own, or for an upload a generic one sized from
        its task and rows. Raises DataSetNotFound."""
        d = self.definition(name)
        if d.starter is not None:
            return d.starter
        with self._lock:
            rows = int(self._upload_meta.get(name, {}).get("rows", 0))
        return table_starter(d.task, rows, DatasetSpec.model_fields["train_fraction"].default)

    def describe(self, spec: DatasetSpec, viewer: Viewer = EVERYONE) -> DataShape:
        """The shape a model gets from `spec`, without generating data; SpecError if bad
        (an upload `viewer` may not see is not found)."""
        try:
            d = self.definition(spec.name)
            meta = self._upload_meta.get(d.name)
            if meta is not None and not ownership.can_see(meta, viewer):
                raise DataSetNotFound(spec.name)
        except DataSetNotFound:
            raise SpecError(("dataset", "name"), self._not_found(spec.name, viewer)) from None
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
            out["domain"] = list(POINT_DOMAIN)
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

    # --- uploads (H5): owners, quotas, delete, share -----------------------------------------

    def add_upload(self, content: bytes | BinaryIO, target: str, task: str | None = None,
                   name: str | None = None, filename: str | None = None,
                   viewer: Viewer = EVERYONE) -> dict:
        """Parse, check and store an uploaded CSV (bytes or a binary file) as `viewer`'s;
        returns its catalogue entry. On an open server it is used by the name given (unique);
        in class mode by `upload:<id>`, the name given being its title (unique per owner).
        Raises upload.UploadError (a message naming the row or column) for a bad file, and
        ownership.Refused (413/507) past a storage quota."""
        title = upload.default_title(name, filename)
        with self._lock:  # fail fast, before parsing
            self._check_title(title, viewer)
            self._check_quota(viewer, 0)
        parsed = upload.parse_csv(content, target, task, self.settings)
        upload_id = upload.new_id()
        stored = upload.write_arrays(self.upload_dir, upload_id, parsed)
        try:
            with self._lock:
                self._check_title(title, viewer)
                self._check_quota(viewer, stored)
                name = title if viewer.owner is None else f"upload:{upload_id}"
                meta = upload.make_meta(upload_id, name, title, parsed, filename, stored,
                                        viewer.owner, viewer.name)
                upload.write_meta(self.upload_dir, meta)
                self._uploads[name] = upload.declare(self.upload_dir, meta)
                self._upload_meta[name] = meta
        except BaseException:
            (self.upload_dir / f"{upload_id}.npz").unlink(missing_ok=True)
            raise
        return self.entry(name, viewer)

    def _check_title(self, title: str, viewer: Viewer) -> None:
        taken = {n.casefold() for n in self._builtin}
        if viewer.owner is None:
            taken |= {n.casefold() for n in self._uploads}
        else:
            mine = [m["title"] for m in self._upload_meta.values()
                    if m.get("owner") == viewer.owner]
            if title.casefold() in {t.casefold() for t in mine}:
                raise upload.UploadError(f"You already have a data set named {title!r}; choose "
                                         "another name or delete that one.", field="name")
        if title.casefold() in taken:
            raise upload.UploadError(
                f"A data set named {title!r} already exists; choose another name.", field="name")

    def _check_quota(self, viewer: Viewer, adding: int) -> None:
        """Refused 507 past the server's upload storage, 413 past a student's."""
        mb = 1024 * 1024
        total = self.settings.max_upload_storage_total
        used = self.upload_bytes()
        if total and used + max(adding, 1) > total:
            raise ownership.Refused(507, (
                f"The server's uploaded data sets take {used / mb:.1f} MB of the {total / mb:.0f}"
                " MB it keeps for them (max_upload_storage_total); ask the teacher to delete "
                "old uploads."))
        own = self.settings.max_upload_storage_per_student
        if own and viewer.student:
            used = self.upload_bytes(viewer.owner)
            if used + max(adding, 1) > own:
                raise ownership.Refused(413, (
                    f"Your uploaded data sets would take {(used + adding) / mb:.1f} MB; each "
                    f"student may keep {own / mb:.0f} MB (max_upload_storage_per_student). "
                    "Delete one of your uploads first."))

    def upload_bytes(self, owner: str | None = None) -> int:
        """Stored bytes of every upload, or of `owner`'s."""
        with self._lock:
            return sum(int(m["bytes"]) for m in self._upload_meta.values()
                       if owner is None or m.get("owner") == owner)

    def _not_found(self, name: str, viewer: Viewer) -> str:
        """The message for an unknown name, listing only what `viewer` may use."""
        return f"Data set not found: {name!r}. Choose one of: {', '.join(self.names(viewer))}."

    def check_access(self, name: str, viewer: Viewer) -> None:
        """Raises DataSetNotFound (404; its choices are those `viewer` may see), or
        ownership.Refused: 401 for a visitor who has not joined, 403 for another student's
        upload. Built-in sets are everyone's."""
        try:
            self.definition(name)
        except DataSetNotFound:
            raise DataSetNotFound(self._not_found(name, viewer)) from None
        meta = self._upload_meta.get(name)
        if meta is not None:
            ownership.check_see(meta, viewer)

    def delete_upload(self, name: str, viewer: Viewer,
                      users: Callable[[str], list[dict]]) -> None:
        """Delete an upload: its owner, or the teacher. Refused 409 while `users(name)` (the
        jobs that train on it) is not empty: a job keeps needing its data (to resume, reset
        or draw), so delete those jobs first."""
        with self._lock:
            self.check_access(name, viewer)
            meta = self._upload_meta.get(name)
            if meta is None:
                raise ownership.Refused(409, f"{name!r} is a built-in data set; only uploaded "
                                        "data sets can be deleted.")
            ownership.check_delete(meta, viewer)
            definition = self._uploads.pop(name)  # from now on no new job can use it
            del self._upload_meta[name]
        jobs = users(name)
        if jobs:
            with self._lock:
                self._uploads[name], self._upload_meta[name] = definition, meta
            shown = ", ".join(f"{j['name'] or j['id']!r} ({j['status']})" for j in jobs[:3])
            more = f" and {len(jobs) - 3} more" if len(jobs) > 3 else ""
            raise ownership.Refused(409, (
                f"The data set {meta['title']!r} is used by {len(jobs)} "
                f"job{'s' if len(jobs) != 1 else ''}: {shown}{more}. Delete "
                f"{'those jobs' if len(jobs) != 1 else 'that job'} first."))
        upload.remove(self.upload_dir, meta)
        with self._lock:
            for key in [k for k in self._cache if json.loads(k)[0] == name]:
                del self._cache[key]

    def share_upload(self, name: str, viewer: Viewer, shared: bool = True) -> dict:
        """Share an upload with the class (or stop sharing it): the teacher only."""
        with self._lock:
            self.check_access(name, viewer)
            meta = self._upload_meta.get(name)
            if meta is None:
                raise ownership.Refused(409, f"{name!r} is a built-in data set; every class "
                                        "member sees it already.")
            ownership.check_share(meta, viewer)
            changed = {**meta, "shared": shared}
            upload.write_meta(self.upload_dir, changed)
            self._upload_meta[name] = changed
        return self.entry(name, viewer)


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
