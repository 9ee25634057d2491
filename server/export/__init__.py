"""Take a trained network away: safetensors weights, ONNX, TorchScript, or readable PyTorch
source that rebuilds it. `export_model` exports a live network; `export_job_model` rebuilds a
job's network from its spec and checkpoint weights first (what the jobs route calls)."""

from server.export.formats import (
    FORMATS,
    ExportError,
    ExportFormat,
    export_job_model,
    export_model,
    model_weights,
)

__all__ = ["FORMATS", "ExportError", "ExportFormat", "export_job_model", "export_model",
           "model_weights"]
