"""What the sync and the async client share (REST): the address, the headers, the errors.

`base_url` and `token_of` read the arguments or the environment (PLAYGROUND_URL,
PLAYGROUND_TOKEN); `check` turns an httpx response into its JSON or raises the `ApiError` that
fits; `unreachable` wraps httpx's transport errors. `spec_of` reads a job spec from a dict or a
JSON file; `patch_body` turns keyword settings into the body of PATCH /api/jobs/{id}.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from playground.errors import Unreachable, error_for

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL = ("completed", "stopped", "failed")


def ended(info: dict) -> bool:
    """Whether a job (GET /api/jobs/{id}'s answer, or a sweep's variant) has stopped training
    for good: completed, stopped, failed, or paused by a divergence (NaN or exploding loss:
    it waits at its last good state for a change, `info["diverged"]` says what happened)."""
    status = info.get("status")
    return status in TERMINAL or (status == "paused" and info.get("stop_reason") == "diverged")
USER_AGENT = "playground-client/1"


def wait_until(refresh: Callable[[], dict], over: Callable[[dict], bool],
               timeout: float | None, poll: float, what: str) -> dict:
    """`refresh()` every `poll` seconds until `over` its answer; that answer. TimeoutError
    after `timeout` seconds, naming `what` (a job, a sweep) and its status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not over(info := refresh()):
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{what} is still {info['status']} after {timeout} s")
        left = None if deadline is None else deadline - time.monotonic()
        time.sleep(poll if left is None else max(0.0, min(poll, left)))
    return info


async def wait_until_async(refresh: Callable[[], Awaitable[dict]],
                           over: Callable[[dict], bool], timeout: float | None, poll: float,
                           what: str) -> dict:
    """`wait_until` for the asyncio client."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not over(info := await refresh()):
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{what} is still {info['status']} after {timeout} s")
        left = None if deadline is None else deadline - time.monotonic()
        await asyncio.sleep(poll if left is None else max(0.0, min(poll, left)))
    return info


def base_url(url: str | None) -> str:
    url = url or os.environ.get("PLAYGROUND_URL") or DEFAULT_URL
    if not re.match(r"^https?://", url):
        raise ValueError("The playground's address must start with http:// or https://; "
                         f"got {url!r}")
    return url.rstrip("/")


def token_of(token: str | None) -> str | None:
    return token or os.environ.get("PLAYGROUND_TOKEN") or None


def headers(token: str | None) -> dict[str, str]:
    out = {"User-Agent": USER_AGENT}
    if token:
        out["Authorization"] = f"Bearer {token}"
    return out


def check(response: httpx.Response) -> Any:
    """The response's JSON (None for an empty body), or the ApiError for an error status."""
    if response.is_success:
        if not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.content
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text.strip() or None
    request = response.request
    raise error_for(response.status_code, detail, request.method, request.url.path,
                    response.headers.get("retry-after"))


def unreachable(url: str, exc: Exception) -> Unreachable:
    reason = str(exc) or type(exc).__name__
    return Unreachable(url, reason)


def job_path(job_id: str, suffix: str = "") -> str:
    return f"/api/jobs/{quote(str(job_id), safe='')}{suffix}"


def spec_of(spec_or_path: dict | str | os.PathLike) -> dict:
    """A job spec from a dict, or from a JSON file's path (ValueError for a file that is not
    a JSON object; FileNotFoundError for a missing one)."""
    if isinstance(spec_or_path, dict):
        return spec_or_path
    path = Path(spec_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} must hold a JSON object (a job spec); it holds a "
                         f"{type(spec).__name__}")
    return spec


PATCH_TRAINING = ("batch_size", "epochs", "regularization")
PATCH_OPTIMIZER = ("learning_rate", "momentum")


def patch_body(body: dict | None = None, **settings: Any) -> dict:
    """The PATCH body from keyword settings (learning_rate, momentum, batch_size, epochs,
    regularization, name), merged over `body`."""
    out: dict[str, Any] = json.loads(json.dumps(body)) if body else {}
    for key, value in settings.items():
        if key == "name":
            out["name"] = value
        elif key in PATCH_OPTIMIZER:
            out.setdefault("training", {}).setdefault("optimizer", {})[key] = value
        elif key in PATCH_TRAINING:
            out.setdefault("training", {})[key] = value
        else:
            allowed = ", ".join(("name", *PATCH_OPTIMIZER, *PATCH_TRAINING))
            raise TypeError(f"patch() got an unknown setting {key!r}; allowed: {allowed}")
    if not out:
        raise TypeError("patch() needs at least one setting, e.g. patch(learning_rate=0.01)")
    return out


def filename_of(response: httpx.Response, fallback: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition, re.IGNORECASE)
    name = match.group(1) if match else fallback
    return Path(name).name or fallback


def ws_url(url: str, job_id: str, token: str | None) -> str:
    ws = "wss://" + url[len("https://"):] if url.startswith("https://") else \
        "ws://" + url[len("http://"):]
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"{ws}{job_path(job_id, '/stream')}{query}"


def view_url(url: str, job_id: str, token: str | None) -> str:
    fragment = f"#token={quote(token, safe='')}" if token else ""
    return f"{url}/jobs/{quote(str(job_id), safe='')}/view{fragment}"


class JobHandle:
    """What `Job` and `AsyncJob` share: the job's id, its token (the client's when none is
    given) and `info`, the last answer read about it."""

    def __init__(self, pg: Any, job_id: str, token: str | None = None,
                 info: dict | None = None) -> None:
        self.pg = pg
        self.id = str(job_id)
        self.token = token or pg.token
        self.info: dict = dict(info or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, status={self.info.get('status')!r})"
