"""The binary snapshot frame (docs/STREAM.md): encode on the server, decode for tests and tools.

Layout: 4 bytes N (uint32 little-endian), N bytes of UTF-8 JSON header padded with spaces so
that 4 + N is a multiple of 8, then the arrays' bytes, each starting at a multiple of 8 from
the start of the body. The header lists every array's name, dtype, shape, offset and nbytes.
`quantize` turns float maps into uint8 with one value range per index of the first axis.
`encode_bundle` / `decode_bundle`: several frames in one binary message (the multi-job stream,
`/api/streams`): uint32 n, n uint32 lengths, zeros to a multiple of 8, then the frames, each
starting at a multiple of 8 from the start of the bundle (zeros between them).
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


def encode_bundle(frames: list[bytes]) -> bytes:
    """One binary message holding `frames` (layout in the module docstring)."""
    head = struct.pack(f"<{1 + len(frames)}I", len(frames), *(len(f) for f in frames))
    chunks = [head, b"\0" * _pad(len(head))]
    for frame in frames:
        chunks.append(frame)
        chunks.append(b"\0" * _pad(len(frame)))
    if frames:
        chunks.pop()  # nothing after the last frame
    return b"".join(chunks)


def decode_bundle(data: bytes) -> list[bytes]:
    """The frames of a bundle, in order; ValueError when `data` is not one."""
    if len(data) < 4:
        raise ValueError("bundle shorter than its 4-byte frame count")
    (n,) = struct.unpack_from("<I", data, 0)
    start = 4 + 4 * n
    if start > len(data):
        raise ValueError(f"bundle of {len(data)} bytes cannot hold the lengths of {n} frames")
    lengths = struct.unpack_from(f"<{n}I", data, 4)
    end = start + _pad(start)  # the header's end, padding included
    frames = []
    for i, length in enumerate(lengths):
        start = end + _pad(end)
        end = start + length
        if end > len(data):
            raise ValueError(f"frame {i} of the bundle runs past its end ({len(data)} bytes)")
        frames.append(bytes(data[start:end]))
    if end != len(data):
        raise ValueError(f"bundle of {len(data)} bytes does not end where its last frame "
                         f"does (byte {end})")
    return frames
