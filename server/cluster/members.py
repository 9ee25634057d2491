"""The server's side of each engine actor: `Member` (its handle, ordered calls, last report)
and `Pump`, the background thread that drains it.

`Member.call(name, args, extra)` sends one command in this member's order (see
server/cluster/actor.py `call`) and returns a `concurrent.futures.Future` with the engine's
answer, its exceptions rebuilt (`rebuild`); a dead actor answers `EngineStopped`.

`Pump` calls `drain` in a loop (a long poll: the actor answers at once when something waits,
else after `DRAIN_WAIT` s), applies the store writes to the server's store in the order they
were made (`apply_write`) and hands every event to `forward` (ClusterEngine: the hub via
`loop.call_soon_threadsafe`, so the event loop never waits for an actor or for SQLite). A drain
that is slow to come is waited for again, never asked anew (what it took from the outbox must
arrive). When the actor dies (RayActorError; or it has not answered for `UNREACHABLE_S`
seconds, a machine switched off before Ray noticed: it is then killed so that no second copy
of a job trains) the pump calls `on_death` once and ends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from server.checkpoint_files import write_atomic
from server.engine.lifecycle import Conflict, JobNotFound
from server.engine.worker import EngineStopped

log = logging.getLogger("playground.cluster")

DRAIN_WAIT = 0.25  # seconds an idle actor holds a drain call
DRAIN_TIMEOUT = 5.0  # a drain that takes longer: the link is slow, wait on (up to UNREACHABLE_S)
UNREACHABLE_S = 15.0  # an actor that has not answered this long is taken as dead (and killed)
MOVED = "the machine training it stopped"


def rebuild(kind: str, detail: Any) -> Exception:
    """The engine's exception from `describe`'s plain data (server/cluster/actor.py)."""
    if kind == "SpecError":
        from server.spec.errors import SpecError

        return SpecError.many(detail)
    known = {"JobNotFound": JobNotFound, "Conflict": Conflict, "EngineStopped": EngineStopped}
    if kind in known:
        return known[kind](detail)
    return RuntimeError(detail)


class Member:
    """One engine actor as the server sees it."""

    def __init__(self, slot, name: str, handle, info: dict) -> None:
        self.slot, self.name, self.handle = slot, name, handle
        self.node_id = info.get("node_id", slot.node_id)
        self.address = info.get("address", slot.address)
        self.device = info.get("device", "cpu")
        self.alive = True
        self.jobs: set[str] = set()
        self.report: dict = {"load": 0.0, "costs": {}, "active": 0, "steps_per_second": 0.0,
                             "families": {}, "pending": 0, "progress": {}}
        self.placed: dict[str, float] = {}  # job id -> estimate, until the actor reports it
        self.in_flight = 0
        self.on_summary: Callable[[dict], None] = lambda summary: None
        self.applied = 0  # outbox items applied to the store so far
        self._waiting: list[tuple[int, Callable[[], None]]] = []  # answers waiting for them
        self._next = 0  # the order number of the next call (server/cluster/actor.py `call`)
        self._lock = threading.Lock()

    def call(self, name: str, args: tuple, extra: dict | None = None) -> Future:
        import ray

        result: Future = Future()
        with self._lock:  # the order of `seq` is the order Ray gets the calls in
            if not self.alive:
                result.set_exception(EngineStopped("The training machine of this job stopped; "
                                                   "try again in a moment."))
                return result
            try:  # a number is used only by a call Ray took, or the actor would wait for it
                ref = self.handle.call.remote(self._next, name, args, extra)
            except Exception as exc:  # noqa: BLE001 - e.g. arguments Ray cannot send
                result.set_exception(exc)
                return result
            self._next += 1
            self.in_flight += 1

        def done(answer_future: Future) -> None:
            with self._lock:
                self.in_flight -= 1
            try:
                answer = answer_future.result()
            except ray.exceptions.RayError as exc:
                log.warning("actor %s: %s failed: %s", self.name, name, exc)
                result.set_exception(EngineStopped(
                    "The training machine of this job stopped; try again in a moment."))
                return
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                result.set_exception(exc)
                return
            self.after(answer[-1], lambda: self._settle(result, answer))

        ref.future().add_done_callback(done)
        return result

    def _settle(self, result: Future, answer: tuple) -> None:
        if answer[0] == "ok":
            value = answer[1]
            if isinstance(value, dict) and {"id", "status", "epoch", "step"} <= set(value):
                self.on_summary(value)  # a read right after the answer sees it, as in-process
            result.set_result(value)
        else:
            result.set_exception(rebuild(answer[1], answer[2]))

    def after(self, mark: int, settle: Callable[[], None]) -> None:
        """Run `settle` (a command's answer) once the store writes the actor queued before it
        answered (`mark`: its outbox count then) are applied here: a client that reads after
        an answer reads what the command wrote (a deleted job is gone, a patch is stored), as
        with the in-process engine."""
        with self._lock:
            if self.applied < mark and self.alive:
                self._waiting.append((mark, settle))
                return
        settle()

    def advance(self, count: int) -> None:
        """`count` more outbox items were applied (pump thread): settle the answers due."""
        with self._lock:
            self.applied += count
            due = [s for m, s in self._waiting if m <= self.applied]
            self._waiting = [(m, s) for m, s in self._waiting if m > self.applied]
        for settle in due:
            settle()

    def release(self) -> None:
        """The actor is gone: settle every answer still waiting (nothing more will come)."""
        with self._lock:
            due, self._waiting = [s for _m, s in self._waiting], []
        for settle in due:
            settle()

    def load(self) -> float:
        """Seconds per step of its active jobs, summed (reported, plus the estimates of the
        jobs placed since): for /metrics."""
        return float(self.report.get("load", 0.0)) + sum(self.placed.values())

    def view(self) -> dict:
        report = self.report
        return {"actor": self.name, "node": self.node_id, "address": self.address,
                "device": self.device, "alive": self.alive, "jobs": len(self.jobs),
                "active": int(report.get("active", 0)),
                "steps_per_second": float(report.get("steps_per_second", 0.0)),
                "load": round(self.load(), 6)}


def apply_write(store, method: str, args: tuple, kwargs: dict) -> None:
    """One store write made in an actor, applied to the server's store (retried a few times:
    SQLite can be busy; a write that still fails is logged, the next ones go on)."""
    for attempt in range(3):
        try:
            if method == "checkpoint":
                job_id, data = args
                if store.get_job(job_id) is not None:  # not for a job deleted meanwhile
                    write_atomic(store.checkpoint_path(job_id), data)
            elif method.startswith("timeline."):  # issue 16's kept pictures
                from server.timeline_store import TimelineStore

                getattr(TimelineStore.of(store), method.partition(".")[2])(*args, **kwargs)
            else:
                getattr(store, method)(*args, **kwargs)
            return
        except (sqlite3.Error, OSError) as exc:
            if attempt == 2:
                log.error("store write %s from an actor failed: %s", method, exc)
            else:
                time.sleep(0.2)


class Pump(threading.Thread):
    """Drains one member (see the module docstring)."""

    def __init__(self, member: Member, store, handle_reply: Callable[[Member, dict], None],
                 on_death: Callable[[Member, str], None], closing: threading.Event) -> None:
        super().__init__(name=f"pump-{member.name}", daemon=True)
        self.member, self.store = member, store
        self.handle_reply, self.on_death, self.closing = handle_reply, on_death, closing

    def run(self) -> None:
        import ray

        member = self.member
        unreachable_since = None
        ref = None
        while not self.closing.is_set() and member.alive:
            try:
                if ref is None:
                    ref = member.handle.drain.remote(DRAIN_WAIT)
                reply = ray.get(ref, timeout=DRAIN_TIMEOUT)
                ref = None
            except ray.exceptions.GetTimeoutError:
                # The same call is waited for again: what it took from the outbox must arrive.
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since < UNREACHABLE_S:
                    log.warning("actor %s is slow to answer; waiting", member.name)
                    continue
                self._dead(f"no answer for {UNREACHABLE_S:.0f} s")
                return
            except ray.exceptions.ActorUnavailableError as exc:
                ref = None
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since < UNREACHABLE_S:
                    time.sleep(0.5)
                    continue
                self._dead(f"unreachable for {UNREACHABLE_S:.0f} s ({exc})")
                return
            except ray.exceptions.RayError as exc:
                self._dead(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                return
            except Exception:  # a bug here must not stop the drain: log it and go on
                log.exception("draining actor %s failed", member.name)
                ref = None
                time.sleep(0.5)
                continue
            unreachable_since = None
            try:
                self.handle_reply(member, reply)
            except Exception:
                log.exception("applying what actor %s sent failed", member.name)

    def _dead(self, reason: str) -> None:
        import ray

        if self.closing.is_set():
            return
        with self.member._lock:
            self.member.alive = False
        try:
            ray.kill(self.member.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - it is gone already
            pass
        self.on_death(self.member, reason)
