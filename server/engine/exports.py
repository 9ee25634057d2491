"""Model downloads converted off the engine thread, a bounded number at a time.

The engine thread only copies a job's weights to the CPU (as safetensors bytes); the
conversion (ONNX, TorchScript, python source, safetensors) runs in `ExportPool`'s worker
processes, at most `settings.max_concurrent_exports` at once, with at most
`settings.max_queued_exports` more waiting; past that `reserve` raises `ExportsBusy` (the API
answers 503 with Retry-After). Processes, not threads: a converting thread holds the GIL for
long stretches and, measured, cut the training thread of the same process to 0.2x.
The workers start on the first download (spawned: a fresh interpreter, one torch thread each,
a lower CPU priority than training) and are kept; one that dies (out of memory) is replaced on
the next download.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.spec.job import JobSpec

BUSY_RETRY_SECONDS = 5


class ExportsBusy(Exception):
    """Every export place is taken: try again in a few seconds (503 with Retry-After)."""

    retry_after = BUSY_RETRY_SECONDS


class ExportCrashed(Exception):
    """The converter process died (most often out of memory)."""


def _init_worker() -> None:
    import os

    import torch

    torch.set_num_threads(1)  # one core per conversion: training keeps the others
    with contextlib.suppress(OSError):
        os.nice(10)  # a download may wait a little; training should not


def _convert(fmt: str, spec: JobSpec, shape, weights: bytes) -> tuple[str, object]:
    """Runs in a worker process: ("ok", bytes) or ("error", (message, loc))."""
    from safetensors.torch import load

    from server.export import ExportError, export_job_model

    try:
        data, _, _ = export_job_model(fmt, spec, shape, load(weights))
    except ExportError as exc:
        return "error", (str(exc), tuple(exc.loc))
    return "ok", data


class ExportPool:
    """Worker processes for `server.export`, with a bounded number of places."""

    def __init__(self, workers: int, queued: int) -> None:
        self.workers, self.queued = workers, queued
        self._lock = threading.Lock()
        self._taken = 0
        self._executor: ProcessPoolExecutor | None = None

    def reserve(self) -> None:
        """Take a place (running or waiting) or raise ExportsBusy."""
        with self._lock:
            if self._taken >= self.workers + self.queued:
                raise ExportsBusy(f"{self._taken} model downloads are being prepared, the most "
                                  f"this server does at once; try again in "
                                  f"{BUSY_RETRY_SECONDS} seconds.")
            self._taken += 1

    def release(self) -> None:
        with self._lock:
            self._taken = max(0, self._taken - 1)

    def taken(self) -> int:
        with self._lock:
            return self._taken

    def convert(self, fmt: str, copy: Callable[[], Future]) -> Future:
        """A job's model as a file in `fmt`: a place is reserved (or ExportsBusy at once, as
        the future's exception), `copy()` asks the training side for (spec, shape, weights)
        and a converter process makes the file; resolves to its bytes."""
        result: Future = Future()
        try:
            self.reserve()
        except Exception as exc:  # ExportsBusy
            result.set_exception(exc)
            return result

        def copied(work: Future) -> None:
            try:
                spec, shape, weights = work.result()
            except Exception as exc:  # JobNotFound, Conflict, EngineStopped
                self.release()
                result.set_exception(exc)
                return
            self.run(fmt, spec, shape, weights, result)

        copy().add_done_callback(copied)
        return result

    def run(self, fmt: str, spec: JobSpec, shape, weights: bytes, result: Future) -> None:
        """Convert in a worker and answer `result` (bytes, ExportError or ExportCrashed);
        releases the place taken by `reserve`."""
        from server.export import ExportError

        def done(work: Future) -> None:
            self.release()
            try:
                kind, value = work.result()
            except BrokenProcessPool:
                self._discard(executor)
                result.set_exception(ExportCrashed(
                    "The converter stopped (most often: out of memory); try again, or try a "
                    "smaller model."))
                return
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                result.set_exception(exc)
                return
            if kind == "ok":
                result.set_result(value)
            else:
                message, loc = value
                result.set_exception(ExportError(message, loc))

        try:
            executor = self._get_executor()
            executor.submit(_convert, fmt, spec, shape, weights).add_done_callback(done)
        except Exception as exc:  # noqa: BLE001 - shutting down, or a broken pool
            self.release()
            result.set_exception(exc)

    def _get_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker)
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
