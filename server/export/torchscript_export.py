"""TorchScript export: the network traced with an example batch, saved with torch.jit.save.

Tracing records the operations for one input shape; every layer here has a fixed shape per
sample, and the batch dimension stays free (sizes read from `x.shape` are traced, not frozen).
Load it with `torch.jit.load(path)`, no playground code needed.
"""

from __future__ import annotations

import io
import warnings

import torch

from server.export.errors import ExportError
from server.export.example import example_input
from server.nn.build import Network


def torchscript_bytes(network: Network) -> bytes:
    """The traced module as the bytes of a `.pt` file. `network` is in eval mode on the CPU."""
    x = example_input(network.input_shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(network, (x,), check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer)
    except Exception as err:  # tracing failures come as many exception types
        raise ExportError(f"This network cannot be exported to TorchScript: {err}; "
                          "download it as safetensors or python instead") from err
    return buffer.getvalue()
