"""CSV uploads on disk: store a parsed CSV compactly in the upload folder, remove it, and
declare the stored sets again when the server starts. Parsing is server/data/csv_parse.py
(its names are re-exported here: callers use `upload.parse_csv`, `upload.UploadError`).

A set is stored under a random id as `<id>.npz` (zip-compressed numeric arrays, read with
`allow_pickle=False`) plus `<id>.json` (its metadata: the name it is used by, the title the user
gave it, its owner), both written atomically, the JSON last: it marks the set complete. Sets
stored by older versions (`<name>.npz` + `<name>.json`, no id) still load. At start-up, temp
files and data files without metadata (a crash mid-write or mid-delete) are removed. Nothing
uploaded is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from server.data.base import DataSetDef
from server.data.csv_parse import (  # noqa: F401  (re-exported for callers of this module)
    CHUNK_BYTES,
    ID_NAME_PATTERN,
    ID_PATTERN,
    MAX_CLASSES,
    MIN_ROWS,
    NAME_PATTERN,
    TASKS,
    ParsedCsv,
    UploadError,
    UploadParams,
    check_name,
    default_title,
    parse_csv,
    trim_memory,
)
from server.spec.errors import SpecError
from server.spec.shapes import Shape

log = logging.getLogger(__name__)


# --- storing and loading ------------------------------------------------------------------


def _atomic_write(path: Path, write) -> None:
    """`write(file)` into a temp file beside `path`, fsync, rename over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_id() -> str:
    return secrets.token_hex(6)


def write_arrays(upload_dir: Path, upload_id: str, parsed: ParsedCsv) -> int:
    """Write `<id>.npz` (what np.savez_compressed writes, without its copy of each array);
    returns its size in bytes."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    path = upload_dir / f"{upload_id}.npz"
    _atomic_write(path, lambda f: _savez(f, {"x": parsed.x, "y": parsed.y}))
    return path.stat().st_size


def _savez(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in arrays.items():
            array = np.ascontiguousarray(array)
            with archive.open(f"{key}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array_header_1_0(
                    out, np.lib.format.header_data_from_array_1_0(array))
                data = memoryview(array).cast("B")
                for start in range(0, len(data), CHUNK_BYTES):
                    out.write(data[start:start + CHUNK_BYTES])


def write_meta(upload_dir: Path, meta: dict) -> None:
    """Write `<id>.json`: the set is complete (and listed) from this moment."""
    data = json.dumps(meta, indent=1).encode()
    stem = meta.get("id") or meta["name"]  # older sets are stored under their name
    _atomic_write(upload_dir / f"{stem}.json", lambda f: f.write(data))


def make_meta(upload_id: str, name: str, title: str, parsed: ParsedCsv, filename: str | None,
              stored_bytes: int, owner: str | None, owner_name: str | None) -> dict:
    return {
        "id": upload_id, "name": name, "title": title, "owner": owner,
        "owner_name": owner_name, "shared": False, "filename": filename,
        "target": parsed.target, "task": parsed.task,
        "feature_names": parsed.feature_names, "class_names": parsed.class_names,
        "rows": int(parsed.x.shape[0]), "bytes": stored_bytes, "created_at": time.time(),
    }


def remove(upload_dir: Path, meta: dict) -> None:
    """Delete a stored set: the JSON first (the set is gone), then its arrays."""
    stem = meta.get("id") or meta["name"]
    (upload_dir / f"{stem}.json").unlink(missing_ok=True)
    (upload_dir / f"{stem}.npz").unlink(missing_ok=True)


def declare(upload_dir: Path, meta: dict) -> DataSetDef:
    """The DataSetDef of a stored upload; its arrays are read from disk when loaded."""
    name = meta["name"]
    path = upload_dir / f"{meta.get('id') or name}.npz"
    task = meta["task"]
    features = list(meta["feature_names"])
    classes = tuple(meta["class_names"])
    title = meta.get("title") or name

    def generate(p: UploadParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as stored:
                x = stored["x"].astype(np.float64)
                y = stored["y"]
                return x, (y.astype(np.int64) if task == "classification" else y)
        except (OSError, ValueError, KeyError) as exc:
            raise SpecError(("dataset", "name"), f"The uploaded data set {title!r} could not be "
                            f"read from the server's disk ({type(exc).__name__}); upload it "
                            "again under a new name.") from None

    return DataSetDef(
        name, title, f"Uploaded from {meta.get('filename') or 'a CSV'}: {meta['rows']} rows, "
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


def _valid(meta: dict, stem: str) -> bool:
    name, upload_id = meta["name"], meta.get("id")
    if meta["task"] not in TASKS:
        return False
    if upload_id is None:  # stored by an older version: under its name
        return bool(NAME_PATTERN.match(name)) and stem == name
    return (bool(ID_PATTERN.match(upload_id)) and stem == upload_id
            and bool(NAME_PATTERN.match(name) or ID_NAME_PATTERN.match(name)))


def clean(upload_dir: Path) -> list[str]:
    """Remove what a crash left behind: temp files, and arrays without their metadata (a
    write or a delete cut short). Returns the names removed."""
    removed: list[str] = []
    if not upload_dir.is_dir():
        return removed
    for path in upload_dir.iterdir():
        if not path.is_file():
            continue
        orphan = path.suffix == ".npz" and not path.with_suffix(".json").exists()
        if path.name.startswith(".tmp-") or orphan:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.warning("removed %d leftover upload file(s): %s", len(removed), ", ".join(removed))
    return removed


def load_all(upload_dir: Path) -> dict[str, tuple[DataSetDef, dict]]:
    """Every complete stored upload by name, with its metadata; a damaged one is skipped with
    a warning, never loaded."""
    found: dict[str, tuple[DataSetDef, dict]] = {}
    if not upload_dir.is_dir():
        return found
    for meta_path in sorted(upload_dir.glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            if not _valid(meta, meta_path.stem) or not meta_path.with_suffix(".npz").is_file():
                raise ValueError("metadata does not match its files")
            meta.setdefault("title", meta["name"])
            meta.setdefault("owner", None)
            meta.setdefault("shared", False)
            if "bytes" not in meta:
                meta["bytes"] = meta_path.with_suffix(".npz").stat().st_size
            found[meta["name"]] = (declare(upload_dir, meta), meta)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping uploaded data set %s: %s", meta_path.name, exc)
    return found
