"""The export formats by name (`FORMATS`, the one table of them), and the two entry points
the API calls.

`export_model(fmt, network, spec)` exports a live `Network` (it works on a copy, so the caller's
model keeps its mode and device); `export_job_model(fmt, spec, data_shape, weights)` first
rebuilds the job's network with `build_model` and loads the model weights of a checkpoint
(`Trainer.state_tensors()` names them `model.<state dict key>`; a plain state dict works too).
Both return `(file bytes, media type, file name)` and raise `ExportError` (a 422) when the
format cannot hold the model.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import save
from torch import Tensor

from server.export.errors import ExportError
from server.export.onnx_export import onnx_bytes
from server.export.python_source import python_source
from server.export.torchscript_export import torchscript_bytes
from server.nn.build import Network, build_model
from server.spec.job import JobSpec
from server.spec.shapes import DataShape

CHECKPOINT_PREFIX = "model."


def _spec_dict(spec: JobSpec | dict | None) -> dict:
    if spec is None:
        return {}
    return spec.model_dump(mode="json") if isinstance(spec, JobSpec) else dict(spec)


def safetensors_bytes(network: Network, spec: dict) -> bytes:
    """The state dict (weights and buffers) as safetensors, the job spec in the header."""
    tensors = {k: v.detach().to("cpu").contiguous().clone()
               for k, v in network.state_dict().items()}
    return save(tensors, metadata={"spec": json.dumps(spec), "format": "nn-playground"})


def _python(network: Network, spec: dict) -> bytes:
    return python_source(network, spec).encode()


@dataclass(frozen=True)
class ExportFormat:
    """One download format: its media type, file extension, writer and the catalogue's
    description. `make(model, spec)` takes the live model (any mode, any device; it is not
    changed) and the job spec as JSON, and returns the file's bytes (raising ExportError, a
    422, when it cannot)."""

    name: str
    media_type: str
    extension: str
    write: Callable[[Network, dict], bytes]  # (a CPU copy in eval mode, spec as JSON) -> bytes
    description: str

    def make(self, model: Network, spec: dict) -> bytes:
        return export_model(self.name, model, spec)[0]


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat(
        "safetensors", "application/octet-stream", "safetensors", safetensors_bytes,
        "The weights and buffers (state dict); the job spec is in the header's metadata."),
    ExportFormat(
        "onnx", "application/octet-stream", "onnx", onnx_bytes,
        "The network as an ONNX graph with its weights (opset 17), input `input`, output "
        "`output`, any batch size."),
    ExportFormat(
        "torchscript", "application/octet-stream", "pt", lambda n, s: torchscript_bytes(n),
        "A traced TorchScript module: torch.jit.load(path)."),
    ExportFormat(
        "python", "text/x-python; charset=utf-8", "py", _python,
        "PyTorch source that rebuilds the network and loads the safetensors weights; needs "
        "torch only."),
)}

def _file_stem(spec: dict, stem: str | None) -> str:
    if stem:
        return stem
    name = re.sub(r"[^A-Za-z0-9]+", "_", spec.get("name") or "").strip("_").lower()
    return name[:60] or "model"


def _known(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of: {', '.join(FORMATS)}")


def export_model(fmt: str, network: Network, spec: JobSpec | dict | None = None,
                 data_shape: DataShape | None = None, stem: str | None = None
                 ) -> tuple[bytes, str, str]:
    """`network` in format `fmt` as `(bytes, media type, file name)`.

    `spec` (the job spec) goes into the safetensors header and the python source's docstring;
    `data_shape` defaults to the network's own (`network.data`). The network itself is not
    touched: a CPU copy in eval mode is exported.
    """
    _known(fmt)
    export = FORMATS[fmt]
    model = copy.deepcopy(network).to("cpu").eval()
    if data_shape is not None:
        model.data = data_shape
        model.input_shape = data_shape.input
    spec_json = _spec_dict(spec)
    with torch.no_grad():
        data = export.write(model, spec_json)
    return data, export.media_type, f"{_file_stem(spec_json, stem)}.{export.extension}"


def model_weights(weights: dict[str, Tensor], expected: set[str]) -> dict[str, Tensor]:
    """The model's state dict out of a checkpoint (`model.*` keys) or of a plain state dict."""
    prefixed = {k[len(CHECKPOINT_PREFIX):]: v for k, v in weights.items()
                if k.startswith(CHECKPOINT_PREFIX)}
    if prefixed and expected <= set(prefixed):
        return prefixed
    return dict(weights)


def export_job_model(fmt: str, spec: JobSpec, data_shape: DataShape,
                     weights: dict[str, Any], stem: str | None = None
                     ) -> tuple[bytes, str, str]:
    """Rebuild a job's network from its spec, load its weights and export it.

    `weights`: `Trainer.state_tensors()` (or the safetensors checkpoint read back), or the
    model's plain state dict. Raises ExportError when the format is unknown, the weights do not
    fit the spec's network, or the format cannot hold one of its layers.
    """
    _known(fmt)
    network = build_model(spec.model, data_shape, spec.training.seed)
    expected = set(network.state_dict())
    state = model_weights(weights, expected)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ExportError(
            "The saved weights do not fit this job's network "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: "
            f"{', '.join(unexpected[:5]) or 'none'}); the checkpoint may be from another spec.",
            loc=("path", "job_id"))
    try:
        network.load_state_dict(state)
    except RuntimeError as err:  # same names, other shapes
        raise ExportError(f"The saved weights do not fit this job's network: {err}",
                          loc=("path", "job_id")) from err
    return export_model(fmt, network, spec, data_shape, stem)
