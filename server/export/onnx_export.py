"""ONNX export: the network as an ONNX graph (opset 17) with input `input` and output `output`,
the batch dimension free. Run it with onnxruntime, no torch needed.

It uses torch's TorchScript-based exporter (`dynamo=False`): on these small networks it takes
milliseconds where the dynamo exporter takes seconds, and it handles every layer type here
(recurrent layers, bidirectional ones included, and attention). If a layer cannot be exported,
the error names it: each layer is tried on its own to find the first that fails. The model's
metadata holds the job spec, the task, the input shape, the features and the class names.
"""

from __future__ import annotations

import io
import json
import warnings

import torch
from torch import nn

from server.export.errors import ExportError
from server.export.example import example_input
from server.nn.build import Network

OPSET = 17


def _export(module: nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (x,), buffer, dynamo=False, opset_version=OPSET,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    return buffer.getvalue()


def _failing_layer(network: Network, x: torch.Tensor) -> tuple[int, str, str] | None:
    """(index, type, error) of the first layer that does not export on its own, or None."""
    for i, layer in enumerate(network.layers):
        try:
            _export(layer, x)
        except Exception as err:  # noqa: BLE001 - any failure names the layer
            return i, network.layer_specs[i].type, str(err).splitlines()[0][:300]
        with torch.no_grad():
            x = layer(x)
    return None


def _with_metadata(data: bytes, network: Network, spec: dict) -> bytes:
    """The model with the job spec and what its input and output mean in its metadata
    (onnxruntime: `session.get_modelmeta().custom_metadata_map`)."""
    try:
        import onnx  # an optional dependency (the `export` extra); without it, no metadata
    except ImportError:
        return data
    model = onnx.load_from_string(data)
    model.producer_name = "nn-playground"
    name = spec.get("name") or "A network"
    model.doc_string = f"{name}, trained in the neural network playground"
    shape = network.data
    entries = {
        "spec": json.dumps(spec),
        "task": shape.task,
        "input_shape": json.dumps([None, *shape.input.dims]),
        "input_tokens": json.dumps(shape.input.tokens),
        "features": json.dumps((spec.get("dataset") or {}).get("features")
                               if shape.kind == "points2d" else None),
        "class_names": json.dumps(list(shape.class_names)),
        "output": "logits" if shape.task == "classification" else "values",
    }
    for key, value in entries.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def onnx_bytes(network: Network, spec: dict | None = None) -> bytes:
    """The `.onnx` file's bytes, the job spec in its metadata. `network` is in eval mode on the
    CPU."""
    x = example_input(network.input_shape)
    try:
        return _with_metadata(_export(network, x), network, spec or {})
    except ExportError:
        raise
    except Exception as err:  # noqa: BLE001 - the exporter raises many exception types
        failing = _failing_layer(network, x)
        if failing is None:
            raise ExportError(f"This network cannot be exported to ONNX: "
                              f"{str(err).splitlines()[0][:300]}; download it as safetensors, "
                              "torchscript or python instead") from err
        index, kind, reason = failing
        raise ExportError(
            f"Layer {index} ({kind}) cannot be exported to ONNX ({reason}); download the model "
            "as safetensors, torchscript or python instead") from err
