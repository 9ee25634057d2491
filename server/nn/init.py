"""Weight initializers by name, applied from one seeded generator in a fixed order.

Policy, the same for every layer type: weight matrices and filters (every parameter of two or
more dimensions) get the chosen initializer; biases get zeros; norm layers get ones and zeros;
learned positional encodings get normal(0, 0.02). Drawing from a `torch.Generator` leaves
torch's global random state alone (the engine thread trains many jobs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

POSITIONAL_STD = 0.02


def init_tensor(t: torch.Tensor, name: str, std: float, generator: torch.Generator) -> None:
    """Fill `t` (a weight of 2 or more dimensions) in place with initializer `name`."""
    match name:
        case "xavier_uniform":
            nn.init.xavier_uniform_(t, generator=generator)
        case "xavier_normal":
            nn.init.xavier_normal_(t, generator=generator)
        case "he_uniform":
            nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=generator)
        case "he_normal":
            nn.init.kaiming_normal_(t, nonlinearity="relu", generator=generator)
        case "lecun_normal":
            fan_in = t.shape[1] * (t[0][0].numel() if t.dim() > 2 else 1)
            nn.init.normal_(t, 0.0, 1.0 / math.sqrt(fan_in), generator=generator)
        case "normal":
            nn.init.normal_(t, 0.0, std, generator=generator)
        case "zeros":
            nn.init.zeros_(t)
        case _:
            raise ValueError(f"unknown initializer {name!r}")


@torch.no_grad()
def init_layer(module: nn.Module, name: str, std: float, generator: torch.Generator) -> None:
    """Initialize every parameter of one built layer (see the module docstring for the policy)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase | nn.LayerNorm):
            m.reset_parameters()
            continue
        for pname, p in m.named_parameters(recurse=False):
            if pname == "positional":
                nn.init.normal_(p, 0.0, POSITIONAL_STD, generator=generator)
            elif p.dim() >= 2:
                init_tensor(p, name, std, generator)
            else:
                nn.init.zeros_(p)
