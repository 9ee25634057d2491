"""Every layer type a model may use, as pydantic models, and the `Layer` union of them.

One file per family (core, conv, recurrent, attention); each layer class holds its fields, its
shape inference, its parameter count and its torch module. The union is built from the
subclasses of `LayerSpec` that carry a `type` tag, so a new layer type is one class in one file.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from server.spec.layers import attention, conv, core, recurrent  # noqa: F401 - registers layers
from server.spec.layers.base import (
    ACTIVATIONS,
    INITIALIZERS,
    Activation,
    Initializer,
    LayerShapeError,
    LayerSpec,
)


def _concrete(cls: type[LayerSpec]) -> list[type[LayerSpec]]:
    found = []
    for sub in cls.__subclasses__():
        if "type" in sub.model_fields:
            found.append(sub)
        found.extend(_concrete(sub))
    return found


_FAMILY_FILES = [core.__name__, conv.__name__, recurrent.__name__, attention.__name__]
_ORDERED = sorted(_concrete(LayerSpec), key=lambda c: _FAMILY_FILES.index(c.__module__))
LAYER_TYPES: dict[str, type[LayerSpec]] = {c.layer_type(): c for c in _ORDERED}
"""Every layer type by its `type` tag, in the order the catalogue shows them."""


def _known_type(value: Any) -> Any:
    # pydantic's own message for a bad tag is terse; this one echoes the value and the choices.
    if isinstance(value, dict):
        choices = ", ".join(LAYER_TYPES)
        if "type" not in value:
            raise PydanticCustomError(
                "layer_type_missing", "a layer needs a 'type'; one of: {choices}",
                {"choices": choices},
            )
        if not isinstance(value["type"], str) or value["type"] not in LAYER_TYPES:
            raise PydanticCustomError(
                "layer_type", "unknown layer type {given}; expected one of: {choices}",
                {"given": repr(value["type"]), "choices": choices},
            )
    return value


Layer = Annotated[
    Union[tuple(LAYER_TYPES.values())],  # noqa: UP007 - built at run time
    Field(discriminator="type"),
    BeforeValidator(_known_type),
]

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYER_TYPES",
    "Activation",
    "Initializer",
    "Layer",
    "LayerShapeError",
    "LayerSpec",
]
