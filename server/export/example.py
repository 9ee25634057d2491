"""An example input batch for a network (zeros of the right shape and dtype), used to trace."""

from __future__ import annotations

import torch

from server.spec.shapes import Shape


def example_input(shape: Shape, batch: int = 2) -> torch.Tensor:
    """(batch, *dims): float32 zeros, or int64 token ids (all 0) for token input."""
    if shape.tokens is not None:
        return torch.zeros((batch, *shape.dims), dtype=torch.int64)
    return torch.zeros((batch, *shape.dims), dtype=torch.float32)
