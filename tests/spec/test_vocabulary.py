"""Each vocabulary has one home, server.spec.vocabulary, and every user reads it from there."""

from __future__ import annotations

from typing import get_args

import numpy as np

from server.api import stream
from server.api.jobs import ControlRequest
from server.data import base, points
from server.engine import lifecycle
from server.spec import vocabulary as v
from server.spec.job import OptimizerSpec, RegularizationSpec, ScheduleSpec, TrainingSpec
from server.train import optim


def choices(model, field: str) -> tuple:
    return get_args(model.model_fields[field].annotation)


def test_the_spec_fields_take_their_names_from_the_vocabulary():
    assert choices(TrainingSpec, "loss") == get_args(v.LossName)
    assert choices(OptimizerSpec, "name") == get_args(v.OptimizerName) == tuple(v.OPTIMIZERS)
    assert choices(RegularizationSpec, "kind") == ("none", "l1", "l2")
    assert choices(ScheduleSpec, "name") == get_args(v.ScheduleName)
    assert set(v.LOSS_DESCRIPTIONS) == set(get_args(v.LossName))
    assert v.LOSSES == ("mse", "l1", "huber", "bce", "cross_entropy")


def test_the_control_actions_are_written_once():
    assert v.CONTROL_ACTIONS == ("pause", "resume", "step", "stop", "reset")
    assert lifecycle.ACTIONS is v.CONTROL_ACTIONS
    assert stream.CONTROL_ACTIONS is v.CONTROL_ACTIONS
    assert choices(ControlRequest, "action") == v.CONTROL_ACTIONS
    assert optim.LOSSES is v.LOSSES and optim.OPTIMIZERS is v.OPTIMIZERS


def test_the_point_sets_lie_in_the_one_domain():
    assert base.DOMAIN == v.POINT_DOMAIN == (-6.0, 6.0)
    rng = np.random.default_rng(0)
    xy = points._uniform(rng, *v.POINT_DOMAIN, 1000)
    assert xy.min() >= -6.0 and xy.max() <= 6.0
