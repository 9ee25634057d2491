"""POST /api/import/tfplayground: a TensorFlow Playground link in, the job spec that reproduces
its setup out, with every field that could not be carried over and why.

The mapping itself is `server.spec.tfplayground` (pure); this route checks that the spec it
gives is a valid JobSpec whose data set this server knows, and creates nothing: the caller
reviews the spec and POSTs it to /api/jobs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.spec.errors import SpecError
from server.spec.job import JobSpec
from server.spec.tfplayground import TFPlaygroundError, import_tfplayground

router = APIRouter()


class TFPlaygroundLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        ..., max_length=10_000,
        description="A TF Playground link (https://playground.tensorflow.org/#activation=...), "
        "or just its hash (activation=tanh&batchSize=10&...).",
        examples=["https://playground.tensorflow.org/#activation=relu&dataset=spiral"
                  "&networkShape=8,8&learningRate=0.03"],
    )


class ImportReport(BaseModel):
    spec: dict[str, Any] = Field(..., description="The job spec; POST it to /api/jobs.")
    unmapped: list[dict[str, Any]] = Field(
        ..., description="Fields of the link that could not be carried over: field, value, reason.")
    ignored: list[dict[str, Any]] = Field(
        ..., description="Fields that only change TF Playground's page: field, value, reason.")
    notes: list[str] = Field(..., description="Where the job differs from TF Playground's run.")


def _error(msg: str, loc: list[str | int]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": [
        {"loc": loc, "msg": msg, "type": "value_error"}]})


@router.post("/import/tfplayground", response_model=ImportReport)
def import_tfplayground_link(body: TFPlaygroundLink, request: Request):
    """The job spec that reproduces a TensorFlow Playground link's setup."""
    try:
        result = import_tfplayground(body.url)
    except TFPlaygroundError as err:
        return _error(str(err), ["body", "url"])
    try:
        spec = JobSpec.model_validate(result.spec)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _error(f"The link gives a setting this server does not accept ({where}: "
                      f"{first['msg']}); change it in the link and import again.", ["body", "url"])
    datasets = getattr(request.app.state, "datasets", None)
    if datasets is not None and hasattr(datasets, "describe"):
        try:
            datasets.describe(spec.dataset)
        except SpecError as err:
            return _error(f"The link's data set does not fit this server: {err}", ["body", "url"])
    return result.as_dict()
