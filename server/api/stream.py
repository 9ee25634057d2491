"""WS /api/jobs/{id}/stream: the live stream of one job (docs/STREAM.md).

The handler checks the job and the token (closing with 4404 / 4401 / 4403), registers a hub
channel, asks the engine for frames at the merged rate, sends `hello` (spec, status, the full
metric history, what to draw, the arrays that will stream), then runs two tasks until either
ends: the channel's pump (server to client, paced, one frame per ack) and the reader (client
messages: ack, control, set, subscribe). A bad message gets an `error` frame; the socket stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from server.api.deps import (
    JOB_NOT_FOUND,
    authorize_job,
    bearer_token,
    resume_refusal,
)
from server.engine import snapshot
from server.spec.job import JobPatch, JobSpec
from server.stream.hub import CLOSE_TIMEOUT, ClientGone, Subscription, frame_layout

router = APIRouter()

PROTOCOL = 1
CONTROL_ACTIONS = ("pause", "resume", "step", "stop", "reset")
CLIENT_TYPES = ("ack", "control", "set", "subscribe")
WATCHDOG_SECONDS = 1.0  # how often the handler checks for a client that stopped reading
FIRST_FRAME_WAIT = 1.5  # seconds hello waits for a first frame (for the array shapes)


class BadMessage(Exception):
    """A client message the server cannot act on; the text goes back in an `error` frame."""


def _authorize(store, settings, job_id: str, token: str | None) -> tuple[dict | None, tuple]:
    """(the job's row, None) when `token` may watch it, else (None, (close code, reason))."""
    try:
        return authorize_job(store, settings, job_id, token), ()
    except HTTPException as exc:
        if exc.status_code == 404:
            return None, (4404, JOB_NOT_FOUND)
        if token is None:
            return None, (4401, "This job needs its token: add ?token=<token> to the URL")
        return None, (4403, str(exc.detail))


def _status_message(job: dict) -> dict:
    return {"type": "status", "job_id": job["id"], "status": job["status"],
            "epoch": job.get("epoch", 0), "step": job.get("step", 0),
            "error": job.get("error"), "stop_reason": job.get("stop_reason")}


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=reason), timeout=2.0)


@router.websocket("/jobs/{job_id}/stream")
async def stream(websocket: WebSocket, job_id: str, token: str | None = None) -> None:
    state = websocket.app.state
    settings, store, engine, hub = state.settings, state.store, state.engine, state.hub
    await websocket.accept()
    token = token or bearer_token(websocket)  # or the class cookie (classroom)
    job, denied = await asyncio.to_thread(_authorize, store, settings, job_id, token)
    if job is None:
        await _close(websocket, *denied)
        return

    channel = hub.register(job_id)
    _resubscribe(engine, channel)
    try:
        hello = await _hello(state, job, channel)
        await websocket.send_text(json.dumps(hello, allow_nan=False, default=str))
        pump = asyncio.create_task(channel.pump(websocket.send_text, websocket.send_bytes))
        limit = _ResumeLimit(store, settings, token)
        reader = asyncio.create_task(_read(websocket, engine, hub, channel, limit))
        done: set = set()
        while not done:
            # The pump may be stuck in a send to a client that reads nothing: watch it from here.
            done, pending = await asyncio.wait({pump, reader}, timeout=WATCHDOG_SECONDS,
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done and channel.overdue():
                channel.close(CLOSE_TIMEOUT, channel.timeout_reason())
                pump.cancel()
                await asyncio.wait({pump}, timeout=2.0)
                pump_gone = asyncio.get_running_loop().create_future()
                pump_gone.set_exception(ClientGone(CLOSE_TIMEOUT, channel.timeout_reason()))
                done, pending = {pump_gone}, {reader}
        channel.close(1000, "Closed")  # a pump still running stops at its next turn too
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        for task in done:
            exc = task.exception()
            if isinstance(exc, ClientGone):
                await _close(websocket, exc.code, exc.reason)
            elif exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                await _close(websocket, 1011, "Internal error")
                raise exc
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(channel)
        engine.unsubscribe(job_id, channel)


def _resubscribe(engine, channel) -> None:
    """Tell the engine what this client wants; it serves the fastest rate any client asked."""
    sub = channel.subscription
    if sub.snapshots:
        engine.subscribe(channel.job_id, {"hz": sub.hz, "job_id": channel.job_id}, channel)
    else:
        engine.unsubscribe(channel.job_id, channel)


async def _hello(state, job: dict, channel) -> dict:
    job_id = job["id"]
    history = await asyncio.to_thread(state.store.history, job_id)
    if history:
        channel.min_epoch = max(p.get("epoch", 0) for p in history)
        channel.points = [p for p in channel.points if p.get("epoch", 0) > channel.min_epoch]
    spec = JobSpec.model_validate(job["spec"])
    described = await asyncio.to_thread(_describe, state.datasets, spec)
    frame = await state.hub.wait_frame(job_id, FIRST_FRAME_WAIT)
    job = await asyncio.to_thread(state.store.get_job, job_id) or job
    status = _status_message(job)
    status.pop("type")
    settings = state.settings
    return {
        "type": "hello", "protocol": PROTOCOL, "job_id": job_id,
        "spec": job["spec"], "status": status, "metrics": history,
        **described,
        "arrays": frame_layout(frame) if frame is not None else [],
        "subscription": channel.subscription.as_dict(),
        "limits": {"max_snapshot_hz": settings.max_snapshot_hz,
                   "client_timeout_seconds": settings.client_timeout_seconds},
    }


def _describe(datasets, spec: JobSpec) -> dict:
    """kind, task, classes and the data to draw (numpy work, off the event loop)."""
    try:
        dataset = datasets.load(spec.dataset)
    except Exception as exc:  # a job whose data set vanished still streams its history
        return {"kind": None, "task": None, "num_classes": None, "class_names": None,
                "data": {"error": f"the data set could not be loaded: {exc}"}}
    shape = dataset.shape
    return {"kind": shape.kind, "task": shape.task, "num_classes": shape.num_classes,
            "class_names": shape.class_names, "data": snapshot.describe(dataset)}


class _ResumeLimit:
    """The per-caller limit of running jobs that `POST .../control` applies to a resume."""

    def __init__(self, store, settings, token: str | None) -> None:
        self.store, self.settings, self.token = store, settings, token

    def check(self, job_id: str) -> None:
        """Raises HTTPException(429) with the sentence the REST route would give."""
        job = self.store.get_job(job_id)
        refusal = job is not None and resume_refusal(self.store, self.settings, job, self.token)
        if refusal:
            raise HTTPException(429, refusal)


async def _control(engine, limit: _ResumeLimit, job_id: str, action: str) -> None:
    if action == "resume":
        await asyncio.to_thread(limit.check, job_id)
    await asyncio.wrap_future(engine.control(job_id, action))


async def _read(websocket: WebSocket, engine, hub, channel, limit: _ResumeLimit) -> None:
    """Client to server until the socket closes; every bad message is answered, none closes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        request, request_id = None, None
        try:
            text = message.get("text")
            if text is None:
                raise BadMessage("binary messages are not understood; send JSON text")
            try:
                body = json.loads(text)
            except ValueError as exc:
                raise BadMessage(f"not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise BadMessage("a message must be a JSON object with a 'type'")
            request, request_id = body.get("type"), body.get("id")
            outcome = _handle(body, engine, hub, channel, limit)
            if outcome is not None:
                future, reply = outcome
                reply = {"type": "reply", "job_id": channel.job_id, "request": request,
                         "id": request_id, "ok": True, **reply}
                if future is None:
                    channel.push_text(reply)
                else:
                    task = asyncio.create_task(_answer(future, reply, channel))
                    _pending.add(task)
                    task.add_done_callback(_pending.discard)
        except BadMessage as exc:
            channel.push_text(_error(channel, str(exc), request, request_id))


_pending: set[asyncio.Task] = set()  # replies waiting on the engine (kept from the collector)


def _error(channel, message: str, request: object, request_id: object) -> dict:
    return {"type": "error", "job_id": channel.job_id, "message": message,
            "request": request if isinstance(request, str) else None, "id": request_id}


async def _answer(work, reply: dict, channel) -> None:
    """Reply once the engine has done what a control or set asked, or say why it could not."""
    try:
        await (work if asyncio.iscoroutine(work) else asyncio.wrap_future(work))
    except HTTPException as exc:
        channel.push_text(_error(channel, str(exc.detail), reply["request"], reply["id"]))
    except Exception as exc:  # JobNotFound, Conflict, EngineStopped: sentences for the user
        channel.push_text(_error(channel, str(exc), reply["request"], reply["id"]))
    else:
        channel.push_text(reply)


def _handle(body: dict, engine, hub, channel, limit: _ResumeLimit) -> tuple | None:
    """Act on one client message: None for `ack`, else (engine future or None, reply fields)."""
    kind = body.get("type")
    fields = {k: v for k, v in body.items() if k not in ("type", "id")}
    if kind == "ack":
        channel.ack()
        return None
    if kind == "control":
        action = fields.get("action")
        if action not in CONTROL_ACTIONS or set(fields) != {"action"}:
            raise BadMessage(f"control needs an action, one of: {', '.join(CONTROL_ACTIONS)}; "
                             f"got {json.dumps(fields)}")
        return _control(engine, limit, channel.job_id, action), {"action": action}
    if kind == "set":
        try:
            patch = JobPatch.model_validate(fields)
        except ValidationError as exc:
            raise BadMessage("set: " + _pydantic_message(exc)) from None
        return engine.patch(channel.job_id, patch.model_dump(exclude_none=True)), {}
    if kind == "subscribe":
        channel.subscription = _subscription(fields, channel.subscription, hub.settings)
        _resubscribe(engine, channel)
        channel.wake.set()
        return None, {"subscription": channel.subscription.as_dict()}
    raise BadMessage(f"unknown message type {kind!r}; expected one of: {', '.join(CLIENT_TYPES)}")


def _subscription(fields: dict, current: Subscription, settings) -> Subscription:
    unknown = set(fields) - {"snapshots", "hz", "metrics"}
    if unknown:
        raise BadMessage(f"subscribe: unknown fields {sorted(unknown)}; expected: snapshots, hz, "
                         "metrics")
    new = Subscription(current.snapshots, current.hz, current.metrics)
    for key in ("snapshots", "metrics"):
        if key in fields:
            if not isinstance(fields[key], bool):
                raise BadMessage(f"subscribe: {key} must be true or false; got {fields[key]!r}")
            setattr(new, key, fields[key])
    if "hz" in fields:
        hz = fields["hz"]
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not hz > 0:
            raise BadMessage(f"subscribe: hz must be a number above 0; got {hz!r}")
        new.hz = float(min(hz, settings.max_snapshot_hz))
    return new


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                     for e in exc.errors())
