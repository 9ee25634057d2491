"""The binary frame: encode and decode round trips, alignment, quantization, the JS decoder."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from server.stream import wire

ROOT = Path(__file__).resolve().parents[2]


def sample_frame() -> tuple[bytes, dict]:
    rng = np.random.default_rng(0)
    heat = rng.normal(size=(3, 5, 5)).astype(np.float32)  # (units, T, T)
    b = wire.FrameBuilder(type="snapshot", seq=7, job_id="j1")
    b.add_quantized("layer0.heatmap", heat)
    b.add("layer0.weight", np.arange(6, dtype=np.float32).reshape(3, 2))
    b.add("layer0.bias", np.array([1.5, -2.0, 0.25], dtype=np.float32))
    b.add("layer0.weight_hist", np.array([1, 2, 3], dtype=np.int64), "int32", range=[-1.0, 1.0])
    return b.encode(), {"heat": heat}


def test_round_trip_keeps_header_names_dtypes_shapes_and_values():
    frame, src = sample_frame()
    header, arrays = wire.decode(frame)
    assert header["type"] == "snapshot" and header["seq"] == 7 and header["job_id"] == "j1"
    assert [a["name"] for a in header["arrays"]] == [
        "layer0.heatmap", "layer0.weight", "layer0.bias", "layer0.weight_hist"]
    assert arrays["layer0.heatmap"].dtype == np.uint8
    assert arrays["layer0.heatmap"].shape == (3, 5, 5)
    np.testing.assert_array_equal(arrays["layer0.weight"], np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(arrays["layer0.bias"], [1.5, -2.0, 0.25])
    assert arrays["layer0.weight_hist"].dtype == np.int32
    assert header["arrays"][3]["range"] == [-1.0, 1.0]
    heat = wire.values(header, arrays, "layer0.heatmap")
    span = np.ptp(src["heat"].reshape(3, -1), axis=1).max()
    assert np.abs(heat - src["heat"]).max() <= span / 510 + 1e-6


def test_layout_is_aligned_and_little_endian():
    frame, _ = sample_frame()
    (n,) = struct.unpack_from("<I", frame, 0)
    assert (4 + n) % 8 == 0
    header = json.loads(frame[4:4 + n])
    for meta in header["arrays"]:
        assert meta["offset"] % 8 == 0
        start = 4 + n + meta["offset"]
        assert start + meta["nbytes"] <= len(frame)
    meta = next(m for m in header["arrays"] if m["name"] == "layer0.bias")
    (first,) = struct.unpack_from("<f", frame, 4 + n + meta["offset"])
    assert first == 1.5


def test_quantize_per_slice_ranges_and_edge_cases():
    values = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0], [-1.0, np.nan, 1.0]], dtype=np.float32)
    codes, lo, hi = wire.quantize(values)
    assert codes.dtype == np.uint8
    assert lo == [0.0, 5.0, -1.0] and hi == [2.0, 5.0, 1.0]
    assert codes[0].tolist() == [0, 128, 255]
    assert codes[1].tolist() == [0, 0, 0]  # a constant slice
    assert codes[2, 0] == 0 and codes[2, 2] == 255
    back = wire.dequantize(codes, lo, hi)
    assert back[1].tolist() == [5.0, 5.0, 5.0]


def test_empty_frame_and_bad_frames():
    frame = wire.FrameBuilder(type="snapshot").encode()
    header, arrays = wire.decode(frame)
    assert header["arrays"] == [] and arrays == {}
    with pytest.raises(ValueError, match="shorter"):
        wire.decode(b"\x01")
    with pytest.raises(ValueError, match="runs past"):
        wire.decode(struct.pack("<I", 1000) + b"{}")
    with pytest.raises(ValueError, match="unknown dtype"):
        wire.FrameBuilder().add("x", np.zeros(2), "float64")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_reference_js_decoder_reads_the_python_frame(tmp_path):
    frame, src = sample_frame()
    path = tmp_path / "frame.bin"
    path.write_bytes(frame)
    script = f"""
import {{ readFileSync }} from "node:fs";
import {{ decodeFrame, dequantize }} from "{(ROOT / 'web/static/js/wire.js').as_uri()}";
const buf = readFileSync({json.dumps(str(path))});
const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const {{ header, arrays }} = decodeFrame(ab);
console.log(JSON.stringify({{
  seq: header.seq,
  weight: Array.from(arrays["layer0.weight"].data),
  shape: arrays["layer0.heatmap"].shape,
  heat: Array.from(dequantize(arrays["layer0.heatmap"])),
  hist: Array.from(arrays["layer0.weight_hist"].data),
  kinds: Object.values(arrays).map(a => a.data.constructor.name),
}}));
"""
    out = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    got = json.loads(out)
    assert got["seq"] == 7
    assert got["weight"] == [0, 1, 2, 3, 4, 5]
    assert got["shape"] == [3, 5, 5]
    assert got["hist"] == [1, 2, 3]
    assert got["kinds"] == ["Uint8Array", "Float32Array", "Float32Array", "Int32Array"]
    header, arrays = wire.decode(frame)
    np.testing.assert_allclose(got["heat"], wire.values(header, arrays, "layer0.heatmap").ravel(),
                               atol=1e-5)


# -- the bundle of the multi-job stream (several frames in one binary message) ---------------


def bundle_offsets(data: bytes) -> list[int]:
    """Where each frame of a bundle starts, read by hand from the layout (docs/STREAM.md)."""
    (n,) = struct.unpack_from("<I", data, 0)
    lengths = struct.unpack_from(f"<{n}I", data, 4)
    offsets, at = [], 4 + 4 * n
    for length in lengths:
        at += (-at) % 8
        offsets.append(at)
        at += length
    return offsets


def test_a_bundle_round_trips_with_every_frame_at_a_multiple_of_8():
    frame, _ = sample_frame()
    frames = [frame, b"x", b"", b"abcdefgh", b"0123456789a", frame[:13]]
    data = wire.encode_bundle(frames)
    assert wire.decode_bundle(data) == frames
    (n,) = struct.unpack_from("<I", data, 0)
    assert n == 6 and list(struct.unpack_from("<6I", data, 4)) == [len(f) for f in frames]
    offsets = bundle_offsets(data)
    assert offsets[0] == 32  # 4 + 6 * 4 = 28 bytes of count and lengths, padded to 32
    for offset, f in zip(offsets, frames, strict=True):
        assert offset % 8 == 0 and data[offset:offset + len(f)] == f
    assert data[28:32] == b"\0" * 4 and data[offsets[1] + 1:offsets[2]] == b"\0" * 7
    assert len(data) == offsets[-1] + 13  # nothing after the last frame
    header, arrays = wire.decode(wire.decode_bundle(data)[0])  # each frame decodes as a frame
    assert header["job_id"] == "j1" and arrays["layer0.weight"].shape == (3, 2)
    assert wire.decode_bundle(wire.encode_bundle([])) == []
    assert wire.encode_bundle([]) == b"\0" * 8
    assert wire.encode_bundle([b"abc"]) == struct.pack("<2I", 1, 3) + b"abc"


def test_a_malformed_bundle_is_refused_with_a_sentence():
    good = wire.encode_bundle([b"abcdefghij", b"xy"])
    with pytest.raises(ValueError, match="shorter than its 4-byte frame count"):
        wire.decode_bundle(b"\1\0")
    with pytest.raises(ValueError, match="cannot hold the lengths of 1000 frames"):
        wire.decode_bundle(struct.pack("<I", 1000) + b"\0" * 20)
    with pytest.raises(ValueError, match="frame 1 of the bundle runs past its end"):
        wire.decode_bundle(good[:-1])
    with pytest.raises(ValueError, match="does not end where its last frame does"):
        wire.decode_bundle(good + b"\0")
    with pytest.raises(ValueError, match="runs past its end"):
        wire.decode_bundle(struct.pack("<2I", 1, 2**32 - 1) + b"ab")
