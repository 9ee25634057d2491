"""Routes for data sets: the list, one entry, a preview for thumbnails, and CSV upload.

The upload reads the request body itself with a byte budget (Content-Length is checked first,
then the bytes are counted as they stream in), so an oversized body gets a 413 without the
server reading or spooling it all; only then is the multipart parsed.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from server.api.deps import DatasetsDep, SettingsDep
from server.api.errors import spec_error_response
from server.data.registry import DataSetNotFound
from server.data.upload import UploadError
from server.spec.errors import SpecError

router = APIRouter()

# Room for the multipart framing and the small text fields around the CSV itself.
MULTIPART_OVERHEAD = 64 * 1024

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "target"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "A CSV with a header row; numeric features."},
                        "target": {"type": "string", "description": "The target column's name."},
                        "task": {"type": "string", "enum": ["classification", "regression"],
                                 "description": "Inferred when left out: integer or text "
                                 "labels mean classification, other numbers regression."},
                        "name": {"type": "string",
                                 "description": "Name of the new set; default: the file name."},
                    },
                }
            }
        },
    }
}


def _upload_error(msg: str, field: str = "file") -> JSONResponse:
    return JSONResponse(status_code=422, content={
        "detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]})


def _too_large(limit: int) -> JSONResponse:
    # Closing the connection: the client may still be sending the rest of the body.
    return JSONResponse(
        status_code=413, headers={"Connection": "close"},
        content={"detail": f"The upload is larger than this server's limit of "
                 f"{limit / 1_048_576:.1f} MB ({limit} bytes); upload a smaller file."},
    )


@router.get("/datasets")
def list_datasets(datasets: DatasetsDep) -> list[dict]:
    """Every data set, built-in and uploaded, with its task, kind, input shape, classes and
    the JSON schema of its params (defaults and ranges)."""
    return datasets.catalog()


@router.get("/datasets/{name}")
def get_dataset(name: str, datasets: DatasetsDep) -> dict:
    try:
        return datasets.entry(name)
    except DataSetNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/datasets/{name}/preview")
def preview_dataset(name: str, request: Request, datasets: DatasetsDep) -> dict:
    """A sample for a thumbnail; the query parameters are the set's params (and `seed`):
    points (x, y, label) for 2-D sets, a few images or sequences, or the first rows."""
    params = dict(request.query_params)
    seed_text = params.pop("seed", "1")
    try:
        seed = int(seed_text)
        if not 0 <= seed < 2**31:
            raise ValueError
    except ValueError:
        return JSONResponse(status_code=422, content={"detail": [{
            "loc": ["query", "seed"], "type": "value_error",
            "msg": f"seed must be a whole number from 0 to 2147483647; got {seed_text!r}."}]})
    try:
        return datasets.preview(name, params, seed=seed)
    except DataSetNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except SpecError as exc:
        return spec_error_response(exc, prefix=())


@router.post("/datasets", status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_dataset(request: Request, datasets: DatasetsDep,
                         settings: SettingsDep) -> JSONResponse:
    """Upload a CSV (multipart: `file`, `target`, optional `task` and `name`). It is stored in
    the data directory and usable by name like a built-in set (kind `tabular`)."""
    limit = settings.max_upload_bytes
    budget = limit + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > budget:
                return _too_large(limit)
        except ValueError:
            return _upload_error("The Content-Length header is not a number.")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return _upload_error("Send the CSV as multipart/form-data with the fields file and "
                             f"target; got content type {content_type or 'none'!r}.")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > budget:
            return _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay():
        yield body

    try:
        form = await MultiPartParser(request.headers, replay(), max_files=2, max_fields=10,
                                     max_part_size=MULTIPART_OVERHEAD).parse()
    except MultiPartException as exc:
        return _upload_error(f"The multipart body could not be read: {exc}")
    try:
        fields = {}
        for key in ("target", "task", "name"):
            value = form.get(key)
            if value is not None and not isinstance(value, str):
                return _upload_error(f"{key} must be a text field, not a file.", key)
            fields[key] = value.strip() if value and value.strip() else None
        if fields["target"] is None:
            return _upload_error("Name the target column in the field `target`.", "target")
        file = form.get("file")
        if file is None:
            return _upload_error("Attach the CSV in the field `file`.")
        if isinstance(file, UploadFile):
            content = await file.read()
            filename = file.filename
        else:
            content, filename = file.encode(), None
        if len(content) > limit:
            return _too_large(limit)
        try:
            entry = await run_in_threadpool(
                datasets.add_upload, content, fields["target"], fields["task"], fields["name"],
                filename,
            )
        except UploadError as exc:
            return JSONResponse(status_code=422, content={"detail": exc.detail()})
        return JSONResponse(status_code=201, content=entry)
    finally:
        await form.close()
