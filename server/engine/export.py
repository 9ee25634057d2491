"""Model download formats: name -> (media type, file extension, function model -> bytes).

Only `safetensors` (the weights, with the job spec in the header) lives here now; another issue
adds `onnx`, `torchscript` and `python` by adding entries to `FORMATS`. The functions run in the
engine thread, which owns the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
from safetensors.torch import save


@dataclass(frozen=True)
class ExportFormat:
    media_type: str
    extension: str
    make: Callable[[torch.nn.Module, dict], bytes]  # (model, job spec as JSON) -> file bytes


def safetensors_bytes(model: torch.nn.Module, spec: dict) -> bytes:
    """The model's state dict (weights and buffers) as safetensors; the spec in the header."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return save(tensors, metadata={"spec": json.dumps(spec)})


FORMATS: dict[str, ExportFormat] = {
    "safetensors": ExportFormat("application/octet-stream", "safetensors", safetensors_bytes),
}
