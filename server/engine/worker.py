"""The worker: one thread, a thread-safe command queue and the futures that answer commands.

It knows no jobs. `submit(name, *args)` (any thread) queues a `Command` and returns its
`concurrent.futures.Future`; the thread runs the `body` it was started with, which takes
commands with `take` and answers each with `answer(command, handler)`. `stop()` queues the
end marker; `take` then reports the stop, and every command still unanswered gets
`EngineStopped` from `refuse`, so that no caller waits forever.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("playground.engine")


class EngineStopped(Exception):
    """The engine is not running; commands cannot be answered."""


@dataclass
class Command:
    name: str
    args: tuple
    future: Future

    @property
    def key(self) -> str:
        """What the command is about (its first argument, a job id): the fairness account."""
        return str(self.args[0]) if self.args else ""


class Worker:
    """A thread and its command queue."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.stopping = False

    def start(self, body: Callable[[], None]) -> None:
        self.thread = threading.Thread(target=body, name=self.name, daemon=True)
        self.thread.start()

    def stop(self, timeout: float) -> bool:
        """End the thread (the body sees the stop in `take`); False if it was not started."""
        if self.thread is None:
            return False
        self.stopping = True
        self.commands.put(None)
        self.thread.join(timeout)
        self.thread = None
        return True

    def submit(self, name: str, *args: Any) -> Future:
        """Queue a command; its future fails with EngineStopped when the worker is not
        running."""
        future: Future = Future()
        if self.thread is None or self.stopping:
            future.set_exception(EngineStopped("The training engine is not running."))
            return future
        self.commands.put(Command(name, args, future))
        return future

    def queued(self) -> int:
        return self.commands.qsize()

    def take(self, block: bool) -> tuple[list[Command], bool]:
        """(the commands queued now, whether stop() was called). With `block`, waits up to
        0.1 s for the first one."""
        taken: list[Command] = []
        try:
            item = self.commands.get(timeout=0.1) if block else self.commands.get_nowait()
        except queue.Empty:
            return taken, self.stopping
        while True:
            if item is None or self.stopping:
                if item is not None:
                    item.future.set_exception(EngineStopped("The training engine stopped."))
                return taken, True
            taken.append(item)
            try:
                item = self.commands.get_nowait()
            except queue.Empty:
                return taken, self.stopping

    @staticmethod
    def answer(command: Command, handler: Callable[..., Any],
               quiet: tuple[type[Exception], ...] = ()) -> None:
        """Run `handler(*command.args)` and answer the command's future with its result or
        exception (logged, unless it is one of `quiet`: answers the caller expects)."""
        if not command.future.set_running_or_notify_cancel():
            return
        try:
            command.future.set_result(handler(*command.args))
        except quiet as exc:
            command.future.set_exception(exc)
        except Exception as exc:
            log.exception("engine command %s failed", command.name)
            command.future.set_exception(exc)

    def refuse(self, commands: list[Command]) -> None:
        """Answer `commands` and every command still queued with EngineStopped."""
        while True:
            try:
                item = self.commands.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                commands.append(item)
        for command in commands:
            command.future.set_exception(EngineStopped("The training engine stopped."))
