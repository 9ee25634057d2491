"""GET /api/catalog (everything the UI builds its forms from) and GET /api/health.

Every list comes from the models that validate jobs (the layer union, the Literal fields of
server/spec/job.py) and from the data registry, so nothing is written twice.
"""

from __future__ import annotations

from functools import cache
from typing import Any, get_args

from fastapi import APIRouter

from server import __version__
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
from server.train.optim import LOSS_DESCRIPTIONS, OPTIMIZERS

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


def limits(settings: Settings) -> dict[str, int]:
    keys = ("max_layers", "max_units", "max_parameters", "max_memory_bytes", "max_epochs",
            "max_batch_size", "max_samples", "max_upload_bytes")
    return {k: getattr(settings, k) for k in keys}


@router.get("/catalog")
def catalog(settings: SettingsDep, datasets: DatasetsDep) -> dict[str, Any]:
    """Every layer type with its JSON schema, the activations, initializers, losses,
    optimizers, schedules, regularizations, data sets and the server's limits."""
    return {
        "layers": layer_entries(),
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
        "datasets": datasets.catalog(),
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
