"""Routes of the glass box (issue 16): edit one weight of a paused job, look at the forward pass
of one sample, list the test samples the model gets wrong.

- `POST /api/jobs/{id}/weights` `{"layer": i, "param": "weight" | "bias" | ..., "index": [row,
  col] or [i], "value": x}`: 409 unless the job is paused, 422 for a layer, name or index the
  model does not have (with the range allowed). The job's frame is sent again.
- `POST /api/jobs/{id}/inspect` `{"split": "train" | "validation" | "test", "index": i}`, or
  `{"point": [x, y]}` (2-D point sets: a point of the plane), or `{"x": ...}` (the input as the
  model sees it), each with an optional `target`: every layer's values, the output, the loss
  and the input gradient (server.engine.inspect.inspect).
- `GET /api/jobs/{id}/misclassified?limit=n`: the first n misclassified test samples.

The engine computes all three in its worker thread (charged to the job); nothing here touches
a model. Errors as in server/api/errors.py (404, 403, 409, 422, 503).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.api.deps import AuthorizedJobDep, EngineDep
from server.api.errors import engine_answer, spec_error_response
from server.engine.inspect import MAX_MISCLASSIFIED
from server.spec.errors import SpecError

router = APIRouter(tags=["inspect"])

MAX_INDEX = 2**31 - 1


class WeightEdit(BaseModel):
    """Body of POST /api/jobs/{id}/weights."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    layer: int = Field(..., ge=0, le=10_000, description="Layer index (the output layer last).")
    param: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.]+$",
                       description="The parameter's name: weight, bias, weight_ih_l0, ...")
    index: list[Annotated[int, Field(ge=0, le=MAX_INDEX)]] = Field(
        ..., min_length=1, max_length=4,
        description="Its position: [row, column] of a dense weight, [unit] of a bias.")
    value: float = Field(..., ge=-1e6, le=1e6, description="The new value.")


class InspectRequest(BaseModel):
    """Body of POST /api/jobs/{id}/inspect: one of split + index, point, x."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    split: Literal["train", "validation", "test"] | None = None
    index: int | None = Field(None, ge=0, le=MAX_INDEX)
    point: list[float] | None = Field(None, min_length=2, max_length=2,
                                      description="A point of the plane (2-D point sets).")
    x: Any = Field(None, description="The input as the model sees it (nested lists).")
    target: int | float | None = Field(None, description="The target of a point or x: a "
                                                         "class, or a value (regression).")

    @model_validator(mode="after")
    def one_sample(self) -> InspectRequest:
        given = [name for name in ("split", "point", "x") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of: split (with index), point, x; got "
                             + (", ".join(given) or "none"))
        if self.split is None and self.index is not None:
            raise ValueError("index needs split (train, validation or test)")
        return self


@router.post("/jobs/{job_id}/weights")
async def edit_weight(body: WeightEdit, job: AuthorizedJobDep, engine: EngineDep) -> dict:
    """Set one weight or bias of a paused job by hand; the boundary is drawn again."""
    return await engine_answer(
        engine.edit_weight(job["id"], body.layer, body.param, body.index, body.value))


@router.post("/jobs/{job_id}/inspect")
async def inspect_sample(body: InspectRequest, job: AuthorizedJobDep, engine: EngineDep) -> dict:
    """The forward pass of one sample, layer by layer, its loss and input gradient."""
    engine.watched(job["id"])
    return await engine_answer(engine.inspect(job["id"], body.model_dump(exclude_none=True)))


@router.get("/jobs/{job_id}/misclassified")
async def misclassified(job: AuthorizedJobDep, engine: EngineDep,
                        limit: Annotated[int, Query(ge=1, le=MAX_MISCLASSIFIED, description=(
                            "At most this many samples (the first, in test-set order)."))] = 32
                        ) -> Any:
    """The test samples the model gets wrong now: indices, true and predicted classes (and
    the pixels of images, the points of 2-D sets)."""
    engine.watched(job["id"])
    try:
        return await engine_answer(engine.misclassified(job["id"], limit))
    except SpecError as err:
        return spec_error_response(err, prefix=("query",))
