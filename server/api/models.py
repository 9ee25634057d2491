"""POST /api/models/check: shapes, parameter counts and memory of a model on a data set,
or a 422 that names the layer that does not fit. Nothing is allocated."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.datasets import ViewerDep
from server.api.deps import DatasetsDep, SettingsDep
from server.nn.check import ModelReport, check_model
from server.spec.job import ModelCheckRequest

router = APIRouter()


@router.post("/models/check")
def check(body: ModelCheckRequest, settings: SettingsDep, datasets: DatasetsDep,
          viewer: ViewerDep) -> ModelReport:
    data = datasets.describe(body.dataset, viewer)
    return check_model(body.model, data, settings, body.training.batch_size, body.training.loss)
