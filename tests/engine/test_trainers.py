"""The engine's side of the trainer seam: `TrainerLike` is what the engine and the snapshots
use of a trainer, a divergence is known by its type, and the epoch default is the JobSpec's."""

from __future__ import annotations

import inspect

import torch

from server.engine import lifecycle
from server.engine.trainers import OUT_OF_MEMORY, apply_training_patch, failure
from server.train import trainer as trainer_module
from server.train.protocol import Diverged, TrainerLike
from server.train.trainer import Trainer
from tests.train.helpers import blobs, job_spec


def test_the_trainer_meets_the_protocol_the_engine_uses():
    trainer = Trainer(job_spec(), blobs())
    members = {name for name, _ in inspect.getmembers(TrainerLike) if not name.startswith("_")}
    members |= set(TrainerLike.__annotations__)
    assert members >= {"model", "shape", "loss_name", "epoch", "step", "learning_rate",
                       "finished", "stop_reason", "train_batches", "set_epochs"}
    missing = [name for name in sorted(members) if not hasattr(trainer, name)]
    assert missing == []
    assert trainer_module.Diverged is Diverged  # one class, wherever it is imported from


def test_a_divergence_is_known_by_its_type_not_its_name():
    class LossBlewUp(Diverged):
        pass

    exc = LossBlewUp("diverged: loss became NaN at epoch 3; try a lower learning rate")
    exc.records = [{"epoch": 1}, {"epoch": 2}]
    assert failure("j", exc) == (str(exc), [{"epoch": 1}, {"epoch": 2}])

    namesake = type("Diverged", (RuntimeError,), {})  # same name, another type: ordinary
    assert failure("j", namesake("nan")) == ("training failed: nan", None)
    assert failure("j", torch.cuda.OutOfMemoryError("CUDA out of memory")) == (OUT_OF_MEMORY,
                                                                               None)


def test_a_patch_calls_the_trainers_own_setters():
    trainer = Trainer(job_spec(optimizer={"name": "momentum", "momentum": 0.9}), blobs())
    apply_training_patch(trainer, {"optimizer": {"momentum": 0.5, "learning_rate": 0.2},
                                   "epochs": 7})
    assert trainer.momentum == 0.5 and trainer.base_lr == 0.2 and trainer.epochs == 7
    assert [g["momentum"] for g in trainer.optimizer.param_groups] == [0.5]


def test_the_epoch_limit_is_read_from_the_job_spec():
    assert lifecycle.epochs(job_spec()) == 500  # the JobSpec's default, written only there
    assert lifecycle.epochs(job_spec(epochs=None)) is None
    assert lifecycle.epochs(job_spec(epochs=3)) == 3
    assert not hasattr(lifecycle, "DEFAULT_EPOCHS")
