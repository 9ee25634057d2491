"""The lifecycle rules of a job: which action is possible in which status, and the sentence a
user reads when it is not.

Pure: no threads, no torch, no store. `check(status, action)` answers from the table below:
True (do it), False (nothing to do: the job is already so) or raises `Conflict` with the
sentence (the API answers 409 with it). The rules that need more than the status (the epoch
limit, a trainer's stopping rule) are the sentences `epochs_done` and `rule_done`, raised by
the engine once it has the numbers.

Statuses: queued, running, paused, completed, stopped, failed (and `deleted` in the last
status event of a job). Actions: the control vocabulary `ACTIONS` and `export`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.spec.vocabulary import CONTROL_ACTIONS

if TYPE_CHECKING:
    from server.spec.job import JobSpec

STATUSES = ("queued", "running", "paused", "completed", "stopped", "failed")
TERMINAL = ("completed", "stopped", "failed")
ACTIONS = CONTROL_ACTIONS  # server.spec.vocabulary's control actions


class JobNotFound(Exception):
    """No job with this id (the API answers 404)."""


class Conflict(Exception):
    """The action is impossible in the job's state (the API answers 409 with the message)."""


DO, NOTHING = True, False

# (status, action) -> DO, NOTHING or the Conflict sentence ({past}: the status as in "has ...").
# A pair that is not here is DO.
_RULES: dict[tuple[str, str], bool | str] = {
    ("paused", "pause"): NOTHING,
    **{(s, "pause"): "This job has {past}; there is nothing to pause." for s in TERMINAL},
    ("running", "resume"): NOTHING,
    ("queued", "resume"): NOTHING,
    ("stopped", "resume"): "This job has {past}; reset it to train it again.",
    ("failed", "resume"): "This job has {past}; reset it to train it again.",
    **{(s, "step"): "This job has {past}; reset it to train it again." for s in TERMINAL},
    ("stopped", "stop"): NOTHING,
    ("completed", "stop"): "This job has already {past}.",
    ("failed", "stop"): "This job has already {past}.",
    ("failed", "export"): ("This job has failed; it has no model to download. Reset it and "
                           "train it again."),
}


def past(status: str) -> str:
    """The status as it reads after "This job has": "been stopped", "failed"."""
    return {"completed": "completed", "stopped": "been stopped", "failed": "failed"}.get(
        status, status)


def unknown_action(action: str) -> Conflict:
    return Conflict(f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}")


def check(status: str, action: str) -> bool:
    """True: do `action`; False: nothing to do; raises Conflict with the user's sentence."""
    if action not in ACTIONS and action != "export":
        raise unknown_action(action)
    rule = _RULES.get((status, action), DO)
    if isinstance(rule, str):
        raise Conflict(rule.format(past=past(status)))
    return rule


def epochs(spec: JobSpec) -> int | None:
    """The job's epoch limit (the JobSpec's, default included); None: it trains until
    stopped."""
    return spec.training.epochs


def epochs_done(epoch: int, limit: int | None) -> None:
    """Conflict when a job at `epoch` has no epoch left to train (resume)."""
    if limit is not None and epoch >= limit:
        raise Conflict(f"This job has completed its {limit} epochs; raise its epochs with PATCH "
                       "or reset it to train it again.")


def rule_done(reason: str | None) -> Conflict:
    """The Conflict for a completed job whose stopping rule ended it (resume)."""
    reason = reason or "its stopping rule"
    return Conflict(f"This job has completed ({str(reason).replace('_', ' ')}); "
                    "reset it to train it again.")


STEP_PAST_END_SENTENCE = ("This job has completed its epochs; raise its epochs with PATCH or "
                          "reset it to train it again.")
NOT_LOADED = "This job could not be loaded again; reset it."
NO_MODEL = "This job could not be loaded; it has no model to download."
