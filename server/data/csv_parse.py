"""Reading a user's CSV: parse and check it as a stream into compact numpy arrays, with a
sentence naming the row or column for every problem (`UploadError`).

Parsing reads the file line by line (a 64 KiB chunk at a time) into preallocated float32
arrays, so memory stays near the size of the numbers themselves (a few times the file at
most), never the Python objects of every cell; the column limit is checked on the header line
before it is split. A column whose values float32 would round by more than a millionth of its
range (timestamps, say) keeps float64. Storing what was parsed is server/data/upload.py.
One streaming parser of about 430 lines: its checks and its messages follow the file's order.
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import gc
import io
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from server.config import Settings
from server.data.base import Params

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The name a class-mode upload is used by: "upload:" and its id (titles may repeat).
ID_NAME_PATTERN = re.compile(r"^upload:[0-9a-f]{12}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{12}$")
MIN_ROWS = 10
MAX_CLASSES = 100
TASKS = ("classification", "regression")
CHUNK_BYTES = 1 << 16
BLOCK_ROWS = 4096  # rows checked and rounded to float32 at a time
# float32 keeps a column unless it would move a value by more than this share of its range.
FLOAT32_TOLERANCE = 1e-6
BOM = b"\xef\xbb\xbf"
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # a line and its ending, or the rest
MISSING = ("nan", "na", "null")


class UploadError(ValueError):
    """A bad upload; `field` is the form field at fault (file, target, task, name); a 422
    (server/api/errors.py renders it, with the row and column when known)."""

    def __init__(self, msg: str, field: str = "file", row: int | None = None,
                 column: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.field = field
        self.row = row
        self.column = column


class UploadParams(Params):
    """An uploaded set has no parameters: it is what was uploaded."""


@dataclass
class ParsedCsv:
    x: np.ndarray  # (rows, features) float32, or float64 when float32 would round too much
    y: np.ndarray  # (rows,) uint8 class indices or float64 values
    feature_names: list[str]
    target: str
    task: str
    class_names: list[str]


def default_title(name: str | None, filename: str | None) -> str:
    """The name asked for, or one made from the file name; refused if it is not a name."""
    if name is None or not name.strip():
        stem = Path(filename or "upload").stem
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:64] or "upload"
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise UploadError(
            f"The name {name!r} cannot be used; use 1 to 64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit.", field="name",
        )
    return name


def check_name(name: str | None, filename: str | None, existing: set[str]) -> str:
    """The name to store under: given, or made from the file name; refused if taken."""
    name = default_title(name, filename)
    if name.casefold() in {n.casefold() for n in existing}:
        raise UploadError(
            f"A data set named {name!r} already exists; choose another name.", field="name"
        )
    return name


# --- reading the file ---------------------------------------------------------------------


def _lines(f: BinaryIO) -> Iterator[str]:
    """The file's lines as text, each with its line ending (\\n, \\r\\n or \\r), decoded as
    UTF-8 (a BOM dropped) chunk by chunk; a bad byte or a NUL raises UploadError."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes handed to the decoder so far
    first = True
    parts: list[str] = []  # the line being assembled across chunks
    while True:
        data = f.read(CHUNK_BYTES)
        if first:
            first = False
            if data.startswith(BOM):
                data, offset = data[len(BOM):], len(BOM)
        final = not data
        buffered = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise UploadError(f"The file is not UTF-8 text (bad byte at position "
                              f"{offset - buffered + exc.start}); save it as a UTF-8 "
                              "CSV.") from None
        offset += len(data)
        if "\x00" in text:
            raise UploadError("The file contains NUL bytes: it is not a CSV text file.")
        if text:
            parts.append(text)
            if "\n" not in text and "\r" not in text:
                continue
            joined = "".join(parts)
            parts = []
            lines = LINE.findall(joined)
            del joined
            if not lines[-1].endswith("\n"):  # unfinished, or "\r" that a "\n" may follow
                parts.append(lines.pop())
            yield from lines
        if final:
            if parts:
                yield "".join(parts)
            return


def _count_columns(line: str, delimiter: str) -> int:
    """The number of columns a header line has, counted without splitting it (quoted
    delimiters are not separators)."""
    if '"' in line:
        line = re.sub(r'"[^"]*"', "", line)
    return line.count(delimiter) + 1


class _Labels:
    """The target column read row by row: a class code per row (first appearance; up to
    MAX_CLASSES + 1 distinct labels kept), its value when numeric, and where it first was
    not a number, not an integer or not finite (for the messages)."""

    def __init__(self, capacity: int) -> None:
        self.codes = np.empty(capacity, dtype=np.int32)
        self.values = np.empty(capacity, dtype=np.float64)
        self.index: dict[str, tuple[int, float, bool]] = {}  # label -> (code, value, is_int)
        self.not_number: tuple[int, str] | None = None
        self.not_int: tuple[int, str] | None = None
        self.not_finite: int | None = None
        self.overflow = False

    def grow(self, capacity: int) -> None:
        self.codes = np.resize(self.codes, capacity)
        self.values = np.resize(self.values, capacity)

    def add(self, i: int, label: str, row: int) -> None:
        known = self.index.get(label)
        if known is None:
            value, is_int = _label_value(label)
            code = -1
            if len(self.index) <= MAX_CLASSES or math.isnan(value):
                code = len(self.index)
                self.index[label] = (code, value, is_int)
            else:
                self.overflow = True
        else:
            code, value, is_int = known
        self.codes[i] = code
        self.values[i] = value
        if math.isnan(value):
            if self.not_number is None:
                self.not_number = (row, label)
        else:
            if not is_int and self.not_int is None:
                self.not_int = (row, label)
            if self.not_finite is None and not math.isfinite(value):
                self.not_finite = row


def _label_value(label: str) -> tuple[float, bool]:
    """(its value, or NaN when it is not a number; whether it is an integer)."""
    try:
        value = float(label)
    except ValueError:
        return math.nan, False
    if math.isnan(value):  # "nan" itself is refused earlier as a missing target
        return math.nan, False
    try:
        int(label)
    except ValueError:
        return value, False
    return value, True


def parse_csv(source: bytes | BinaryIO, target: str, task: str | None,
              settings: Settings) -> ParsedCsv:
    """Numeric feature columns and a target column chosen by name; the task is given or
    inferred (integer or text labels: classification; other numbers: regression). Columns
    are separated by commas, semicolons or tabs (whichever the header row uses). `source` is
    the file's bytes or a binary file (read from its start)."""
    if task is not None and task not in TASKS:
        raise UploadError(f"task {task!r} is not known; use classification or regression, or "
                          "leave it out to infer it from the target column.", field="task")
    f = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    parsed = _parse(f, target, task, settings, np.float32)
    if parsed is None:  # float32 would round a column too much: read it again in float64
        parsed = _parse(f, target, task, settings, np.float64)
    assert parsed is not None
    return parsed


def _parse(f: BinaryIO, target: str, task: str | None, settings: Settings,
           dtype: type) -> ParsedCsv | None:
    """The parsed file, or None when `dtype` is float32 and would round a column too much."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(0)
    lines = _lines(f)
    saw_text = False
    header_line = ""
    for line in lines:  # the first line with text decides the delimiter and the columns
        if line.strip():
            saw_text = True
            header_line = line
            break
    if not saw_text:
        raise UploadError("The file is empty; upload a CSV with a header row and data rows.")
    delimiter = max(",;\t", key=header_line.count)
    if header_line.count(delimiter) >= settings.max_upload_columns:
        columns = _count_columns(header_line, delimiter)
        if columns > settings.max_upload_columns:
            raise UploadError(f"The file has {columns} columns; the limit is "
                              f"{settings.max_upload_columns}.")

    def physical() -> Iterator[str]:
        yield header_line
        yield from lines

    reader = csv.reader(physical(), delimiter=delimiter)
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
    width = len(header)
    # A data row has a character and a separator (or line end) per cell at least.
    capacity = max(1, min(settings.max_upload_rows, size // (2 * width - 1) + 1))
    x = np.empty((capacity, len(features)), dtype=dtype)  # pages are used only when written
    labels = _Labels(capacity)
    block = np.empty((BLOCK_ROWS, len(features)), dtype=np.float64)
    lows = np.full(len(features), np.inf)
    highs = np.full(len(features), -np.inf)
    rounding = np.zeros(len(features))
    filled = 0  # rows in `block`
    rows = 0
    row_number = 0

    def flush() -> None:
        nonlocal filled
        if filled == 0:
            return
        part = block[:filled]
        x[rows - filled:rows] = part
        np.minimum(lows, part.min(axis=0), out=lows)
        np.maximum(highs, part.max(axis=0), out=highs)
        if dtype == np.float32:
            err = np.abs(part.astype(np.float32).astype(np.float64) - part).max(axis=0)
            np.maximum(rounding, err, out=rounding)
        filled = 0

    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            row_number += 1
            if row_number > settings.max_upload_rows:
                raise UploadError(f"The file has more than {settings.max_upload_rows} data rows "
                                  "(the limit); upload fewer rows.", row=row_number)
            if len(cells) != width:
                raise UploadError(f"Row {row_number} (line {reader.line_num}) has {len(cells)} "
                                  f"cells but the header has {width} columns.",
                                  row=row_number)
            label = cells[t].strip()
            if not label or label.lower() in MISSING:
                raise UploadError(f"Row {row_number} (line {reader.line_num}): the target "
                                  f"{target!r} is missing; fill it or remove the row.",
                                  row=row_number, column=target)
            del cells[t]
            try:
                values = [float(c) for c in cells]
                ok = math.isfinite(math.fsum(values))
            except (ValueError, OverflowError):
                ok = False
            if not ok:  # find the cell at fault and say which (or take the values after all)
                values = [_number(c, row_number, reader.line_num, features[j])
                          for j, c in enumerate(cells)]
            if rows == capacity:  # cannot happen by the size bound; kept safe all the same
                capacity *= 2
                x = np.resize(x, (capacity, len(features)))
                labels.grow(capacity)
            block[filled] = values
            labels.add(rows, label, row_number)
            filled += 1
            rows += 1
            if filled == BLOCK_ROWS:
                flush()
        flush()
    except csv.Error as exc:
        raise UploadError(f"The file is not a readable CSV near line {reader.line_num}: {exc}.",
                          row=row_number) from None
    if rows < MIN_ROWS:
        raise UploadError(f"The file has {rows} data rows; at least {MIN_ROWS} are needed to "
                          "split it into training and test data.")
    if dtype == np.float32 and bool(np.any(rounding > FLOAT32_TOLERANCE * (highs - lows))):
        return None
    y, task, class_names = _target(labels, rows, target, task)
    return ParsedCsv(x[:rows], y, features, target, task, class_names)


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


def _target(labels: _Labels, rows: int, target: str,
            task: str | None) -> tuple[np.ndarray, str, list[str]]:
    numbers = labels.not_number is None
    integers = numbers and labels.not_int is None
    if task is None:
        task = "regression" if numbers and not integers else "classification"
    values = labels.values[:rows]
    if task == "regression":
        if labels.not_number is not None:
            row, text = labels.not_number
            raise UploadError(f"Row {row}: the target {target!r} is {text[:40]!r}, "
                              "not a number; regression needs a numeric target.", row=row,
                              column=target)
        if labels.not_finite is not None:
            row = labels.not_finite
            raise UploadError(f"Row {row}: the target {target!r} is NaN or infinite; fill it "
                              "or remove the row.", row=row, column=target)
        if values.min() == values.max():
            raise UploadError(f"The target {target!r} has the same value in every row; there is "
                              "nothing to learn.", column=target)
        return values.astype(np.float64), task, []
    if numbers and not integers:
        row, text = labels.not_int  # type: ignore[misc]
        raise UploadError(f"Row {row}: the target {target!r} is {text!r}; "
                          "classification needs integer or text labels (or ask for task "
                          "regression).", row=row, column=target)
    codes = labels.codes[:rows]
    distinct = len(labels.index)
    if labels.overflow:
        distinct += len(np.unique(values[codes < 0]))
    if distinct < 2:
        only = next(iter(labels.index))
        raise UploadError(f"The target {target!r} has only one class ({only!r}); "
                          "classification needs at least two.", column=target)
    if distinct > MAX_CLASSES:
        raise UploadError(f"The target {target!r} has {distinct} different labels; the "
                          f"limit is {MAX_CLASSES} classes. If it is a quantity, ask for task "
                          "regression.", column=target)
    order = sorted(labels.index, key=(lambda v: int(v)) if integers else None)
    renumber = np.empty(len(order), dtype=np.uint8)
    for new, label in enumerate(order):
        renumber[labels.index[label][0]] = new
    names = [str(int(v)) if integers else v for v in order]
    return renumber[codes], task, names


def trim_memory() -> None:
    """Hand the memory a parse freed back to the system (glibc keeps freed blocks of worker
    threads' arenas otherwise: RSS would stay at its peak); a no-op elsewhere. The parse's
    cyclic garbage is collected first: the engine makes the collector run rarely
    (server.engine.engine GC_THRESHOLDS), and an upload is rare enough to pay for it."""
    gc.collect()
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None
