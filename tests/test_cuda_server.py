"""The whole server on a CUDA device (skipped without one): health names the GPU, a seeded
job trains to its outcome over REST, the stream delivers frames, the export works."""

from __future__ import annotations

import json
import time

import pytest
import torch
from websockets.sync.client import connect

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

XOR = {
    "dataset": {"name": "xor", "params": {"noise": 0.0}},
    "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                         {"type": "dense", "units": 4, "activation": "tanh"}]},
    "training": {"epochs": 100, "seed": 0},
}


def test_a_job_trains_on_the_gpu_end_to_end(tmp_path):
    server = start_server(tmp_path / "data", device="cuda", timeout=120)
    try:
        with server.client() as http:
            assert http.get("/api/health").json()["device"].startswith("cuda")
            job = http.post("/api/jobs", json=XOR).json()
            with connect(f"{server.ws_url}/api/jobs/{job['id']}/stream") as ws:
                hello = json.loads(ws.recv(timeout=30))
                assert hello["type"] == "hello"
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    message = ws.recv(timeout=30)
                    if isinstance(message, bytes):
                        break
                else:
                    raise AssertionError("no snapshot frame from the GPU job")
            deadline = time.monotonic() + 120
            while http.get(f"/api/jobs/{job['id']}").json()["status"] != "completed":
                assert time.monotonic() < deadline, "the GPU job did not complete"
                time.sleep(0.5)
            final = http.get(f"/api/jobs/{job['id']}").json()
            assert final["metrics"]["test_accuracy"] == 1.0
            onnx = http.get(f"/api/jobs/{job['id']}/model", params={"format": "onnx"})
            assert onnx.status_code == 200 and len(onnx.content) > 100
    finally:
        stop_server(server)
