"""WS /api/streams: many jobs over one socket (docs/STREAM.md "The multi-job stream").

The class wall shows thirty jobs at once; thirty job streams cost the event loop a message
and an ack per tile and tick. Here the client sends `subscribe` with the whole set of jobs it
wants (`jobs`, at most MAX_STREAM_JOBS) and the job stream's subscription fields, and `ack`
after drawing each bundle; it gets one `reply` (the jobs accepted, those refused and why), a
`hello` per job newly in the set (the job stream's, built for all of them at once), the jobs'
`status` and `error` texts, one `metrics_batch` per metrics interval and one binary bundle of
frames per tick (server.stream.multi, server.stream.wire). `without_snapshots` lists the jobs
of the set that get no frames (metrics, statuses and hello as the others). The connect
limits, authorization, hello, subscription fields, message limits and close handling are the
job stream's (server/api/stream.py); every job is authorized as its own stream would be.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from server.api.deps import bearer_token
from server.api.stream import (
    SUBSCRIBE_FIELDS,
    _authorize,
    _error,
    _hello,
    _read_client,
    _refused_connect,
    _resubscribe,
    _serve,
    _subscription,
)
from server.stream.limits import ECHO_CHARS, BadMessage, ClientLimits, shorten
from server.stream.multi import MAX_STREAM_JOBS, MultiChannel, Port, Prepared

router = APIRouter()
log = logging.getLogger(__name__)

CLIENT_TYPES = ("ack", "subscribe")
SET_FIELDS = ("jobs", "without_snapshots")  # the subscribe's fields that are not the job stream's
ONLY_WATCHES = ("this stream only watches jobs; send {kind} on the job's own stream "
                "(/api/jobs/{{id}}/stream) or to its REST route")
JOBS_SHAPE = (f"subscribe: {{name}} must be a list of at most {MAX_STREAM_JOBS} job ids "
              f"(strings of 1 to {ECHO_CHARS} characters)")


@router.websocket("/streams")
async def streams(websocket: WebSocket, token: str | None = None) -> None:
    state = websocket.app.state
    settings, engine, hub = state.settings, state.engine, state.hub
    await websocket.accept()
    token = token or bearer_token(websocket)  # or the class cookie (classroom)
    if await _refused_connect(websocket, state, token):
        return
    multi = MultiChannel(None, hub.default_subscription(), settings.client_timeout_seconds,
                         max_texts=hub.max_texts(), hub=hub,
                         watch=lambda port: _resubscribe(engine, port),
                         unwatch=lambda port: engine.unsubscribe(port.job_id, port))
    greetings: set[asyncio.Task] = set()
    try:
        pump = asyncio.create_task(multi.pump(websocket.send_text, websocket.send_bytes))
        limits = ClientLimits(settings)

        def act(body: dict, request: object, request_id: object):
            kind = body.get("type")
            if kind == "ack":
                multi.ack()
                return None
            if kind == "subscribe":
                return _subscribe(state, multi, token, body, request_id, greetings)
            if kind in ("control", "set", "edit_weight"):
                raise BadMessage(ONLY_WATCHES.format(kind=kind))
            raise BadMessage(f"unknown message type {shorten(repr(kind), 60)}; expected one "
                             f"of: {', '.join(CLIENT_TYPES)}")

        def fail(message: str, request: object, request_id: object) -> None:
            multi.push_text(_error(multi, message, request, request_id))

        reader = asyncio.create_task(_read_client(websocket, limits, act, fail))
        await _serve(websocket, multi, pump, reader)
    except WebSocketDisconnect:
        pass
    finally:
        for task in list(greetings):
            task.cancel()
        multi.drop_all()  # every port unregistered, the engine unsubscribed for every job


def _wanted(value: object, name: str = "jobs") -> list[str]:
    """The `jobs` (or `without_snapshots`) of a subscribe, duplicates dropped, in order."""
    if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= ECHO_CHARS for v in value):
        raise BadMessage(JOBS_SHAPE.format(name=name))
    wanted = list(dict.fromkeys(value))
    if len(wanted) > MAX_STREAM_JOBS:
        raise BadMessage(f"subscribe: {len(wanted)} jobs asked for; one stream watches at most "
                         f"{MAX_STREAM_JOBS}: open another stream for the rest")
    return wanted


def _without(value: object, wanted: list[str]) -> set[str]:
    """The `without_snapshots` of a subscribe: jobs of the set being subscribed (`wanted`)."""
    without = _wanted(value, "without_snapshots")
    for job_id in without:
        if job_id not in wanted:
            raise BadMessage(f"subscribe: without_snapshots lists {job_id!r}, which is not in "
                             f"jobs; it may list only these: {shorten(str(wanted))}")
    return set(without)


def _authorize_all(store, settings, job_ids: list[str], token: str | None) -> dict:
    """job id -> (row, None) or (None, the job stream's close reason), one thread for all."""
    out = {}
    for job_id in job_ids:
        job, denied = _authorize(store, settings, job_id, token)
        out[job_id] = (job, denied[1] if job is None else None)
    return out


async def _subscribe(state, multi: MultiChannel, token: str | None, body: dict,
                     request_id: object, greetings: set[asyncio.Task]) -> None:
    """Check the whole message first (an error changes nothing), authorize the new jobs off
    the event loop, then change the set: reply, and greet the new jobs all at once."""
    fields = {k: v for k, v in body.items() if k not in ("type", "id", *SET_FIELDS)}
    unknown = set(fields) - set(SUBSCRIBE_FIELDS)
    if unknown:
        raise BadMessage(f"subscribe: unknown fields {shorten(str(sorted(unknown)))}; expected: "
                         f"jobs, {', '.join(SUBSCRIBE_FIELDS)}, without_snapshots")
    wanted = _wanted(body["jobs"]) if "jobs" in body else list(multi.ports)
    without = (_without(body["without_snapshots"], wanted) if "without_snapshots" in body
               else multi.without & set(wanted))
    subscription = _subscription(fields, multi.subscription, state.settings)
    new = [j for j in wanted if j not in multi.ports]
    checked = await asyncio.to_thread(_authorize_all, state.store, state.settings, new, token)

    keep = set(wanted)
    for job_id in [j for j in multi.ports if j not in keep]:
        multi.drop(job_id)
    multi.subscription, multi.without = subscription, without
    multi.resubscribe()
    added: list[tuple[Port, dict]] = []
    refused: dict[str, str] = {}
    for job_id in new:
        job, reason = checked[job_id]
        if job is None:
            refused[job_id] = reason
        elif job_id not in multi.ports:
            added.append((multi.add(job_id), job))
    multi.wake.set()
    accepted = [j for j in wanted if j in multi.ports]
    multi.push_text({"type": "reply", "request": "subscribe", "id": request_id, "ok": True,
                     "jobs": accepted, "refused": refused,
                     "without_snapshots": [j for j in accepted if j in without],
                     "subscription": subscription.as_dict()})
    for port, job in added:
        task = asyncio.create_task(_greet(state, multi, port, job))
        greetings.add(task)
        task.add_done_callback(greetings.discard)


async def _greet(state, multi: MultiChannel, port: Port, job: dict) -> None:
    """Queue the job's hello (the job stream's, encoded off the event loop); a job whose hello
    cannot be built gets an `error` and leaves the set."""
    try:
        hello = await _hello(state, job, port)
        text = await asyncio.to_thread(json.dumps, hello, allow_nan=False, default=str)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("hello of job %s for a multi stream", port.job_id)
        if multi.ports.get(port.job_id) is port:
            multi.drop(port.job_id)
            multi.push_text({**_error(multi, f"could not describe this job: {exc}",
                                      "subscribe", None), "job_id": port.job_id})
        return
    multi.greeted(port, Prepared(text, type="hello", job_id=port.job_id))
