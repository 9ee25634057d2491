"""Exception handlers: SpecError becomes a 422 in FastAPI's `detail` shape; nothing a client
sends becomes a 500.

Validation errors echo the input they refused; an input JSON cannot carry (NaN, infinity, a
lone surrogate) would make the error response itself fail, so `json_safe` rewrites those
before the 422 is written. `install` also adds json_guard.JsonGuard, which refuses such bodies
before any route.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from server.api.json_guard import JsonGuard
from server.spec.errors import SpecError


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as their names ("NaN", "Infinity") and strings that
    UTF-8 cannot hold (lone surrogates) escaped, so that it can always be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def validation_response(errors: list, prefix: tuple = ()) -> JSONResponse:
    detail = [{**e, "loc": [*prefix, *e.get("loc", ())]} for e in jsonable_encoder(errors)]
    return JSONResponse(status_code=422, content={"detail": json_safe(detail)})


def spec_error_response(err: SpecError, prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    detail = [{**e, "loc": [*prefix, *e["loc"]]} for e in err.errors]
    return JSONResponse(status_code=422, content={"detail": json_safe(detail)})


def install(app: FastAPI) -> None:
    app.add_middleware(JsonGuard)

    @app.exception_handler(SpecError)
    async def _spec_error(request: Request, err: SpecError) -> JSONResponse:
        return spec_error_response(err)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return validation_response(list(err.errors()))

    @app.exception_handler(ValidationError)
    async def _model_invalid(request: Request, err: ValidationError) -> JSONResponse:
        # A model validated inside a route (a stored spec with a patch applied, ...).
        errors = err.errors(include_url=False)
        return validation_response([{**e, "input": None} for e in errors], ("body",))
