"""The engine's trainers: building one for a job, freeing it, and naming its failures.

A job's trainer is built (and loaded from its checkpoint) when it first needs one
(`Trainers.load`, which raises `BuildFailed` with the message the job shows) and freed when
it is not needed (`Trainers.free`; the engine frees a finished job nobody watches, and keeps
at most `max_running_jobs` trainers of paused, unwatched jobs: `idle_to_free`). A training
call that raises becomes the job's short message (`failure`): a divergence's own sentence
(only when server.engine.rewind could not pause the job at its last good state instead),
OUT_OF_MEMORY, or "training failed: ..." (the traceback goes to the log). `apply_training_patch`
changes a live trainer's settings after a PATCH. Runs in the worker thread only.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch

from server.train.protocol import Diverged, TrainerLike

if TYPE_CHECKING:
    from server.spec.job import JobSpec

log = logging.getLogger("playground.engine")

OUT_OF_MEMORY = (
    "out of memory: this model does not fit in the device's memory; "
    "try fewer or smaller layers or a smaller batch size"
)


class BuildFailed(Exception):
    """The job's trainer could not be built; the message is what the failed job shows."""


def default_trainer_factory(spec: JobSpec, dataset: Any, device: torch.device) -> TrainerLike:
    from server.train.trainer import Trainer

    return Trainer(spec, dataset, device)


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda:0")
    return torch.device("cpu")


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure(job_id: str, exc: BaseException) -> tuple[str, list | None]:
    """(the short message a failed job shows, the epochs a diverging call did complete)."""
    if isinstance(exc, Diverged):
        return short(exc), exc.records
    if is_out_of_memory(exc):
        # Strings only in log records: a kept record must not keep the trainer alive.
        log.warning("job %s ran out of memory: %s", job_id, str(exc))
        return OUT_OF_MEMORY, None
    log.error("job %s failed:\n%s", job_id, "".join(traceback.format_exception(exc)))
    return "training failed: " + short(exc), None


COLLECT_EVERY_S = 10.0  # at most one full garbage collection this often when trainers go (CPU)


class Trainers:
    """Builds and frees the trainers of jobs on `device`."""

    def __init__(self, device: torch.device, store, datasets,
                 factory: Callable[[JobSpec, Any, torch.device], TrainerLike] | None = None
                 ) -> None:
        self.device = device
        self.store = store
        self.datasets = datasets
        self.factory = factory or default_trainer_factory
        self._collected = float("-inf")  # when free() last ran a full garbage collection

    def load(self, job: Any) -> TrainerLike:
        """Build the job's trainer and load its checkpoint; sets `job.trainer`, its epoch and
        step. Raises BuildFailed."""
        try:
            if job.dataset is None:
                job.dataset = self._load_dataset(job.spec)
            trainer = self.factory(job.spec, job.dataset, self.device)
            checkpoint = self.store.load_checkpoint(job.id)
            if checkpoint is not None:
                tensors, meta = checkpoint
                trainer.load_state(tensors, meta.get("trainer", {}))
        except Exception as exc:
            job.dataset = None
            if is_out_of_memory(exc):
                message = OUT_OF_MEMORY
            else:
                log.error("job %s could not be built:\n%s", job.id,
                          "".join(traceback.format_exception(exc)))
                message = "the job could not be built: " + short(exc)
            raise BuildFailed(message) from None
        job.trainer = trainer
        job.epoch, job.step = int(trainer.epoch), int(trainer.step)
        return trainer

    def _load_dataset(self, spec: JobSpec) -> Any:
        return self.datasets.load(spec.dataset)

    def free(self, job: Any) -> None:
        family = getattr(job.trainer, "family", None)
        if family is not None:  # its family gives every member its own weights back
            family.release()
        had = job.trainer is not None
        job.trainer = None
        job.dataset = None
        job.dirty = False
        if had:
            # A full collection costs ~0.1-0.5 s in a server that imported torch's compiler:
            # on the CPU reference counting frees the trainer and a collection now and then
            # takes any cycles; CUDA memory is handed back at once.
            now = time.monotonic()
            if self.device.type == "cuda" or now - self._collected >= COLLECT_EVERY_S:
                gc.collect()
                self._collected = now
            if self.device.type == "cuda":
                torch.cuda.empty_cache()


def idle_to_free(jobs: Mapping[str, Any], keep: int) -> list:
    """The paused, unwatched jobs whose trainers go (least recently used first), so that at
    most `keep` stay in memory."""
    idle = [j for j in jobs.values()
            if j.trainer is not None and j.status == "paused" and not j.subscribers]
    extra = len(idle) - keep
    return sorted(idle, key=lambda j: j.last_used)[:extra] if extra > 0 else []


def apply_training_patch(trainer: TrainerLike, training: dict) -> None:
    optimizer = training.get("optimizer") or {}
    if optimizer.get("learning_rate") is not None:
        trainer.set_learning_rate(float(optimizer["learning_rate"]))
    if optimizer.get("momentum") is not None:
        trainer.set_momentum(float(optimizer["momentum"]))
    if training.get("batch_size") is not None:
        trainer.set_batch_size(int(training["batch_size"]))
    if training.get("regularization") is not None:
        reg = training["regularization"]
        trainer.set_regularization(reg.get("kind", "none"), float(reg.get("rate", 0.0)))
    if "epochs" in training and training["epochs"] is not None:
        set_trainer_epochs(trainer, int(training["epochs"]))
    if training.get("gradient_clip") is not None:
        trainer.set_gradient_clip(float(training["gradient_clip"]))


def set_trainer_epochs(trainer: TrainerLike, epochs: int | None) -> None:
    trainer.set_epochs(epochs)
