"""A diverged job pauses at its last good state instead of failing (issue 16, "See why").

`Rewinds.pause_or_fail(job, exc)` is what `JobTable` does with a `Diverged` from a training call (a
solo slice, a step, or a family's member): the epochs the call completed are recorded; the
trainer is put back at the end of its last good epoch:

1. the trainer did it itself (`exc.rewound`: a small model keeps that state in memory);
2. else `trainer.rewind()` (the kept state is still the last epoch's: a family member that
   diverged in the epoch it joined at);
3. else its last checkpoint (written at most `checkpoint_seconds` ago), replayed alone up to
   the last good epoch for at most `REPLAY_SECONDS` (a family member: within 1e-5 of its family
   run, docs/INTERNALS.md), or its initial weights when it has no checkpoint;

the history after that epoch is deleted, a checkpoint is written (a restart resumes there),
and the job is paused with `error` (the sentence) and `stop_reason` "diverged" and the
diagnosis in its note (`diverged`: the status event and GET /api/jobs/{id}). A second
divergence at the same epoch with the same settings says so (`repeated`): resuming unchanged
diverges again. A family member leaves its family first (`Families.detach`); the others train on.
"""

from __future__ import annotations

import logging
import time

from server.train.diagnose import sentence
from server.train.protocol import Diverged

log = logging.getLogger("playground.engine")

REPLAY_SECONDS = 2.0
REPEATED = ("; it diverged at this epoch before with the same settings, so resuming unchanged "
            "diverges again: lower the learning rate or turn on gradient clipping first")


def settings_of(spec) -> tuple:
    """What a retry changes: two divergences with equal settings are the same run again."""
    t = spec.training
    return (t.optimizer.learning_rate, t.optimizer.momentum, t.batch_size,
            t.regularization.kind, t.regularization.rate, t.gradient_clip)


class Rewinds:
    """The engine's answer to a divergence (worker thread). `table`: the JobTable."""

    def __init__(self, table) -> None:
        self.table = table
        self.last: dict[str, tuple[tuple, int, int]] = {}  # job -> (settings, epoch, times)

    def forget(self, job_id: str) -> None:
        self.last.pop(job_id, None)

    def pause_or_fail(self, job, exc: Diverged) -> bool:
        """Pause `job` at its last good state (True); False when that went wrong (logged: the
        job then fails with the divergence's sentence, as before issue 16)."""
        if job.trainer is None:
            return False
        try:
            self.pause(job, exc)
        except Exception:
            log.exception("job %s: the rewind after a divergence failed", job.id)
            return False
        return True

    def pause(self, job, exc: Diverged) -> None:
        table = self.table
        if table.families is not None:
            table.families.detach(job)  # its own weights again; the others re-form
        trainer = job.trainer
        if exc.records:
            table.record(job, exc.records)
        diagnosis = getattr(exc, "diagnosis", None)
        if not getattr(exc, "rewound", False):
            diagnosis = self._rewind(job, trainer, exc) or diagnosis
        if diagnosis is None:
            diagnosis = {"loss_became": getattr(exc, "what", "NaN"),
                         "epoch": getattr(exc, "epoch", None) or int(trainer.epoch) + 1,
                         "step": getattr(exc, "step", None), "layer": None,
                         "layer_type": None, "where": None,
                         "what": getattr(exc, "what", "NaN")}
        diagnosis["rewound_to"] = {"epoch": int(trainer.epoch), "step": int(trainer.step)}
        message = sentence(diagnosis) if "loss_became" in diagnosis else str(exc)
        key = (*settings_of(job.spec), getattr(trainer, "model_seed", None))
        before = self.last.get(job.id)
        times = before[2] + 1 if before and before[:2] == (key, diagnosis["epoch"]) else 1
        self.last[job.id] = (key, diagnosis["epoch"], times)
        if times > 1:
            message += REPEATED
        job.epoch, job.step = int(trainer.epoch), int(trainer.step)
        table.store.truncate_history(job.id, job.epoch)
        job.dirty = True
        table.checkpoint(job)
        job.note = {"error": message, "stop_reason": "diverged",
                    "diverged": self.public(diagnosis, message, times)}
        job.frame_due = bool(job.subscribers)
        table.set_status(job, "paused", error=message, stop_reason="diverged")

    @staticmethod
    def public(diagnosis: dict, message: str, times: int) -> dict:
        """The `diverged` object clients get (docs/JOBS_API.md)."""
        became = diagnosis.get("loss_became")
        return {"epoch": diagnosis.get("epoch"), "step": diagnosis.get("step"),
                "layer": diagnosis.get("layer"), "layer_type": diagnosis.get("layer_type"),
                "where": diagnosis.get("where"),
                "what": "exploding" if became == "exploding" else diagnosis.get("what"),
                "loss": became, "train_loss": diagnosis.get("train_loss"),
                "rewound_to": diagnosis.get("rewound_to"), "repeated": times,
                "message": message}

    def _rewind(self, job, trainer, exc: Diverged) -> dict | None:
        """Put the trainer back at its last good epoch when it did not do so itself; its
        diagnosis (replayed from there) or None."""
        rewind = getattr(trainer, "rewind", None)
        if rewind is not None and rewind():
            return self._diagnose(trainer, exc)
        checkpoint = table_checkpoint(self.table, job)
        if checkpoint is not None:
            tensors, meta = checkpoint
            trainer.load_state(tensors, meta.get("trainer", {}))
        elif hasattr(trainer, "restart"):
            trainer.restart()
        else:
            return None
        target = getattr(exc, "good_epoch", None)
        deadline = time.monotonic() + REPLAY_SECONDS
        while target is not None and trainer.epoch < target and time.monotonic() < deadline:
            try:
                trainer.train_epoch()  # those epochs are in the history already
            except Diverged as again:  # it blew up earlier alone: that is its good state
                if getattr(again, "rewound", False):
                    return again.diagnosis
                return None
        if hasattr(trainer, "finished"):
            trainer.finished, trainer.stop_reason = False, None
        return self._diagnose(trainer, exc)

    @staticmethod
    def _diagnose(trainer, exc: Diverged) -> dict | None:
        diagnose = getattr(trainer, "diagnose", None)
        if diagnose is None:
            return None
        try:
            steps = int(getattr(trainer, "batches_per_epoch", 1))
            epoch = getattr(exc, "epoch", None) or int(trainer.epoch) + 1
            found = diagnose(getattr(exc, "what", "NaN"), epoch, steps)
        except Exception:  # a diagnosis is a help, never a reason to fail the job
            log.exception("diagnosis of a divergence failed")
            return None
        if found.get("step") is None:
            found["step"] = getattr(exc, "step", None)
        return found


def table_checkpoint(table, job) -> tuple[dict, dict] | None:
    """The job's checkpoint (tensors, meta), or None."""
    try:
        return table.store.load_checkpoint(job.id)
    except Exception:
        log.exception("checkpoint of job %s could not be read for a rewind", job.id)
        return None

