"""GET /api/catalog (everything the UI builds its forms from) and GET /api/health.

Every list comes from the models that validate jobs (the layer union, the Literal fields of
server/spec/job.py) and from the data registry, so nothing is written twice.
"""

from __future__ import annotations

from copy import deepcopy
from functools import cache
from typing import Any, get_args

from fastapi import APIRouter

from server import __version__
from server.api.datasets import ViewerDep
from server.api.deps import DatasetsDep, EngineDep, SettingsDep
from server.config import Settings
from server.export import FORMATS
from server.spec.job import (
    JobSpec,
    ModelSpec,
    OptimizerSpec,
    RegularizationSpec,
    ScheduleSpec,
    TrainingSpec,
)
from server.spec.layers import ACTIVATIONS, INITIALIZERS, LAYER_TYPES
from server.spec.vocabulary import LOSS_DESCRIPTIONS, OPTIMIZERS

router = APIRouter()


@router.get("/health")
def health(engine: EngineDep) -> dict:
    return {"status": "ok", "device": str(engine.device), "version": __version__}


def choices(model: type, field: str) -> list[str]:
    """The Literal choices of `model.field` (the one place they are written)."""
    return [a for a in get_args(model.model_fields[field].annotation) if isinstance(a, str)]


@cache
def layer_entries() -> list[dict[str, Any]]:
    entries = []
    for name, cls in LAYER_TYPES.items():
        doc = (cls.__doc__ or "").strip()
        entries.append({
            "type": name,
            "family": cls.family,
            "description": " ".join(doc.split()),
            "schema": cls.model_json_schema(),
        })
    return entries


def width_fields(layer_type: str) -> list[str]:
    """The fields of a layer type that the server checks against `max_units` (what `widths()`
    names on the type's examples: units, filters, dim, d_model)."""
    cls = LAYER_TYPES[layer_type]
    return sorted({name for spec, _ in cls.examples() for name in spec.widths()})


@cache
def limited_layer_entries(max_units: int) -> list[dict[str, Any]]:
    """`layer_entries()` with `maximum: max_units` on each width field, so that a form built from
    the schema refuses what the model check would (H2: issue 11, item 4)."""
    entries = []
    for entry in layer_entries():
        schema = deepcopy(entry["schema"])
        for name in width_fields(entry["type"]):
            prop = schema["properties"][name]
            prop["maximum"] = min(prop.get("maximum", max_units), max_units)
        entries.append({**entry, "schema": schema})
    return entries


def limits(settings: Settings) -> dict[str, int]:
    keys = ("max_layers", "max_units", "max_parameters", "max_memory_bytes", "max_epochs",
            "max_batch_size", "max_samples", "max_upload_bytes")
    return {k: getattr(settings, k) for k in keys}


@router.get("/catalog")
def catalog(settings: SettingsDep, datasets: DatasetsDep, viewer: ViewerDep) -> dict[str, Any]:
    """Every layer type with its JSON schema, the activations, initializers, losses,
    optimizers, schedules, regularizations, data sets and the server's limits."""
    return {
        "layers": limited_layer_entries(settings.max_units),
        "activations": [{"name": k, "description": v} for k, v in ACTIVATIONS.items()],
        "initializers": [{"name": k, "description": v} for k, v in INITIALIZERS.items()],
        "losses": choices(TrainingSpec, "loss"),
        "loss_descriptions": LOSS_DESCRIPTIONS,
        "optimizers": choices(OptimizerSpec, "name"),
        "optimizer_settings": {name: {"description": what, "settings": list(fields)}
                               for name, (what, fields) in OPTIMIZERS.items()},
        "schedules": choices(ScheduleSpec, "name"),
        "regularizations": choices(RegularizationSpec, "kind"),
        "model_outputs": choices(ModelSpec, "output"),
        "datasets": datasets.catalog(viewer),
        "export_formats": [{"name": k, "description": f.description, "extension": f.extension}
                           for k, f in FORMATS.items()],
        "limits": limits(settings),
        "schemas": schemas(),
    }


@cache
def schemas() -> dict[str, Any]:
    return {
        "job": JobSpec.model_json_schema(),
        "optimizer": OptimizerSpec.model_json_schema(),
        "schedule": ScheduleSpec.model_json_schema(),
        "training": TrainingSpec.model_json_schema(),
    }
