"""The client's exceptions: what the server refused, and a server that could not be reached.

`ApiError` carries the HTTP status, the server's sentence and, for a 422, FastAPI's `detail`
list with the location of every bad field (`error.locations`: ["body", "training", ...]).
Subclasses name the statuses a script most often branches on.
"""

from __future__ import annotations

from typing import Any


class PlaygroundError(Exception):
    """Anything the client raises."""


class Unreachable(PlaygroundError):
    """The server did not answer (not running, wrong address, network down)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"The playground at {url} cannot be reached: {reason}")
        self.url = url
        self.reason = reason


class ApiError(PlaygroundError):
    """The server answered with an error status.

    `status`: the HTTP status (or the websocket close code, 44xx, for a refused stream);
    `message`: the server's sentence; `detail`: FastAPI's `detail` as sent (a string or a list of
    {"loc", "msg", "type"}); `locations`: the `loc` of each entry of that list.
    """

    def __init__(self, status: int, detail: Any, method: str = "", path: str = "") -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path
        self.message = message_of(status, detail)
        self.locations: list[list[str | int]] = [
            list(d["loc"]) for d in detail if isinstance(d, dict) and isinstance(d.get("loc"), list)
        ] if isinstance(detail, list) else []
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        return f"{self.status}{where}: {self.message}"


class BadRequest(ApiError):
    """422 (or 400): the spec, the patch or the parameters were refused; see `locations`."""


class Forbidden(ApiError):
    """401 or 403: no token, a wrong token, or another's job."""


class NotFound(ApiError):
    """404: no such job or data set."""


class Conflict(ApiError):
    """409: the action is impossible in the job's state (resuming a completed job, ...)."""


class Busy(ApiError):
    """429, 503 or 507: a limit was reached or the server is busy; `retry_after` if it said."""

    retry_after: float | None = None


class JobFailed(PlaygroundError):
    """`Job.wait(raise_on_failure=True)` found the job failed or stopped."""

    def __init__(self, job_id: str, status: str, error: str | None) -> None:
        reason = f": {error}" if error else ""
        super().__init__(f"Job {job_id} {status}{reason}")
        self.job_id = job_id
        self.status = status
        self.error = error


def message_of(status: int, detail: Any) -> str:
    """One readable sentence from FastAPI's detail: a string, or `loc: msg` per bad field."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        parts = []
        for entry in detail:
            if isinstance(entry, dict):
                loc = entry.get("loc")
                parts_of = loc if isinstance(loc, list) else []
                where = ".".join(str(p) for p in parts_of if p != "body")
                msg = str(entry.get("msg", entry))
                parts.append(f"{where}: {msg}" if where else msg)
            else:
                parts.append(str(entry))
        return "; ".join(parts)
    return f"the server answered {status}"


def error_for(status: int, detail: Any, method: str = "", path: str = "",
              retry_after: str | None = None) -> ApiError:
    """The ApiError subclass that fits `status`."""
    kind: type[ApiError] = ApiError
    if status in (400, 413, 422):
        kind = BadRequest
    elif status in (401, 403, 4401, 4403):
        kind = Forbidden
    elif status in (404, 4404):
        kind = NotFound
    elif status == 409:
        kind = Conflict
    elif status in (429, 503, 507, 4429):
        kind = Busy
    error = kind(status, detail, method, path)
    if isinstance(error, Busy) and retry_after:
        try:
            error.retry_after = float(retry_after)
        except ValueError:
            error.retry_after = None
    return error
