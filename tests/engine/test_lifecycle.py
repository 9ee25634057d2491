"""The lifecycle table on its own (issue 13): which action is possible in which status, and the
exact sentence of each refusal. No threads, no engine."""

from __future__ import annotations

import pytest

from server.engine.lifecycle import (
    ACTIONS,
    STATUSES,
    Conflict,
    check,
    epochs,
    epochs_done,
    rule_done,
    unknown_action,
)
from tests.train.helpers import job_spec

DO, NOTHING = True, False
STOPPED_FAILED = {
    "stopped": "This job has been stopped; reset it to train it again.",
    "failed": "This job has failed; reset it to train it again.",
}

# status -> action -> True (do it), False (nothing to do) or the Conflict sentence
TABLE = {
    "queued": {"pause": DO, "resume": NOTHING, "step": DO, "stop": DO, "reset": DO},
    "running": {"pause": DO, "resume": NOTHING, "step": DO, "stop": DO, "reset": DO},
    "paused": {"pause": NOTHING, "resume": DO, "step": DO, "stop": DO, "reset": DO},
    "completed": {
        "pause": "This job has completed; there is nothing to pause.",
        "resume": DO,  # whether epochs are left is asked with the numbers (epochs_done)
        "step": "This job has completed; reset it to train it again.",
        "stop": "This job has already completed.",
        "reset": DO,
    },
    "stopped": {
        "pause": "This job has been stopped; there is nothing to pause.",
        "resume": STOPPED_FAILED["stopped"],
        "step": STOPPED_FAILED["stopped"],
        "stop": NOTHING,
        "reset": DO,
    },
    "failed": {
        "pause": "This job has failed; there is nothing to pause.",
        "resume": STOPPED_FAILED["failed"],
        "step": STOPPED_FAILED["failed"],
        "stop": "This job has already failed.",
        "reset": DO,
    },
}


@pytest.mark.parametrize("status, action",
                         [(s, a) for s in STATUSES for a in ACTIONS])
def test_every_status_and_action(status, action):
    expected = TABLE[status][action]
    if isinstance(expected, str):
        with pytest.raises(Conflict) as refused:
            check(status, action)
        assert str(refused.value) == expected
    else:
        assert check(status, action) is expected


def test_only_a_failed_job_has_no_model_to_download():
    for status in STATUSES:
        if status == "failed":
            with pytest.raises(Conflict, match="^This job has failed; it has no model to "
                                               "download. Reset it and train it again.$"):
                check(status, "export")
        else:
            assert check(status, "export") is True


def test_an_unknown_action_names_the_allowed_ones():
    message = "unknown action 'jump'; expected one of: pause, resume, step, stop, reset"
    with pytest.raises(Conflict) as refused:
        check("paused", "jump")
    assert str(refused.value) == message
    assert str(unknown_action("jump")) == message


def test_epoch_limits_and_stopping_rules():
    assert epochs(job_spec(epochs=3)) == 3
    assert epochs(job_spec(epochs=None)) is None
    assert epochs(job_spec()) == 500  # the JobSpec default
    epochs_done(2, 3)
    epochs_done(10**6, None)
    with pytest.raises(Conflict) as refused:
        epochs_done(3, 3)
    assert str(refused.value) == ("This job has completed its 3 epochs; raise its epochs with "
                                  "PATCH or reset it to train it again.")
    assert str(rule_done("early_stopping")) == ("This job has completed (early stopping); "
                                                "reset it to train it again.")
    assert str(rule_done(None)) == ("This job has completed (its stopping rule); reset it to "
                                    "train it again.")
