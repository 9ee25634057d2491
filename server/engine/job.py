"""A job as the engine holds it: `Job`, one row of the engine's job table.

Its spec is the validated `JobSpec` with any PATCH applied (`merge` works on its JSON, which
the engine validates again); the other fields are the
engine's own: progress, the loaded trainer, the scheduler's clock, frame pacing and the
writes still owed to the store. Only the worker thread reads or changes a `Job`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.spec.job import JobSpec


@dataclass
class Job:
    id: str
    spec: JobSpec  # validated, with any PATCH applied
    status: str
    seq: int  # creation order, for the queue
    owner: str = ""  # who made it (the store row's owner): the fair share is per owner
    epoch: int = 0
    step: int = 0
    trainer: Any = None
    dataset: Any = None
    charge: float = 0.0  # device seconds used: the scheduler's virtual clock
    family_charge: float | None = None  # in a family: its members' lowest clock (commands)
    slices: int = 0
    last_used: float = 0.0  # monotonic time its trainer was last needed
    cost_key: str = ""  # jobs with the same key share a step cost (scheduler.cost_key)
    seconds_per_batch: float = 0.0  # moving average, to size the next slice
    dirty: bool = False  # trained since the last checkpoint
    last_checkpoint: float = 0.0
    subscribers: dict[Any, dict] = field(default_factory=dict)
    frame_due: bool = False  # a subscriber should get a frame even if nothing trained
    trained_since_frame: bool = False
    last_frame: float = 0.0
    unwatched_since: float | None = None  # monotonic time its last subscriber left
    unwritten: list = field(default_factory=list)  # history records a write failed for
    note: dict = field(default_factory=dict)  # error/stop_reason its row could not take

    def summary(self) -> dict:
        """What a command answers: `{"id", "status", "epoch", "step"}`."""
        return {"id": self.id, "status": self.status, "epoch": self.epoch, "step": self.step}

    def progress(self) -> dict:
        """What `Engine.progress` reads: status, epoch, step and any note."""
        return {"status": self.status, "epoch": self.epoch, "step": self.step, **self.note}


def merge(base: dict, patch: dict) -> dict:
    """`base` with `patch` merged in, recursively for nested objects."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
