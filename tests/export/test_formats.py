"""Every export format, loaded back in its own runtime, gives the live model's outputs.

safetensors: read back and loaded into a freshly built network; ONNX: onnxruntime; TorchScript:
torch.jit.load; python: the generated source run in a subprocess where importing this server
(or the safetensors package) fails. Networks of every family: MLP, CNN, LSTM/GRU/RNN,
attention. Tolerance 1e-5.
"""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load as load_safetensors

from server.api.errors import detail_of
from server.export import FORMATS, ExportError, export_job_model, export_model
from server.export.python_source import TRAINING_CODE
from server.nn.build import Network, build_model
from server.spec.job import JobSpec, ModelSpec
from server.spec.layers import LAYER_TYPES
from server.spec.layers.attention import SelfAttention, sinusoidal
from server.spec.layers.conv import Conv
from server.spec.layers.core import Dense, SequenceBatchNorm
from server.spec.layers.recurrent import PoolSequence, Recurrent
from server.spec.shapes import Shape
from tests.export.models import CASES, POINTS, sample_inputs, trained_like

TOLERANCE = 1e-5
IDS = [case[0] for case in CASES]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request):
    name, model, data = request.param
    network = trained_like(model, data)
    x = sample_inputs(data)
    with torch.no_grad():
        expected = network(x)
    return name, model, data, network, x, expected


def close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual), expected.numpy(), atol=TOLERANCE,
                               rtol=TOLERANCE)


def test_safetensors_round_trip(case):
    name, model, data, network, x, expected = case
    blob, media_type, filename = export_model("safetensors", network, {"name": name})
    assert filename.endswith(".safetensors") and media_type == "application/octet-stream"
    rebuilt = build_model(ModelSpec.model_validate(model), data, seed=99).eval()
    rebuilt.load_state_dict(load_safetensors(blob))
    with torch.no_grad():
        close(rebuilt(x), expected)


def test_onnx_round_trip(case):
    name, model, data, network, x, expected = case
    blob, _, filename = export_model("onnx", network, {"name": name})
    assert filename == f"{name.replace('-', '_')}.onnx"
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["spec"]) == {"name": name}
    assert json.loads(meta["input_shape"]) == [None, *data.input.dims]
    assert meta["output"] == ("logits" if data.task == "classification" else "values")
    assert [i.name for i in session.get_inputs()] == ["input"]
    (out,) = session.run(["output"], {"input": x.numpy()})  # batch 7; traced with batch 2
    close(out, expected)


def test_torchscript_round_trip(case):
    name, model, data, network, x, expected = case
    blob, _, filename = export_model("torchscript", network)
    assert filename == "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        loaded = torch.jit.load(io.BytesIO(blob))
    with torch.no_grad():
        close(loaded(x), expected)


def test_engine_formats_leave_the_live_model_alone(case):
    """FORMATS[fmt].make(model, spec) is what the engine thread calls with the model it is
    training: the export is of an eval-mode copy; the model stays in training mode."""
    name, model, data, network, x, expected = case
    before = {k: v.clone() for k, v in network.state_dict().items()}
    network.train()
    try:
        blob = FORMATS["torchscript"].make(network, {"name": name})
        assert network.training
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(io.BytesIO(blob))
        with torch.no_grad():
            close(loaded(x), expected)  # eval mode: dropout off, running statistics used
    finally:
        network.eval()
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())


RUNNER = textwrap.dedent('''
    """Loads every generated model with torch only: importing server or safetensors fails."""
    import importlib, json, sys
    for blocked in ("server", "safetensors"):
        sys.modules[blocked] = None
    import torch
    results = {}
    for folder in json.loads(sys.argv[1]):
        sys.path.insert(0, folder)
        module = importlib.import_module("model")
        network = module.load(folder + "/model.safetensors")
        with torch.no_grad():
            torch.save(network(torch.load(folder + "/x.pt")), folder + "/y.pt")
        results[folder] = sorted(module.SPEC)
        sys.path.remove(folder)
        del sys.modules["model"]
    # The file also runs as a script: python model.py model.safetensors
    import runpy
    first = json.loads(sys.argv[1])[0]
    sys.argv = ["model.py", first + "/model.safetensors"]
    runpy.run_path(first + "/model.py", run_name="__main__")
    print(json.dumps(results))
''')


def test_python_source_round_trip_in_a_torch_only_process(tmp_path: Path):
    folders, expected = [], {}
    for name, model, data in CASES:
        network = trained_like(model, data)
        x = sample_inputs(data)
        with torch.no_grad():
            expected[name] = network(x)
        folder = tmp_path / name
        folder.mkdir()
        spec = {"name": name, "dataset": {"name": "test"}}
        source, media_type, filename = export_model("python", network, spec)
        assert media_type.startswith("text/x-python") and filename.endswith(".py")
        compile(source, filename, "exec")
        (folder / "model.py").write_bytes(source)
        (folder / "model.safetensors").write_bytes(export_model("safetensors", network)[0])
        torch.save(x, folder / "x.pt")
        folders.append(str(folder))
    (tmp_path / "runner.py").write_text(RUNNER)
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "runner.py"), json.dumps(folders)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "tensor(" in run.stdout  # what the script printed
    assert json.loads(run.stdout.strip().splitlines()[-1])[folders[0]] == ["dataset", "name"]
    for (name, _, _), folder in zip(CASES, folders, strict=True):
        close(torch.load(Path(folder) / "y.pt"), expected[name])


def test_python_source_is_readable():
    name, model, data = CASES[1]
    source = export_model("python", trained_like(model, data), {"name": "my cnn"})[0].decode()
    assert source.startswith('"""my cnn: a network trained')
    assert "# 0: conv2d filters=4 -> [4, 8, 8]" in source
    assert "Conv(nn.Conv2d(1, 4, kernel_size=(3, 3)" in source
    assert "class SelfAttention" not in source  # only the classes the network uses
    for forbidden in ("import server", "from server", "import safetensors", "from safetensors"):
        assert forbidden not in source


def _server_classes(network: torch.nn.Module) -> set[type]:
    return {type(m) for m in network.modules() if type(m).__module__.startswith("server.")}


def test_python_source_copies_the_modules_training_builds():
    """Each custom module class in an exported file is exactly the source of the class that
    training built (no second copy to drift), and every such class the layer types build is
    one the export copies."""
    built: set[type] = set()
    for layer_type in LAYER_TYPES.values():
        for spec, shape in layer_type.examples():
            built |= _server_classes(torch.nn.ModuleList([spec.build(shape)]))
    assert built - {Network} <= set(TRAINING_CODE)
    copied: set[type] = set()
    for name, model, data in CASES:
        network = trained_like(model, data)
        source = export_model("python", network, {"name": name})[0].decode()
        for cls in _server_classes(network) - {Network}:
            assert "\n\n" + inspect.getsource(cls) in source, cls.__name__
            assert source.count(f"class {cls.__name__}(") == 1
            copied.add(cls)
        if SelfAttention in _server_classes(network):
            assert "\n\n" + inspect.getsource(sinusoidal) in source
            assert "\n\n" + inspect.getsource(Shape) in source
    assert copied == {Dense, Conv, SequenceBatchNorm, Recurrent, PoolSequence, SelfAttention}


# export_job_model: what the jobs route calls with a checkpoint's tensors.

JOB = {"dataset": {"name": "circle", "features": ["x1", "x2", "x1*x2"]},
       "model": {"layers": [{"type": "dense", "units": 6, "activation": "tanh"},
                            {"type": "dense", "units": 3, "activation": "relu"}]},
       "training": {"seed": 4}, "name": "Circle, two layers"}


def checkpoint_of(network) -> dict[str, torch.Tensor]:
    """What Trainer.state_tensors() gives: model.* plus optimizer and RNG tensors."""
    tensors = {f"model.{k}": v.clone() for k, v in network.state_dict().items()}
    tensors["optimizer.0.momentum_buffer"] = torch.zeros(3)
    tensors["rng.batches"] = torch.zeros(8, dtype=torch.uint8)
    tensors["best.layers.0.linear.weight"] = torch.zeros(6, 3)
    return tensors


@pytest.mark.parametrize("fmt", ["safetensors", "onnx", "torchscript", "python"])
def test_export_job_model_loads_the_checkpoint_weights(fmt):
    spec = JobSpec.model_validate(JOB)
    network = trained_like(JOB["model"], POINTS, seed=8)
    blob, _, filename = export_job_model(fmt, spec, POINTS, checkpoint_of(network))
    assert filename.startswith("circle_two_layers.")
    if fmt == "onnx":
        x = sample_inputs(POINTS)
        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            close(session.run(None, {"input": x.numpy()})[0], network(x))
    elif fmt == "safetensors":
        state = load_safetensors(blob)
        assert set(state) == set(network.state_dict())
        assert torch.equal(state["layers.0.linear.weight"],
                           network.state_dict()["layers.0.linear.weight"])


def test_export_job_model_takes_a_plain_state_dict_and_a_stem():
    spec = JobSpec.model_validate(JOB)
    network = trained_like(JOB["model"], POINTS)
    _, _, filename = export_job_model("onnx", spec, POINTS, network.state_dict(), stem="job-1")
    assert filename == "job-1.onnx"


def test_weights_of_another_network_are_refused():
    spec = JobSpec.model_validate(JOB)
    other = trained_like({"layers": [{"type": "dense", "units": 2}]}, POINTS)
    with pytest.raises(ExportError, match="do not fit this job's network"):
        export_job_model("onnx", spec, POINTS, checkpoint_of(other))


def test_unknown_format_is_a_clear_error():
    network = trained_like(JOB["model"], POINTS)
    with pytest.raises(ExportError) as info:
        export_model("keras", network)
    assert str(info.value) == ("unknown export format 'keras'; expected one of: safetensors, "
                               "onnx, torchscript, python")
    assert detail_of(info.value)[0]["loc"] == ["query", "format"]


class Bessel(torch.nn.Module):
    """A layer with an operation that ONNX has no operator for."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.special.bessel_j0(self.inner(x))


def test_a_layer_onnx_cannot_hold_is_named():
    network = trained_like(JOB["model"], POINTS)
    network.layers[1] = Bessel(network.layers[1])
    with pytest.raises(ExportError, match=r"^Layer 1 \(dense\) cannot be exported to ONNX"):
        export_model("onnx", network)


def test_a_module_python_export_does_not_know_is_named():
    network = trained_like(JOB["model"], POINTS)
    network.layers[1] = Bessel(network.layers[1])
    with pytest.raises(ExportError, match=r"^Layer 1 \(dense\) cannot be exported as python"):
        export_model("python", network)


def test_user_text_cannot_break_out_of_the_python_docstring():
    name, model, data = CASES[0]
    evil = 'x"""\nraise SystemExit("escaped")\n"""\\'
    source = export_model("python", trained_like(model, data), {"name": evil})[0].decode()
    namespace: dict = {"__name__": "model"}
    exec(compile(source, "model.py", "exec"), namespace)  # no SystemExit: the name stayed text
    assert namespace["SPEC"]["name"] == evil  # kept exactly in the SPEC literal


def test_one_table_names_every_format():
    from server.export import formats

    assert not hasattr(formats, "WRITERS")  # no twin table beside FORMATS
    assert [(k, f.name) for k, f in FORMATS.items()] == [(k, k) for k in FORMATS]
    assert list(FORMATS) == ["safetensors", "onnx", "torchscript", "python"]
