"""Routes for data sets: the list, one entry, a preview for thumbnails, CSV upload, and an
upload's delete and share.

The upload streams the request body into the multipart parser with a byte budget
(Content-Length is checked first, then the bytes are counted as they arrive), so an oversized
body gets a 413 without the server reading it all; the file part is spooled to a temp file
(unlinked from the start: nothing is left after a crash) and parsed from there as a stream,
at most `settings.max_concurrent_uploads` at a time (others wait up to
`upload_wait_seconds`, then get a 503).

Who sees what (server/data/ownership.py): on an open server everyone sees every upload; in
class mode a student sees their own uploads and those the teacher shared, the teacher all, a
visitor who has not joined none (401 for one by name), another student's upload is 403.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from server import disk
from server.api.classroom.tokens import student_name
from server.api.deps import DatasetsDep, SettingsDep, StoreDep, bearer_token, is_teacher
from server.api.errors import response_for, spec_error_response
from server.data import ownership, upload
from server.data.ownership import Viewer
from server.data.upload import UploadError
from server.spec.errors import SpecError

router = APIRouter()

# Room for the multipart framing and the small text fields around the CSV itself.
MULTIPART_OVERHEAD = 64 * 1024
BUSY = ("The server is reading other uploads right now; try again in a few seconds.")

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
                                 "description": "Name of the new set; default: the file name. "
                                 "In class mode it is the set's title and the set is used by "
                                 "the `name` the answer gives (`upload:<id>`)."},
                    },
                }
            }
        },
    }
}


def caller(request: Request) -> Viewer:
    """The caller as far as uploads are concerned (server/data/ownership.py)."""
    settings = request.app.state.settings
    token = bearer_token(request)
    return ownership.viewer(is_open=settings.is_open, teacher=is_teacher(settings, token),
                            token=token, student_name=student_name(settings, token))


ViewerDep = Annotated[Viewer, Depends(caller)]


def _upload_error(msg: str, field: str = "file") -> JSONResponse:
    return response_for(UploadError(msg, field))


def _too_large(limit: int) -> JSONResponse:
    # Closing the connection: the client may still be sending the rest of the body.
    return JSONResponse(
        status_code=413, headers={"Connection": "close"},
        content={"detail": f"The upload is larger than this server's limit of "
                 f"{limit / 1_048_576:.1f} MB ({limit} bytes); upload a smaller file."},
    )


class _TooLarge(Exception):
    """The body passed its byte budget while it streamed in."""


@router.get("/datasets")
def list_datasets(datasets: DatasetsDep, viewer: ViewerDep) -> list[dict]:
    """Every data set the caller may use, built-in and uploaded, with its task, kind, input
    shape, classes and the JSON schema of its params (defaults and ranges); an upload also
    has `owner`, `shared`, `deletable`, `rows` and `stored_bytes`."""
    return datasets.catalog(viewer)


@router.get("/datasets/{name}")
def get_dataset(name: str, datasets: DatasetsDep, viewer: ViewerDep) -> dict:
    datasets.check_access(name, viewer)  # DataSetNotFound (404), Refused: errors.py
    return datasets.entry(name, viewer)


@router.get("/datasets/{name}/preview")
def preview_dataset(name: str, request: Request, datasets: DatasetsDep,
                    viewer: ViewerDep) -> dict:
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
        datasets.check_access(name, viewer)
        return datasets.preview(name, params, seed=seed)
    except SpecError as exc:
        return spec_error_response(exc, prefix=())


@router.delete("/datasets/{name}", status_code=204)
def delete_dataset(name: str, datasets: DatasetsDep, store: StoreDep,
                   viewer: ViewerDep) -> Response:
    """Delete an uploaded set: its owner or the teacher. 409 while a job trains on it (the
    message names the jobs): delete those jobs first."""
    datasets.delete_upload(name, viewer, store.jobs_using_dataset)
    return Response(status_code=204)


@router.post("/datasets/{name}/share")
def share_dataset(name: str, datasets: DatasetsDep, viewer: ViewerDep) -> dict:
    """Share an uploaded set with the class (the teacher only): every student sees and can
    train on it; only its owner and the teacher can delete it."""
    return _share(name, datasets, viewer, True)


@router.delete("/datasets/{name}/share")
def unshare_dataset(name: str, datasets: DatasetsDep, viewer: ViewerDep) -> dict:
    """Stop sharing an uploaded set: students other than its owner no longer see it (jobs
    already made with it keep training)."""
    return _share(name, datasets, viewer, False)


def _share(name: str, datasets, viewer: Viewer, shared: bool) -> dict:
    return datasets.share_upload(name, viewer, shared)


def _slots(request: Request) -> asyncio.Semaphore:
    """The parse slots of this app (made on first use, in the event loop)."""
    state = request.app.state
    slots = getattr(state, "upload_slots", None)
    if slots is None:
        slots = state.upload_slots = asyncio.Semaphore(state.settings.max_concurrent_uploads)
    return slots


@router.post("/datasets", status_code=201, openapi_extra=UPLOAD_BODY)
async def upload_dataset(request: Request, datasets: DatasetsDep, settings: SettingsDep,
                         viewer: ViewerDep) -> JSONResponse:
    """Upload a CSV (multipart: `file`, `target`, optional `task` and `name`). It is stored in
    the data directory and usable by the `name` of the answer like a built-in set (kind
    `tabular`): the name given on an open server, `upload:<id>` in class mode."""
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
    low = disk.low_space(settings)
    if low is not None:
        return JSONResponse(status_code=507, content={"detail": low})

    async def counted():
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > budget:
                raise _TooLarge
            yield chunk

    try:
        form = await MultiPartParser(request.headers, counted(), max_files=2, max_fields=10,
                                     max_part_size=MULTIPART_OVERHEAD).parse()
    except _TooLarge:
        return _too_large(limit)
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
            source = file.file
            size = file.size if file.size is not None else 0
            filename = file.filename
        else:
            source = file.encode()
            size, filename = len(source), None
        if size > limit:
            return _too_large(limit)
        slots = _slots(request)
        try:
            await asyncio.wait_for(slots.acquire(), timeout=settings.upload_wait_seconds)
        except TimeoutError:
            return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                                content={"detail": BUSY})
        try:
            entry = await run_in_threadpool(
                datasets.add_upload, source, fields["target"], fields["task"], fields["name"],
                filename, viewer,
            )
        except (UploadError, ownership.Refused) as exc:
            return response_for(exc)
        except OSError as exc:
            if not disk.is_disk_full(exc):
                raise
            return JSONResponse(status_code=507, content={"detail": disk.DISK_FULL})
        finally:
            slots.release()
            await run_in_threadpool(upload.trim_memory)
        return JSONResponse(status_code=201, content=entry)
    finally:
        await form.close()
