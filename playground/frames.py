"""Decode the stream's binary snapshot frames (docs/STREAM.md) into numpy arrays.

A frame is 4 bytes N (uint32 little-endian), N bytes of UTF-8 JSON header padded with spaces,
then the arrays' bytes, each at the `offset` its header entry gives (counted from byte 4 + N).
`decode` gives the header and raw arrays (uint8 maps stay quantized); `Snapshot.values(name)`
gives float32 values, dequantized with the per-slice `min`/`max` ranges. Pure numpy: this
module knows nothing of the server's code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "uint8": np.dtype("u1")}


class FrameError(ValueError):
    """A binary frame that does not follow the protocol."""


def decode(frame: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, {name: array}) from one binary frame; arrays are read-only views on `frame`."""
    if len(frame) < 4:
        raise FrameError("frame shorter than its 4-byte header length")
    (n,) = struct.unpack_from("<I", frame, 0)
    if 4 + n > len(frame):
        raise FrameError(f"header length {n} runs past the frame ({len(frame)} bytes)")
    try:
        header = json.loads(bytes(frame[4:4 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"the frame's header is not JSON: {exc}") from None
    body = 4 + n
    arrays: dict[str, np.ndarray] = {}
    for meta in header.get("arrays", []):
        dtype = DTYPES.get(meta.get("dtype"))
        if dtype is None:
            raise FrameError(f"array {meta.get('name')!r}: unknown dtype {meta.get('dtype')!r}")
        shape = [int(s) for s in meta["shape"]]
        count = int(np.prod(shape, dtype=np.int64))
        start = body + int(meta["offset"])
        if start + count * dtype.itemsize > len(frame):
            raise FrameError(f"array {meta['name']!r} runs past the end of the frame")
        arrays[meta["name"]] = np.frombuffer(frame, dtype=dtype, count=count,
                                             offset=start).reshape(shape)
    return header, arrays


def dequantize(codes: np.ndarray, lo: list[float], hi: list[float]) -> np.ndarray:
    """float32 values of uint8 codes: min[i] + (max[i] - min[i]) * q / 255, i on the first axis."""
    codes = np.asarray(codes)
    lo_a = np.asarray(lo, dtype=np.float32).reshape((-1,) + (1,) * max(codes.ndim - 1, 0))
    hi_a = np.asarray(hi, dtype=np.float32).reshape(lo_a.shape)
    return (lo_a + (hi_a - lo_a) * codes.astype(np.float32) / 255.0).astype(np.float32)


@dataclass
class Snapshot:
    """One decoded snapshot: its header (epoch, step, kind, ...) and its arrays by name.

    `arrays` holds the arrays as sent (uint8 maps quantized); `values(name)` the float values.
    `snapshot["output.boundary"]` is `values("output.boundary")`.
    """

    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    type: str = "snapshot"

    @classmethod
    def from_bytes(cls, frame: bytes) -> Snapshot:
        header, arrays = decode(frame)
        return cls(header, arrays)

    @property
    def epoch(self) -> int | None:
        return self.header.get("epoch")

    @property
    def step(self) -> int | None:
        return self.header.get("step")

    @property
    def kind(self) -> str | None:
        return self.header.get("kind")

    @property
    def names(self) -> list[str]:
        return list(self.arrays)

    def meta(self, name: str) -> dict[str, Any]:
        for entry in self.header.get("arrays", []):
            if entry.get("name") == name:
                return entry
        raise KeyError(f"no array {name!r} in this snapshot; it has: {', '.join(self.arrays)}")

    def values(self, name: str) -> np.ndarray:
        """The array as float32 values (uint8 maps dequantized with their ranges)."""
        meta = self.meta(name)
        array = self.arrays[name]
        if meta["dtype"] == "uint8" and "min" in meta:
            return dequantize(array, meta["min"], meta["max"])
        return array.astype(np.float32)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values(name)

    def __contains__(self, name: object) -> bool:
        return name in self.arrays
