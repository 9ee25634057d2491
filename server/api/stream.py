"""WS /api/jobs/{id}/stream: the live stream of one job (docs/STREAM.md).

The handler checks the job and the token (closing with 4404 / 4401 / 4403), registers a hub
channel, asks the engine for frames at the merged rate, sends `hello` (spec, status, the full
metric history, what to draw, the arrays that will stream), then runs two tasks until either
ends: the channel's pump (server to client, paced, one frame per ack) and the reader (client
messages: ack, control, set, subscribe, edit_weight). A bad message gets an `error` frame; the
socket stays, unless the client breaks the limits of `server.stream.limits` (a message too
big: 1009; too many refused messages: 1008). Hello's history is downsampled (`server.api.hello`).
The multi-job stream (server/api/streams.py) reuses the connect check (`_refused_connect`),
`_authorize`, `_hello`, `_subscription`, the reader (`_read_client`) and `_serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from server.api import hello as hello_parts
from server.api.classroom.tokens import is_member
from server.api.deps import authorize_job, bearer_token, resume_refusal
from server.api.errors import ERRORS, close_for
from server.api.inspect import WeightEdit
from server.spec.job import JobPatch
from server.spec.vocabulary import CONTROL_ACTIONS
from server.stream.hub import CLOSE_TIMEOUT, ClientGone, frame_layout
from server.stream.limits import (
    CLOSE_TOO_MANY,
    ECHO_CHARS,
    MAX_IN_FLIGHT,
    REFUSED_PAUSE,
    BadMessage,
    ClientLimits,
    Closing,
    ConnectLimiter,
    message_bytes,
    parse,
    shorten,
)
from server.stream.subscription import Subscription, metric_fields, metrics_rate, points_cap

router = APIRouter()

PROTOCOL = 1
CLIENT_TYPES = ("ack", "control", "set", "subscribe", "edit_weight")
DETAILS = ("full", "boundary", "tile")  # what a snapshot holds (server.engine.snapshot)
SUBSCRIBE_FIELDS = ("snapshots", "hz", "metrics", "detail", "fields", "metrics_hz", "max_points")
WATCHDOG_SECONDS = 1.0  # how often the handler checks for a client that stopped reading
FIRST_FRAME_WAIT = 1.5  # seconds hello waits for a first frame (for the array shapes)
MAX_ERROR_CHARS = 400  # an error frame's message is cut to this


def _authorize(store, settings, job_id: str, token: str | None) -> tuple[dict | None, tuple]:
    """(the job's row, None) when `token` may watch it, else (None, (close code, reason))."""
    try:
        return authorize_job(store, settings, job_id, token), ()
    except tuple(ERRORS) as exc:  # the close code and reason: errors.py's table
        return None, close_for(exc)


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
    if await _refused_connect(websocket, state, token):
        return
    job, denied = await asyncio.to_thread(_authorize, store, settings, job_id, token)
    if job is None:
        await _close(websocket, *denied)
        return

    channel = hub.register(job_id)
    _resubscribe(engine, channel)
    try:
        hello = await _hello(state, job, channel)
        # A long history is still a few hundred kilobytes: encode it off the event loop.
        text = await asyncio.to_thread(json.dumps, hello, allow_nan=False, default=str)
        await websocket.send_text(text)
        del hello, text
        pump = asyncio.create_task(channel.pump(websocket.send_text, websocket.send_bytes))
        limit = _ResumeLimit(store, settings, token)
        reader = asyncio.create_task(_read(websocket, engine, hub, channel, limit,
                                           ClientLimits(settings)))
        await _serve(websocket, channel, pump, reader)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(channel)
        engine.unsubscribe(job_id, channel)


async def _refused_connect(websocket: WebSocket, state, token: str | None) -> bool:
    """True when the client opens new streams too fast: the socket was held, then closed
    with 4429."""
    wait = _connects(state).take(_client_key(websocket, state.settings, token))
    if wait <= 0:
        return False
    # A client reconnecting in a loop: slowed down before any work is done.
    await asyncio.sleep(min(wait, REFUSED_PAUSE))
    await _close(websocket, CLOSE_TOO_MANY, "Too many new streams a second; wait "
                 f"{max(1, math.ceil(wait))} s and reconnect")
    return True


async def _serve(websocket: WebSocket, channel, pump: asyncio.Task,
                 reader: asyncio.Task) -> None:
    """Run the pump and the reader until either ends (a client that reads nothing while its
    frames wait is closed with 4408), then close the socket with the code that ended it."""
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


def _connects(state) -> ConnectLimiter:
    limiter = getattr(state, "stream_connects", None)
    if limiter is None:
        settings = state.settings
        limiter = ConnectLimiter(settings.stream_connects_per_second,
                                 settings.stream_connect_burst)
        state.stream_connects = limiter
    return limiter


def _client_key(websocket: WebSocket, settings, token: str | None) -> str:
    """A class member's or the teacher's token (signed: made-up ones are not keys), else the
    client's address."""
    with contextlib.suppress(Exception):  # an odd token is no key: the address is
        if token and is_member(settings, token):
            return "token:" + token
    return "address:" + (websocket.client.host if websocket.client else "unknown")


def _resubscribe(engine, channel) -> None:
    """Tell the engine what this client wants; it serves the fastest rate any client asked."""
    sub = channel.subscription
    if sub.snapshots:
        engine.subscribe(channel.job_id, {"hz": sub.hz, "job_id": channel.job_id,
                                          "detail": sub.detail}, channel)
    else:
        engine.unsubscribe(channel.job_id, channel)


async def _hello(state, job: dict, channel) -> dict:
    job_id = job["id"]
    settings = state.settings
    history, total, stride = await asyncio.to_thread(
        hello_parts.history, state.store, job_id, settings.hello_max_points, job.get("metrics"))
    if history:
        channel.min_epoch = max(p.get("epoch", 0) for p in history)
        channel.points = [p for p in channel.points if p.get("epoch", 0) > channel.min_epoch]
    described = await asyncio.to_thread(hello_parts.describe, state.datasets, job["spec"])
    # A client that asked for no snapshots does not wait for a first frame's layout.
    wait = FIRST_FRAME_WAIT if channel.subscription.snapshots else 0.0
    frame = await state.hub.wait_frame(job_id, wait)
    job = await asyncio.to_thread(state.store.get_job, job_id) or job
    status = _status_message(job)
    status.pop("type")
    return {
        "type": "hello", "protocol": PROTOCOL, "job_id": job_id,
        "spec": job["spec"], "status": status, "metrics": history,
        "history_total": total, "history_stride": stride,
        **described,
        "arrays": frame_layout(frame) if frame is not None else [],
        "subscription": channel.subscription.as_dict(),
        "limits": {"max_snapshot_hz": settings.max_snapshot_hz,
                   "client_timeout_seconds": settings.client_timeout_seconds,
                   "max_message_bytes": settings.stream_max_message_bytes,
                   "messages_per_second": settings.stream_messages_per_second,
                   "message_burst": settings.stream_message_burst},
    }


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


async def _read(websocket: WebSocket, engine, hub, channel, limit: _ResumeLimit,
                limits: ClientLimits) -> None:
    """Client to server until the socket closes; every bad message is answered. A client that
    breaks `limits` is closed (ClientGone with 1009 or 1008)."""
    def act(body: dict, request: object, request_id: object) -> None:
        _act(body, request, request_id, engine, hub, channel, limit, limits)

    def fail(message: str, request: object, request_id: object) -> None:
        channel.push_text(_error(channel, message, request, request_id))

    await _read_client(websocket, limits, act, fail)


def _request_id(request_id: object) -> object:
    """The message's `id` as it may be echoed: a number or a short string."""
    if request_id is None or isinstance(request_id, int | float) and not isinstance(
            request_id, bool) and abs(request_id) < 2**53:
        return request_id
    if isinstance(request_id, str) and len(request_id) <= ECHO_CHARS:
        return request_id
    raise BadMessage(f"id must be a number or a string of at most {ECHO_CHARS} characters")


async def _read_client(websocket: WebSocket, limits: ClientLimits,
                       act: Callable[[dict, object, object], Awaitable[None] | None],
                       fail: Callable[[str, object, object], None]) -> None:
    """Client to server until the socket closes: each message within `limits` and parsed goes
    to `act(body, request, request_id)` (an awaitable it returns is awaited before the next
    message is read); a BadMessage, from here or from `act`, to `fail(sentence, request,
    request_id)` and counts as a violation. A client that breaks `limits` is closed
    (ClientGone with 1009 or 1008). The job stream and the multi stream read with it."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            request, request_id = None, None
            try:
                text = message.get("text")
                limits.admit(message_bytes(text) if text is not None
                             else len(message.get("bytes") or b""))
                if text is None:
                    raise BadMessage("binary messages are not understood; send JSON text")
                body = parse(text)
                del text, message  # a refused big message is not kept while the next one comes
                request = body.get("type")
                request = shorten(request, 40) if isinstance(request, str) else request
                request_id = _request_id(body.get("id"))
                pending = act(body, request, request_id)
                if pending is not None:
                    await pending
            except BadMessage as exc:
                fail(str(exc), request, request_id)
                limits.violation()
    except Closing as exc:
        raise ClientGone(exc.code, exc.reason) from None


def _act(body: dict, request: object, request_id: object, engine, hub, channel,
         limit: _ResumeLimit, limits: ClientLimits) -> None:
    """One job stream message: acted on, its reply queued now or once the engine answers."""
    if request in ("control", "set", "edit_weight") and limits.in_flight >= MAX_IN_FLIGHT:
        raise BadMessage(f"{MAX_IN_FLIGHT} controls of this view are still waiting for "
                         "the engine; wait for their replies")
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
            limits.in_flight += 1
            task.add_done_callback(limits.answered)


_pending: set[asyncio.Task] = set()  # replies waiting on the engine (kept from the collector)


def _error(channel, message: str, request: object, request_id: object) -> dict:
    return {"type": "error", "job_id": channel.job_id,
            "message": shorten(message, MAX_ERROR_CHARS),
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
                             f"got {shorten(json.dumps(fields))}")
        return _control(engine, limit, channel.job_id, action), {"action": action}
    if kind == "set":
        try:
            patch = JobPatch.model_validate(fields)
        except ValidationError as exc:
            raise BadMessage("set: " + _pydantic_message(exc)) from None
        return engine.patch(channel.job_id, patch.model_dump(exclude_none=True)), {}
    if kind == "edit_weight":  # the glass box (issue 16): as POST /api/jobs/{id}/weights
        try:
            edit = WeightEdit.model_validate(fields)
        except ValidationError as exc:
            raise BadMessage("edit_weight: " + _pydantic_message(exc)) from None
        return engine.edit_weight(channel.job_id, edit.layer, edit.param, edit.index,
                                  edit.value), {}
    if kind == "subscribe":
        channel.subscription = _subscription(fields, channel.subscription, hub.settings)
        _resubscribe(engine, channel)
        channel.wake.set()
        return None, {"subscription": channel.subscription.as_dict()}
    raise BadMessage(f"unknown message type {shorten(repr(kind), 60)}; expected one of: "
                     f"{', '.join(CLIENT_TYPES)}")


def _subscription(fields: dict, current: Subscription, settings) -> Subscription:
    unknown = set(fields) - set(SUBSCRIBE_FIELDS)
    if unknown:
        raise BadMessage(f"subscribe: unknown fields {shorten(str(sorted(unknown)))}; expected: "
                         f"{', '.join(SUBSCRIBE_FIELDS)}")
    new = Subscription(current.snapshots, current.hz, current.metrics, current.detail,
                       current.fields, current.metrics_hz, current.max_points)
    try:  # the wall's lighter metrics (server.stream.hub)
        if "fields" in fields:
            new.fields = metric_fields(fields["fields"])
        if "metrics_hz" in fields:
            new.metrics_hz = metrics_rate(fields["metrics_hz"])
        if "max_points" in fields:
            new.max_points = points_cap(fields["max_points"])
    except ValueError as exc:
        raise BadMessage(f"subscribe: {exc}") from None
    if "detail" in fields:
        if fields["detail"] not in DETAILS:
            raise BadMessage(f"subscribe: detail must be one of: {', '.join(DETAILS)}; "
                             f"got {shorten(repr(fields['detail']))}")
        new.detail = fields["detail"]
    for key in ("snapshots", "metrics"):
        if key in fields:
            if not isinstance(fields[key], bool):
                raise BadMessage(f"subscribe: {key} must be true or false; "
                                 f"got {shorten(repr(fields[key]))}")
            setattr(new, key, fields[key])
    if "hz" in fields:
        hz = fields["hz"]
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not hz > 0:
            raise BadMessage(f"subscribe: hz must be a number above 0; got {shorten(repr(hz))}")
        new.hz = float(min(hz, settings.max_snapshot_hz))
    return new


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"{shorten('.'.join(str(p) for p in e['loc']), 60) or 'body'}: "
                     f"{shorten(e['msg'])}" for e in exc.errors()[:5])
