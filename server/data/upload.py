"""CSV uploads: parse and check a user's CSV, store it in the upload folder, and declare
the stored sets again when the server starts.

A set is stored as `<name>.npz` (numeric arrays, read with `allow_pickle=False`) plus
`<name>.json` (its metadata), both written atomically; nothing uploaded is ever unpickled.
Every problem raises `UploadError` with a sentence that names the row or column.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.config import Settings
from server.data.base import DataSetDef, Params
from server.spec.errors import SpecError
from server.spec.shapes import Shape

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_ROWS = 10
MAX_CLASSES = 100
TASKS = ("classification", "regression")


class UploadError(ValueError):
    """A bad upload; `field` is the form field at fault (file, target, task, name)."""

    def __init__(self, msg: str, field: str = "file", row: int | None = None,
                 column: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.field = field
        self.row = row
        self.column = column

    def detail(self) -> list[dict]:
        """FastAPI's 422 `detail` list."""
        item: dict = {"loc": ["body", self.field], "msg": self.msg, "type": "value_error"}
        if self.row is not None:
            item["row"] = self.row
        if self.column is not None:
            item["column"] = self.column
        return [item]


class UploadParams(Params):
    """An uploaded set has no parameters: it is what was uploaded."""


@dataclass
class ParsedCsv:
    x: np.ndarray  # (rows, features) float64
    y: np.ndarray  # (rows,) int64 class indices or float64 values
    feature_names: list[str]
    target: str
    task: str
    class_names: list[str]


def check_name(name: str | None, filename: str | None, existing: set[str]) -> str:
    """The name to store under: given, or made from the file name; refused if taken."""
    if name is None or not name.strip():
        stem = Path(filename or "upload").stem
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:64] or "upload"
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise UploadError(
            f"The name {name!r} cannot be used; use 1 to 64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit.", field="name",
        )
    if name.casefold() in {n.casefold() for n in existing}:
        raise UploadError(
            f"A data set named {name!r} already exists; choose another name.", field="name"
        )
    return name


def parse_csv(content: bytes, target: str, task: str | None, settings: Settings) -> ParsedCsv:
    """Numeric feature columns and a target column chosen by name; the task is given or
    inferred (integer or text labels: classification; other numbers: regression). Columns
    are separated by commas, semicolons or tabs (whichever the header row uses)."""
    if task is not None and task not in TASKS:
        raise UploadError(f"task {task!r} is not known; use classification or regression, or "
                          "leave it out to infer it from the target column.", field="task")
    if not content.strip():
        raise UploadError("The file is empty; upload a CSV with a header row and data rows.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(f"The file is not UTF-8 text (bad byte at position {exc.start}); "
                          "save it as a UTF-8 CSV.") from None
    if "\x00" in text:
        raise UploadError("The file contains NUL bytes: it is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = next(r for r in reader if any(c.strip() for c in r))
    except StopIteration:
        raise UploadError("The file has no header row; the first line must name the "
                          "columns.") from None
    except csv.Error as exc:
        raise UploadError(f"The file is not a readable CSV: {exc}.") from None
    header = [h.strip() for h in header]
    if len(header) > settings.max_upload_columns:
        raise UploadError(f"The file has {len(header)} columns; the limit is "
                          f"{settings.max_upload_columns}.")
    for i, h in enumerate(header):
        if not h:
            raise UploadError(f"Column {i + 1} has no name in the header row; name every column.",
                              column=str(i + 1))
    seen: set[str] = set()
    for h in header:
        if h in seen:
            raise UploadError(f"The column name {h!r} appears twice in the header; column names "
                              "must be unique.", column=h)
        seen.add(h)
    if target not in header:
        raise UploadError(f"There is no target column {target!r}; the columns are: "
                          f"{', '.join(header)}.", field="target", column=target)
    if len(header) < 2:
        raise UploadError("The file has only the target column; add at least one feature column.")
    t = header.index(target)
    features = [h for h in header if h != target]
    rows: list[list[float]] = []
    labels: list[str] = []
    row_number = 0
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            row_number += 1
            if row_number > settings.max_upload_rows:
                raise UploadError(f"The file has more than {settings.max_upload_rows} data rows "
                                  "(the limit); upload fewer rows.", row=row_number)
            if len(cells) != len(header):
                raise UploadError(f"Row {row_number} (line {reader.line_num}) has {len(cells)} "
                                  f"cells but the header has {len(header)} columns.",
                                  row=row_number)
            values = []
            for j, cell in enumerate(cells):
                if j == t:
                    label = cell.strip()
                    if not label or label.lower() in ("nan", "na", "null"):
                        raise UploadError(f"Row {row_number} (line {reader.line_num}): the target "
                                          f"{target!r} is missing; fill it or remove the row.",
                                          row=row_number, column=target)
                    labels.append(label)
                    continue
                values.append(_number(cell, row_number, reader.line_num, header[j]))
            rows.append(values)
    except csv.Error as exc:
        raise UploadError(f"The file is not a readable CSV near line {reader.line_num}: {exc}.",
                          row=row_number) from None
    if len(rows) < MIN_ROWS:
        raise UploadError(f"The file has {len(rows)} data rows; at least {MIN_ROWS} are needed to "
                          "split it into training and test data.")
    y, task, class_names = _target(labels, target, task)
    return ParsedCsv(np.asarray(rows, dtype=np.float64), y, features, target, task, class_names)


def _delimiter(text: str) -> str:
    """Comma, semicolon (spreadsheets in many locales) or tab: the most common in line one."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max(",;\t", key=first.count) if first else ","


def _number(cell: str, row: int, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise UploadError(f"Row {row} (line {line}), column {column!r} is empty; feature "
                          "columns must be numbers in every row.", row=row, column=column)
    try:
        value = float(text)
    except ValueError:
        raise UploadError(f"Row {row} (line {line}), column {column!r}: {text[:40]!r} is not a "
                          "number; feature columns must be numeric.", row=row,
                          column=column) from None
    if not math.isfinite(value):
        raise UploadError(f"Row {row} (line {line}), column {column!r} is {text!r} (NaN or "
                          "infinite); fill in a number or remove the row.", row=row, column=column)
    return value


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _target(labels: list[str], target: str, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    numbers: list[float] | None = []
    for label in labels:
        try:
            value = float(label)
        except ValueError:
            numbers = None
            break
        numbers.append(value)
    integers = numbers is not None and all(_is_int(v) for v in labels)
    if task is None:
        task = "regression" if numbers is not None and not integers else "classification"
    if task == "regression":
        if numbers is None:
            row = next(i for i, v in enumerate(labels, 1) if not _looks_numeric(v))
            raise UploadError(f"Row {row}: the target {target!r} is {labels[row - 1][:40]!r}, "
                              "not a number; regression needs a numeric target.", row=row,
                              column=target)
        bad = next((i for i, v in enumerate(numbers, 1) if not math.isfinite(v)), None)
        if bad is not None:
            raise UploadError(f"Row {bad}: the target {target!r} is NaN or infinite; fill it "
                              "or remove the row.", row=bad, column=target)
        if len(set(numbers)) < 2:
            raise UploadError(f"The target {target!r} has the same value in every row; there is "
                              "nothing to learn.", column=target)
        return np.asarray(numbers, dtype=np.float64), task, []
    if numbers is not None and not integers:
        row = next(i for i, v in enumerate(labels, 1) if not _is_int(v))
        raise UploadError(f"Row {row}: the target {target!r} is {labels[row - 1]!r}; "
                          "classification needs integer or text labels (or ask for task "
                          "regression).", row=row, column=target)
    distinct = sorted(set(labels), key=(lambda v: int(v)) if integers else None)
    if len(distinct) < 2:
        raise UploadError(f"The target {target!r} has only one class ({distinct[0]!r}); "
                          "classification needs at least two.", column=target)
    if len(distinct) > MAX_CLASSES:
        raise UploadError(f"The target {target!r} has {len(distinct)} different labels; the "
                          f"limit is {MAX_CLASSES} classes. If it is a quantity, ask for task "
                          "regression.", column=target)
    index = {label: i for i, label in enumerate(distinct)}
    names = [str(int(v)) if integers else v for v in distinct]
    return np.asarray([index[v] for v in labels], dtype=np.int64), task, names


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(upload_dir: Path, name: str, parsed: ParsedCsv, filename: str | None) -> DataSetDef:
    """Write `<name>.npz` then `<name>.json` (the JSON last: it marks the set complete)."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, x=parsed.x, y=parsed.y)
    _atomic_write(upload_dir / f"{name}.npz", buffer.getvalue())
    meta = {
        "name": name, "filename": filename, "target": parsed.target, "task": parsed.task,
        "feature_names": parsed.feature_names, "class_names": parsed.class_names,
        "rows": int(parsed.x.shape[0]),
    }
    _atomic_write(upload_dir / f"{name}.json", json.dumps(meta, indent=1).encode())
    return declare(upload_dir, meta)


def declare(upload_dir: Path, meta: dict) -> DataSetDef:
    """The DataSetDef of a stored upload; its arrays are read from disk when loaded."""
    name = meta["name"]
    path = upload_dir / f"{name}.npz"
    task = meta["task"]
    features = list(meta["feature_names"])
    classes = tuple(meta["class_names"])

    def generate(p: UploadParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as stored:
                return stored["x"].astype(np.float64), stored["y"]
        except (OSError, ValueError, KeyError) as exc:
            raise SpecError(("dataset", "name"), f"The uploaded data set {name!r} could not be "
                            f"read from the server's disk ({type(exc).__name__}); upload it "
                            "again under a new name.") from None

    return DataSetDef(
        name, name, f"Uploaded from {meta.get('filename') or 'a CSV'}: {meta['rows']} rows, "
        f"{len(features)} features, target {meta['target']!r}.",
        "Your own data: the same networks on a problem you brought.",
        task, "tabular", UploadParams, generate,
        input_shape=lambda p: Shape((len(features),)),
        class_names=lambda p: classes,
        feature_names=lambda p: features,
        standardize=True,
        standardize_target=task == "regression",
        notes="Uploaded CSV. Features (and a regression target) are standardized with the "
        "training split's statistics.",
    )


def load_all(upload_dir: Path) -> dict[str, DataSetDef]:
    """Every complete stored upload; a damaged one is skipped with a warning, never loaded."""
    found: dict[str, DataSetDef] = {}
    if not upload_dir.is_dir():
        return found
    for meta_path in sorted(upload_dir.glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            name = meta["name"]
            if (not NAME_PATTERN.match(name) or meta_path.stem != name
                    or meta["task"] not in TASKS or not (upload_dir / f"{name}.npz").is_file()):
                raise ValueError("metadata does not match its files")
            found[name] = declare(upload_dir, meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping uploaded data set %s: %s", meta_path.name, exc)
    return found
