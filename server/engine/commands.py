"""The engine's commands: what `create`, `control`, `patch`, `delete`, `subscribe`,
`unsubscribe` and `export` do to the job table; and the glass box's `edit_weight` (paused
jobs only), `inspect` and `misclassified` (computed by server.engine.inspect).

`Commands` has one method per command (the worker thread calls `getattr(commands, name)`)
and one per control action (`_pause`, `_resume`, `_step`, `_stop`, `_reset`). Whether an
action is possible in the job's status is asked of `server.engine.lifecycle` first (an
impossible one raises its `Conflict` sentence; one with nothing to do answers at once); the
changes go through `JobTable` (`server.engine.jobs`), where a job's status changes.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from server.engine import inspect as inspector
from server.engine import lifecycle
from server.engine.events import StatusEvent
from server.engine.job import Job, merge
from server.engine.jobs import JobTable
from server.engine.lifecycle import Conflict
from server.engine.trainers import apply_training_patch, set_trainer_epochs
from server.export import FORMATS
from server.spec.job import JobSpec


def forget_family_key(families, trainer) -> None:
    """A clipped job trains alone (family keys exclude gradient clipping): the key the
    families cached for this trainer (server.engine.families, by `id(trainer)`) is dropped, so
    the next regroup computes it again from the patched spec."""
    keys = getattr(families, "_keys", None)
    if isinstance(keys, dict):
        keys.pop(id(trainer), None)


class Commands:
    """The command handlers over a job table (worker thread)."""

    def __init__(self, table: JobTable) -> None:
        self.table = table

    def create(self, job_id: str, spec: JobSpec) -> dict:
        row = self.table.store.get_job(job_id)
        job = Job(id=job_id, spec=spec, status=row["status"] if row else "paused",
                  seq=next(self.table.seq), owner=str(row["owner"]) if row else "")
        self.table.jobs[job_id] = job
        self.table.set_progress(job)
        if spec.start:
            self.table.start(job)
        else:
            self.table.set_status(job, "paused")
        return job.summary()

    def control(self, job_id: str, action: str, unit: str = "batch") -> dict:
        job = self.table.job(job_id)
        if action not in lifecycle.ACTIONS:
            raise lifecycle.unknown_action(action)
        if lifecycle.check(job.status, action):
            handler = getattr(self, "_" + action)
            handler(job, unit) if action == "step" else handler(job)
        return job.summary()

    def _pause(self, job: Job) -> None:
        if job.dirty:
            self.table.checkpoint(job)
        self.table.set_status(job, "paused")

    def _resume(self, job: Job) -> None:
        limit = lifecycle.epochs(job.spec)
        lifecycle.epochs_done(job.epoch, limit)
        if job.status == "completed":
            trainer = self.table.ensure_trainer(job)
            if trainer is None:
                raise Conflict(lifecycle.NOT_LOADED)
            set_trainer_epochs(trainer, limit)
            if trainer.finished:
                raise lifecycle.rule_done(trainer.stop_reason)
        self.table.storage.ready(job)  # room on the disk, kept history saved
        self.table.start(job)

    def _step(self, job: Job, unit: str) -> None:
        self.table.storage.ready(job)  # room on the disk, kept history saved
        if job.status != "paused":
            self._pause(job)
        trainer = self.table.ensure_trainer(job)
        if trainer is None:
            raise Conflict(f"This job has failed: {self.table.store.get_job(job.id)['error']}")
        if trainer.finished:
            self.table.finish(job)
            raise Conflict(lifecycle.STEP_PAST_END_SENTENCE)
        call = trainer.train_epoch if unit == "epoch" else trainer.train_batches
        records, message = self.table.train(job, call, *(() if unit == "epoch" else (1,)))
        if message is not None:
            del trainer, call
            self.table.fail(job, message)
            return
        job.dirty = job.trained_since_frame = True
        job.frame_due = bool(job.subscribers)
        self.table.record(job, records)  # no checkpoint per step: _checkpoint_due writes one
        if trainer.finished:
            self.table.finish(job)

    def _stop(self, job: Job) -> None:
        self.table.storage.flush(job)  # no epoch dropped by stopping
        if job.dirty:
            self.table.checkpoint(job)
        self.table.set_status(job, "stopped", stop_reason="stopped by request",
                         finished_at=time.time())
        self.table.release_if_idle(job)

    def _reset(self, job: Job) -> None:
        self.table.trainers.free(job)
        job.unwritten, job.note = [], {}  # they belong to the run being reset
        self.table.store.delete_checkpoint(job.id)
        self.table.store.truncate_history(job.id, -1)
        job.epoch = job.step = 0
        job.seconds_per_batch = 0.0
        self.table.store.update_job(job.id, finished_at=None, stop_reason=None, metrics=None)
        job.frame_due = bool(job.subscribers)
        was_running = job.status in ("running", "queued")
        job.status = "paused"  # so that _start counts places without this job
        if was_running:
            self.table.start(job)
        else:
            self.table.set_status(job, "paused")

    def patch(self, job_id: str, patch: dict) -> dict:
        job = self.table.job(job_id)
        training = patch.get("training") or {}
        spec = merge(job.spec.model_dump(mode="json"),
                     {k: v for k, v in patch.items() if v is not None})
        try:  # the API validated the patch; this guards the sum
            job.spec = JobSpec.model_validate(spec)
        except ValidationError as exc:
            raise Conflict("This change does not fit the job: "
                           + "; ".join(e["msg"] for e in exc.errors())) from None
        job.cost_key = ""
        self.table.store.update_job(job.id, spec=spec, **({"name": patch["name"]}
                                                         if patch.get("name") is not None
                                                         else {}))
        if job.status != "failed" and training:
            trainer = self.table.ensure_trainer(job)
            if trainer is not None:
                apply_training_patch(trainer, training)
                if (training.get("gradient_clip") is not None
                        or training.get("batch_size") is not None):  # vmap keys hold it
                    forget_family_key(self.table.families, trainer)
                # At once: a checkpoint from before the change would bring the old settings
                # back after a restart while the stored spec shows the new ones.
                self.table.checkpoint(job)
        return spec

    def delete(self, job_id: str) -> None:
        job = self.table.job(job_id)
        was = job.status
        self.table.remove(job)
        self.table.store.delete_job(job_id)
        self.table.emit(StatusEvent(job_id, "deleted", job.epoch, job.step))
        if was == "running":
            self.table.promote()

    def subscribe(self, job_id: str, options: dict, subscriber: Any) -> None:
        self.table.frames.subscribe(self.table.job(job_id), subscriber, options)

    def unsubscribe(self, job_id: str, subscriber: Any) -> None:
        job = self.table.jobs.get(job_id)
        if job is None:
            return
        self.table.frames.unsubscribe(job, subscriber)
        self.table.release_if_idle(job)

    # -- the glass box (issue 16; what is computed: server.engine.inspect) ------------------

    def edit_weight(self, job_id: str, layer: int, name: str, index: list[int],
                    value: float) -> dict | inspector.Invalid:
        """Set one parameter of a paused job's model by hand; its frame is sent again and the
        edit reaches the next checkpoint."""
        job = self.table.job(job_id)
        if job.status != "paused":
            raise Conflict(inspector.not_paused(job.status))
        trainer = self.table.ensure_trainer(job)
        if trainer is None:
            raise Conflict(lifecycle.NOT_LOADED)
        # (A job trained in a family left it before this command ran: Engine._answer.)
        answer = inspector.edit_parameter(trainer.model, layer, name, index, value)
        if not isinstance(answer, inspector.Invalid):
            job.dirty = job.trained_since_frame = True
            job.frame_due = bool(job.subscribers)
        return answer

    def inspect(self, job_id: str, request: dict) -> dict | inspector.Invalid:
        """The forward pass of one sample (server.engine.inspect.inspect); changes nothing."""
        job = self._inspectable(job_id)
        answer = inspector.inspect(job.trainer, job.dataset, request)
        self.table.release_if_idle(job)
        return answer

    def misclassified(self, job_id: str, limit: int) -> dict | inspector.Invalid:
        """The test samples the model gets wrong now (server.engine.inspect.misclassified)."""
        job = self._inspectable(job_id)
        answer = inspector.misclassified(job.trainer, job.dataset, limit)
        self.table.release_if_idle(job)
        return answer

    def _inspectable(self, job_id: str) -> Job:
        job = self.table.job(job_id)
        if job.status == "failed":
            raise Conflict(inspector.FAILED)
        if self.table.ensure_trainer(job) is None:
            raise Conflict(lifecycle.NO_MODEL)
        return job

    def export(self, job_id: str, format: str) -> tuple[JobSpec, Any, bytes]:
        """(spec, data shape, the model's weights as safetensors bytes): a CPU copy for the
        converter process (server.engine.exports)."""
        from safetensors.torch import save

        job = self.table.job(job_id)
        if format not in FORMATS:
            raise Conflict(f"unknown format {format!r}; expected one of: {', '.join(FORMATS)}")
        lifecycle.check(job.status, "export")
        trainer = self.table.ensure_trainer(job)
        if trainer is None:
            raise Conflict(lifecycle.NO_MODEL)
        weights = save({k: v.detach().to("cpu").contiguous()
                        for k, v in trainer.model.state_dict().items()})
        shape = trainer.shape
        self.table.release_if_idle(job)
        return job.spec, shape, weights
