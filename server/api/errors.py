"""Exception handlers: SpecError becomes a 422 in FastAPI's `detail` shape; nothing a client
sends becomes a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from server.spec.errors import SpecError


def spec_error_response(err: SpecError, prefix: tuple[str, ...] = ("body",)) -> JSONResponse:
    detail = [{**e, "loc": [*prefix, *e["loc"]]} for e in err.errors]
    return JSONResponse(status_code=422, content={"detail": detail})


def install(app: FastAPI) -> None:
    @app.exception_handler(SpecError)
    async def _spec_error(request: Request, err: SpecError) -> JSONResponse:
        return spec_error_response(err)
