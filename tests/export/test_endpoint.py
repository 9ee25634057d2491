"""GET /api/jobs/{id}/model?format=... on a live server, every format, for trained MLP, CNN,
LSTM/GRU and attention jobs: each download, loaded in its own runtime, gives the outputs of
the downloaded weights rebuilt with build_model, on the job's test data.

INTEGRATION: the ONNX, TorchScript and python cases pass once the jobs route serves
`server.export` (see docs/EXPORT.md, "Wiring"); before that the route offers safetensors only.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load as load_safetensors

from server.config import Settings
from server.data.registry import DataRegistry
from server.nn.build import build_model
from server.spec.job import JobSpec

FORMATS = ("safetensors", "onnx", "torchscript", "python")
JOBS = {
    "mlp": {"dataset": {"name": "circle", "params": {"samples": 200},
                        "features": ["x1", "x2", "x1^2"]},
            "model": {"layers": [{"type": "dense", "units": 8, "activation": "tanh"},
                                 {"type": "batchnorm"}, {"type": "dropout", "p": 0.2},
                                 {"type": "dense", "units": 4}]},
            "training": {"epochs": 3, "batch_size": 20}},
    "cnn": {"dataset": {"name": "digits", "params": {"samples": 200}},
            "model": {"layers": [{"type": "conv2d", "filters": 4}, {"type": "batchnorm"},
                                 {"type": "maxpool2d"}, {"type": "flatten"},
                                 {"type": "dropout"}, {"type": "dense", "units": 8}]},
            "training": {"epochs": 2, "batch_size": 50, "optimizer": {"name": "adam",
                                                                      "learning_rate": 0.01}}},
    "lstm-gru": {"dataset": {"name": "sine", "params": {"samples": 100}},
                 "model": {"layers": [{"type": "lstm", "units": 4, "return_sequences": True},
                                      {"type": "gru", "units": 3, "bidirectional": True}]},
                 "training": {"epochs": 2, "batch_size": 25}},
    "attention": {"dataset": {"name": "recall", "params": {"samples": 100}},
                  "model": {"layers": [{"type": "embedding", "dim": 8},
                                       {"type": "attention", "heads": 2},
                                       {"type": "pool_sequence"}]},
                  "training": {"epochs": 2, "batch_size": 25}},
}
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    """name -> (job, test inputs, reference outputs, downloads by format)."""
    registry = DataRegistry(tmp_path_factory.mktemp("uploads"), Settings())
    out = {}
    with server.client() as c:
        made = {}
        for name, spec in JOBS.items():
            r = c.post("/api/jobs", json=spec)
            assert r.status_code == 201, r.text
            made[name] = r.json()
        for name, job in made.items():
            headers = {"Authorization": f"Bearer {job['token']}"}
            deadline = time.monotonic() + 90
            while c.get(f"/api/jobs/{job['id']}", headers=headers).json()["status"] != \
                    "completed":
                assert time.monotonic() < deadline, f"{name} did not complete"
                time.sleep(0.1)
            downloads = {}
            for fmt in FORMATS:
                r = c.get(f"/api/jobs/{job['id']}/model", params={"format": fmt},
                          headers=headers)
                downloads[fmt] = r
            spec = JobSpec.model_validate(JOBS[name])
            data = registry.load(spec.dataset)
            network = build_model(spec.model, data.shape, seed=123).eval()
            network.load_state_dict(load_safetensors(downloads["safetensors"].content))
            x = torch.as_tensor(data.x_test[:32])
            with torch.no_grad():
                out[name] = (job, x, network(x), downloads)
    return out


def ok(response):
    assert response.status_code == 200, response.text
    return response.content


def close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), expected.numpy(), atol=TOLERANCE,
                               rtol=TOLERANCE)


@pytest.mark.parametrize("name", list(JOBS))
def test_safetensors_download(trained, name):
    job, x, expected, downloads = trained[name]
    assert "attachment" in downloads["safetensors"].headers["content-disposition"]
    assert expected.shape[0] == x.shape[0]


@pytest.mark.parametrize("name", list(JOBS))
def test_onnx_download_runs_in_onnxruntime(trained, name):
    job, x, expected, downloads = trained[name]
    session = ort.InferenceSession(ok(downloads["onnx"]), providers=["CPUExecutionProvider"])
    close(session.run(None, {"input": x.numpy()})[0], expected)


@pytest.mark.parametrize("name", list(JOBS))
def test_torchscript_download_loads_with_torch_jit(trained, name):
    job, x, expected, downloads = trained[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(io.BytesIO(ok(downloads["torchscript"])))
    with torch.no_grad():
        close(module(x), expected)


def test_python_downloads_run_with_torch_only(trained, tmp_path: Path):
    folders = []
    for name, (_job, x, _expected, downloads) in trained.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.py").write_bytes(ok(downloads["python"]))
        (folder / "model.safetensors").write_bytes(ok(downloads["safetensors"]))
        torch.save(x, folder / "x.pt")
        folders.append(str(folder))
    script = (
        "import importlib, json, sys\n"
        "sys.modules['server'] = None\n"
        "import torch\n"
        "for folder in json.loads(sys.argv[1]):\n"
        "    sys.path.insert(0, folder)\n"
        "    module = importlib.import_module('model')\n"
        "    net = module.load(folder + '/model.safetensors')\n"
        "    with torch.no_grad():\n"
        "        torch.save(net(torch.load(folder + '/x.pt')), folder + '/y.pt')\n"
        "    sys.path.remove(folder)\n"
        "    del sys.modules['model']\n"
    )
    run = subprocess.run([sys.executable, "-I", "-c", script, json.dumps(folders)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for name, folder in zip(trained, folders, strict=True):
        close(torch.load(Path(folder) / "y.pt"), trained[name][2])


def test_unknown_format_is_a_422_naming_the_formats(server, trained):
    job = trained["mlp"][0]
    with server.client() as c:
        r = c.get(f"/api/jobs/{job['id']}/model", params={"format": "keras"},
                  headers={"Authorization": f"Bearer {job['token']}"})
    assert r.status_code == 422
    assert "keras" in json.dumps(r.json()) and "onnx" in json.dumps(r.json())
