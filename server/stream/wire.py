"""The binary snapshot frame (docs/STREAM.md): encode on the server, decode for tests and tools.

Layout: 4 bytes N (uint32 little-endian), N bytes of UTF-8 JSON header padded with spaces so
that 4 + N is a multiple of 8, then the arrays' bytes, each starting at a multiple of 8 from
the start of the body. The header lists every array's name, dtype, shape, offset and nbytes.
`quantize` turns float maps into uint8 with one value range per index of the first axis.
Nothing here knows about torch or jobs: numpy in, bytes out.
"""

from __future__ import annotations

import json
import struct

import numpy as np

ALIGN = 8
DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "uint8": np.dtype("u1")}


def _pad(n: int) -> int:
    return (-n) % ALIGN


def quantize(values: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    """uint8 codes of `values` with one (min, max) per index of the first axis.

    Non-finite values are coded as the slice's minimum. A constant slice codes as 0.
    """
    values = np.asarray(values, dtype=np.float32)
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(-1, 1)
    if not np.isfinite(flat).all():  # rare: NaN or inf, coded as the slice's finite minimum
        finite = np.isfinite(flat)
        lo = np.where(finite, flat, np.inf).min(axis=1)  # (first,)
        hi = np.where(finite, flat, -np.inf).max(axis=1)  # (first,)
        lo = np.where(np.isfinite(lo), lo, 0.0).astype(np.float32)
        hi = np.where(np.isfinite(hi), hi, 0.0).astype(np.float32)
        flat = np.where(finite, flat, lo[:, None])
    else:
        lo, hi = flat.min(axis=1), flat.max(axis=1)  # (first,) each
    scale = np.where(hi > lo, 255.0 / np.where(hi > lo, hi - lo, 1.0), 0.0).astype(np.float32)
    scaled = (flat - lo[:, None]) * scale[:, None]  # (first, rest) in [0, 255]
    scaled += 0.5
    np.clip(scaled, 0, 255, out=scaled)
    codes = scaled.astype(np.uint8).reshape(values.shape)
    return codes, lo.tolist(), hi.tolist()


def dequantize(codes: np.ndarray, lo: list[float], hi: list[float]) -> np.ndarray:
    """float32 values back from `quantize`'s codes and ranges (error <= range / 510)."""
    codes = np.asarray(codes)
    lo_a = np.asarray(lo, dtype=np.float32).reshape((-1,) + (1,) * max(codes.ndim - 1, 0))
    hi_a = np.asarray(hi, dtype=np.float32).reshape(lo_a.shape)
    return (lo_a + (hi_a - lo_a) * codes.astype(np.float32) / 255.0).astype(np.float32)


class FrameBuilder:
    """Collects arrays (with their extra header fields) and encodes them as one frame."""

    def __init__(self, **header: object) -> None:
        self.header = dict(header)
        self._arrays: list[tuple[dict, np.ndarray]] = []

    def add(self, name: str, array: np.ndarray, dtype: str = "float32", **extra: object) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of: {', '.join(DTYPES)}")
        data = np.ascontiguousarray(array, dtype=DTYPES[dtype])
        meta = {"name": name, "dtype": dtype, "shape": list(data.shape), **extra}
        self._arrays.append((meta, data))

    def add_quantized(self, name: str, values: np.ndarray) -> None:
        codes, lo, hi = quantize(values)
        self.add(name, codes, "uint8", min=lo, max=hi)

    def names(self) -> list[str]:
        return [meta["name"] for meta, _ in self._arrays]

    def encode(self) -> bytes:
        return encode(self.header, self._arrays)


def encode(header: dict, arrays: list[tuple[dict, np.ndarray]]) -> bytes:
    """One binary frame from a header dict and (meta, array) pairs; meta gets offset and nbytes."""
    metas, chunks, offset = [], [], 0
    for meta, data in arrays:
        raw = data.tobytes()
        metas.append({**meta, "offset": offset, "nbytes": len(raw)})
        chunks.append(raw)
        chunks.append(b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    text = json.dumps({**header, "arrays": metas}, separators=(",", ":"), allow_nan=False)
    head = text.encode("utf-8")
    head += b" " * _pad(4 + len(head))
    return b"".join([struct.pack("<I", len(head)), head, *chunks])


def decode(frame: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, {name: array}) from a frame; arrays are read-only views on `frame`."""
    if len(frame) < 4:
        raise ValueError("frame shorter than its 4-byte header length")
    (n,) = struct.unpack_from("<I", frame, 0)
    if 4 + n > len(frame):
        raise ValueError(f"header length {n} runs past the frame ({len(frame)} bytes)")
    header = json.loads(bytes(frame[4:4 + n]).decode("utf-8"))
    body = 4 + n
    arrays = {}
    for meta in header.get("arrays", []):
        dtype = DTYPES[meta["dtype"]]
        count = int(np.prod(meta["shape"], dtype=np.int64))
        start = body + meta["offset"]
        if start + count * dtype.itemsize > len(frame):
            raise ValueError(f"array {meta['name']!r} runs past the end of the frame")
        arrays[meta["name"]] = np.frombuffer(frame, dtype=dtype, count=count, offset=start).reshape(
            meta["shape"])
    return header, arrays


def values(header: dict, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """An array as float32 values: uint8 arrays dequantized with their ranges."""
    meta = next(m for m in header["arrays"] if m["name"] == name)
    if meta["dtype"] == "uint8" and "min" in meta:
        return dequantize(arrays[name], meta["min"], meta["max"])
    return arrays[name].astype(np.float32)
