"""Where errors become HTTP: one table turns each domain error into a status, a body and a
websocket close code; exception handlers render it; nothing a client sends becomes a 500.

`ERRORS` maps an error class (the engine's JobNotFound, Conflict, EngineStopped; the export
and upload errors; the job-access refusals of deps.py) to a `Rendering`: status, websocket
close code, the `detail` it answers and any headers. Routes raise the domain error and the
handlers `install` adds render it (`http_error` for code that needs the HTTPException, e.g.
to catch one; `close_for` for the stream). `engine_answer` awaits an engine future without
holding a thread, and turns "no answer in time" into EngineSlow (503).

Validation errors echo the input they refused; an input JSON cannot carry (NaN, infinity, a
lone surrogate) would make the error response itself fail, so `json_safe` rewrites those
before the 422 is written. `install` also adds json_guard.JsonGuard, which refuses such bodies
before any route.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from server.api.json_guard import JsonGuard
from server.data.ownership import Refused
from server.data.registry import DataSetNotFound
from server.data.upload import UploadError
from server.engine.engine import Conflict, EngineStopped, JobNotFound
from server.engine.exports import ExportCrashed, ExportsBusy
from server.export import ExportError
from server.spec.errors import SpecError

JOB_NOT_FOUND = "Job not found"
NOT_YOURS = "This job belongs to someone else"
TOKEN_NEEDED = "This job needs its token: send the header Authorization: Bearer <token>"
STREAM_TOKEN_NEEDED = "This job needs its token: add ?token=<token> to the URL"
ENGINE_BUSY = "The training engine is busy; try again in a moment."
ENGINE_TIMEOUT_S = 60.0


class NotYours(Exception):
    """A job (or a job's stream) that the caller's token may not touch."""


class TokenNeeded(Exception):
    """A job asked for without any token, on a server that is not open."""


class EngineSlow(Exception):
    """The engine did not answer a command within ENGINE_TIMEOUT_S."""


def _invalid(loc: list, msg: str, **extra: Any) -> list[dict]:
    """FastAPI's 422 `detail` list for one value at `loc`."""
    return [{"loc": loc, "msg": msg, "type": "value_error", **extra}]


def _upload_detail(exc: UploadError) -> list[dict]:
    extra = {k: v for k, v in (("row", exc.row), ("column", exc.column)) if v is not None}
    return _invalid(["body", exc.field], exc.msg, **extra)


@dataclass(frozen=True)
class Rendering:
    """How one error class is answered: HTTP status (or `status_of` the error), websocket
    close code, the `detail` (from the error) and the headers (from the error, or None)."""

    status: int
    close: int
    detail: Callable[[Exception], Any] = str
    headers: Callable[[Exception], dict | None] = lambda exc: None
    status_of: Callable[[Exception], int] | None = None

    def status_for(self, exc: Exception) -> int:
        return self.status if self.status_of is None else self.status_of(exc)


ERRORS: dict[type[Exception], Rendering] = {
    JobNotFound: Rendering(404, 4404, lambda exc: JOB_NOT_FOUND),
    DataSetNotFound: Rendering(404, 4404),  # str(): the message naming the choices
    Refused: Rendering(403, 4403, lambda exc: exc.message, status_of=lambda exc: exc.status),
    TokenNeeded: Rendering(403, 4401, lambda exc: TOKEN_NEEDED),
    NotYours: Rendering(403, 4403, lambda exc: NOT_YOURS),
    Conflict: Rendering(409, 4409),
    ExportError: Rendering(422, 4422, lambda exc: _invalid(list(exc.loc), str(exc))),
    UploadError: Rendering(422, 4422, _upload_detail),
    ExportsBusy: Rendering(503, 1013, str, lambda exc: {"Retry-After": str(exc.retry_after)}),
    ExportCrashed: Rendering(503, 1011),
    EngineStopped: Rendering(503, 1013, lambda exc: ENGINE_BUSY),
    EngineSlow: Rendering(503, 1013, lambda exc: ENGINE_BUSY),
}
# What the stream says where its words differ from the REST answer's.
STREAM_REASONS: dict[type[Exception], str] = {TokenNeeded: STREAM_TOKEN_NEEDED}


def rendering(exc: Exception) -> Rendering | None:
    return next((r for kind, r in ERRORS.items() if isinstance(exc, kind)), None)


def detail_of(exc: Exception) -> Any:
    """The `detail` the table answers for `exc` (a sentence, or a 422 list)."""
    return rendering(exc).detail(exc)


def http_error(exc: Exception) -> HTTPException:
    """`exc` (a class in ERRORS) as the HTTPException the table says."""
    r = rendering(exc)
    return HTTPException(r.status_for(exc), r.detail(exc), headers=r.headers(exc))


def response_for(exc: Exception) -> JSONResponse:
    """`exc` (a class in ERRORS) as the JSON response the table says."""
    r = rendering(exc)
    return JSONResponse(status_code=r.status_for(exc), content={"detail": json_safe(r.detail(exc))},
                        headers=r.headers(exc))


def close_for(exc: Exception) -> tuple[int, str]:
    """(websocket close code, reason) for `exc` (a class in ERRORS)."""
    r = rendering(exc)
    return r.close, STREAM_REASONS.get(type(exc)) or str(r.detail(exc))


async def engine_answer(future: Future, timeout: float | None = None) -> Any:
    """The engine's answer to a command, awaited on the event loop (no thread waits for it);
    its errors are raised as they are (the table renders them), no answer in `timeout`
    seconds (ENGINE_TIMEOUT_S) raises EngineSlow. The command itself is not cancelled."""
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                      ENGINE_TIMEOUT_S if timeout is None else timeout)
    except TimeoutError:
        raise EngineSlow() from None


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

    async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
        return response_for(exc)

    for kind in ERRORS:
        app.add_exception_handler(kind, _domain_error)

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
