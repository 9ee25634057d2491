"""playground.frames decodes what the server's encoder (server.stream.wire) writes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from playground.frames import FrameError, Snapshot, decode
from server.stream import wire


def frame() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 5, 7)).astype(np.float32)
    builder = wire.FrameBuilder(type="snapshot", protocol=1, kind="points2d", epoch=4, step=40)
    builder.add_quantized("layer0.heatmap", maps)
    builder.add("layer0.weight", np.arange(6, dtype=np.float32).reshape(3, 2))
    builder.add("layer0.weight_hist", np.arange(5), "int32", range=[-1.0, 1.0])
    return builder.encode(), maps


def test_decodes_every_dtype_and_dequantizes() -> None:
    data, maps = frame()
    snap = Snapshot.from_bytes(data)
    assert snap.epoch == 4 and snap.step == 40 and snap.kind == "points2d"
    assert snap.names == ["layer0.heatmap", "layer0.weight", "layer0.weight_hist"]
    assert snap.arrays["layer0.heatmap"].dtype == np.uint8
    values = snap["layer0.heatmap"]
    assert values.shape == (3, 5, 7) and values.dtype == np.float32
    header, arrays = wire.decode(data)
    np.testing.assert_array_equal(values, wire.values(header, arrays, "layer0.heatmap"))
    span = maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))
    assert (np.abs(values - maps) <= span[:, None, None] / 510 + 1e-6).all()
    np.testing.assert_array_equal(snap["layer0.weight"], np.arange(6).reshape(3, 2))
    assert snap.arrays["layer0.weight_hist"].dtype == np.int32
    assert snap.meta("layer0.weight_hist")["range"] == [-1.0, 1.0]
    assert "layer0.weight" in snap and "output.boundary" not in snap
    with pytest.raises(KeyError, match="no array 'output.boundary'"):
        snap["output.boundary"]


@pytest.mark.parametrize(("data", "message"), [
    (b"\x01\x00", "shorter than its 4-byte header"),
    (struct.pack("<I", 100) + b"{}", "runs past the frame"),
    (struct.pack("<I", 4) + b"{x}!", "not JSON"),
])
def test_malformed_frames_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode(data)


def test_an_array_past_the_end_is_refused() -> None:
    data, _ = frame()
    with pytest.raises(FrameError, match="runs past the end"):
        decode(data[:-16])
