"""Vmap families (server.train.vmap_family): CNN and attention jobs trained together give the
history they give alone.

The oracle is the solo Trainer on the same spec and seed: every record within 1e-5 (rank
metrics within a few samples, as tests/train/test_family.py explains), the same batch order,
counters and checkpoint keys, weights and optimizer state within 1e-5; SGD, momentum, Adam
with different learning rates and seeds in one family, dropout, L2, early stopping, joining
mid-epoch, leaving, a checkpoint taken in the family resumed alone, a NaN in one member.
Models are tiny and runs short (the file runs in seconds).
"""

from __future__ import annotations

import math

import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import JobSpec
from server.train.protocol import Diverged
from server.train.trainer import Trainer
from server.train.vmap_family import VmapFamily, vmap_key
from tests.train.test_family import assert_close_records, side_by_side
from tests.train.test_family import assert_same_state as assert_same_exactly

CNN = [{"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
       {"type": "maxpool2d", "pool_size": 2},
       {"type": "flatten"},
       {"type": "dense", "units": 8, "activation": "relu"}]
ATTENTION = [{"type": "embedding", "dim": 8},
             {"type": "attention", "heads": 2, "d_model": 8},
             {"type": "pool_sequence", "mode": "last"}]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("vmap-family-data")
    return DataRegistry(path, Settings(data_dir=path))


def spec(seed: int, optimizer: str = "adam", lr: float = 0.003, *, layers=None,
         dataset: str = "digits", dropout: float | None = None, **training) -> JobSpec:
    layers = list(layers or CNN)
    if dropout is not None:
        layers.append({"type": "dropout", "p": dropout})
    return JobSpec.model_validate({
        "dataset": {"name": dataset, "train_fraction": 0.3, "validation_fraction": 0.1},
        "model": {"layers": layers},
        "training": {"epochs": None, "batch_size": 32, "seed": seed,
                     "optimizer": {"name": optimizer, "learning_rate": lr, "momentum": 0.5},
                     **training}})


def assert_same_state(a: Trainer, b: Trainer) -> None:
    """test_family's comparison, with the losses the meta keeps (early stopping's best, the
    first epoch's: explosions are judged against it) within 1e-5 instead of equal."""
    for name in ("best_loss", "first_loss"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert y == pytest.approx(x, abs=1e-5), name
            setattr(b, name, x)
    assert_same_exactly(a, b)


def build(registry, job: JobSpec) -> Trainer:
    return Trainer(job, registry.load(job.dataset))


def twins(registry, specs: list[JobSpec], calls=(5, 20, 1, 17)) -> tuple[list, list]:
    alone = [build(registry, s) for s in specs]
    members = [build(registry, s) for s in specs]
    keys = {vmap_key(t)[:7] + vmap_key(t)[8:] for t in members}  # all but the batch size
    assert len(keys) == 1 and None not in keys
    family = VmapFamily(members)
    side_by_side(alone, members, family, calls, assert_same_state)
    return alone, members


def test_cnn_sgd_momentum_adam_with_different_rates_and_seeds(registry):
    specs = [spec(1, "sgd", 0.05), spec(2, "momentum", 0.02), spec(3, "adam", 0.003),
             spec(4, "adam", 0.002), spec(5, "adamw", 0.003), spec(6, "rmsprop", 0.003)]
    twins(registry, specs)


def test_cnn_dropout_l2_and_a_schedule(registry):
    specs = [spec(7, dropout=0.3, regularization={"kind": "l2", "rate": 0.001}),
             spec(8, dropout=0.1, schedule={"name": "step", "step_size": 1, "gamma": 0.5}),
             spec(9, "momentum", 0.02, dropout=0.0)]
    twins(registry, specs)


def test_attention_family(registry):
    # SGD and momentum: the key's bias gets a gradient that is 0 but for rounding (softmax
    # ignores what it adds), which Adam would scale up to steps of its learning rate.
    specs = [spec(s, optimizer, 0.05, layers=ATTENTION, dataset="recall")
             for s, optimizer in ((1, "sgd"), (2, "momentum"), (3, "sgd"))]
    twins(registry, specs, calls=(9, 30))


def test_early_stopping_runs_per_member(registry):
    rule = {"patience": 1, "min_delta": 0.5, "restore_best": True}
    specs = [spec(10, early_stopping=rule), spec(11, lr=0.003)]
    alone = [build(registry, s) for s in specs]
    members = [build(registry, s) for s in specs]
    family = VmapFamily(members)
    results = family.train(500)  # stops when the first member stops early
    first = members[0]
    assert first.finished and first.stop_reason == "early_stopping"
    assert not members[1].finished
    family.release()
    for a, b in zip(alone, members, strict=True):
        records = a.train_batches(b.step)
        assert_close_records(records, results[b][0])
        assert a.best_epoch == b.best_epoch
        assert_same_state(a, b)


def test_keys_group_same_architecture_and_exclude_what_vmap_cannot(registry):
    cnn = build(registry, spec(1))
    assert vmap_key(cnn) == vmap_key(build(registry, spec(2, "sgd", 0.1)))
    dropout = build(registry, spec(1, dropout=0.2))
    assert vmap_key(dropout) == vmap_key(build(registry, spec(3, "sgd", dropout=0.5)))
    assert vmap_key(dropout) != vmap_key(cnn)
    assert vmap_key(cnn) != vmap_key(build(registry, spec(1, batch_size=16)))
    wider = [dict(CNN[0], filters=4)] + CNN[1:]
    assert vmap_key(cnn) != vmap_key(build(registry, spec(1, layers=wider)))
    lstm = [{"type": "lstm", "units": 4}]
    assert vmap_key(build(registry, spec(1, layers=lstm, dataset="sine"))) is None
    norm = CNN[:1] + [{"type": "batchnorm"}] + CNN[1:]
    assert vmap_key(build(registry, spec(1, layers=norm))) is None
    assert vmap_key(build(registry, spec(1, gradient_clip=1.0))) is None


def test_join_mid_epoch_and_leave(registry):
    """A member trained alone for part of an epoch joins; one leaves (its family released,
    it trains alone); every history equals its solo twin's."""
    specs = [spec(20), spec(21, "sgd", 0.05), spec(22, "momentum", 0.02)]
    alone = [build(registry, s) for s in specs]
    members = [build(registry, s) for s in specs]
    for t in alone:
        t.train_batches(3)
    got = [members[0].train_batches(3)]
    family = VmapFamily(members[:2])  # 0 joins mid-epoch, 1 from the start
    got.append(family.train(3))
    members[2].train_batches(6)  # alone until now, mid-epoch
    family.release()
    family = VmapFamily(members)
    family.train(25)
    family.release()  # 1 leaves (paused)
    family = VmapFamily([members[0], members[2]])
    family.train(7)
    family.release()
    members[1].train_batches(4)
    for t in alone[:1] + alone[2:]:
        t.train_batches(35)
    alone[1].train_batches(25 + 4)
    for a, b in zip(alone, members, strict=True):
        assert_same_state(a, b)


def test_checkpoint_in_family_resumes_alone_and_back(registry):
    specs = [spec(30, dropout=0.2), spec(31, "momentum", 0.02, dropout=0.0)]
    twin = build(registry, specs[0])
    members = [build(registry, s) for s in specs]
    assert vmap_key(members[0]) == vmap_key(members[1])
    family = VmapFamily(members)
    family.train(17)
    family.sync(members[0])
    tensors, meta = members[0].state_tensors(), members[0].state_meta()
    resumed = build(registry, specs[0])
    resumed.load_state(tensors, meta)
    twin.train_batches(17)
    assert_same_state(twin, resumed)
    records_twin = twin.train_batches(30)
    assert_close_records(records_twin, resumed.train_batches(30))
    # and a checkpoint taken alone resumes in a family
    back = build(registry, specs[0])
    back.load_state(twin.state_tensors(), twin.state_meta())
    family.release()
    other = build(registry, specs[1])
    family = VmapFamily([back, other])
    results = family.train(20)
    family.release()
    assert_close_records(twin.train_batches(20), results[back][0])
    assert_same_state(twin, back)


def test_nan_in_one_member_touches_that_member_alone(registry):
    """Member 1's weights turn NaN: it diverges as alone (the same sentence, rewound to the
    same last good state as its solo twin); the others go on as their solo twins."""
    specs = [spec(40), spec(41, "sgd", 0.05), spec(42)]
    alone = [build(registry, s) for s in specs]
    members = [build(registry, s) for s in specs]
    family = VmapFamily(members)
    family.train(3)
    for t in alone:
        t.train_batches(3)
    for t in (members[1], alone[1]):
        with torch.no_grad():
            t.model.layers[0].conv.weight[0, 0, 0, 0] = math.nan
    results = family.train(50)
    records, error = results[members[1]]
    with pytest.raises(Diverged) as solo:
        alone[1].train_batches(50)
    assert error is not None and str(error) == str(solo.value)
    assert str(error).startswith("diverged: loss became NaN at epoch 1")
    assert (error.what, error.epoch, error.step, error.rewound) == ("NaN", 1, 4, True)
    assert members[1].step == 0  # back at its last good state, as alone
    for i in (0, 2):
        assert results[members[i]][1] is None
        assert not members[i].finished
    family.release()
    assert_same_state(alone[1], members[1])
    for i in (0, 2):
        alone[i].train_batches(members[i].step - 3)
        assert_same_state(alone[i], members[i])
    family = VmapFamily([members[0], members[2]])  # the others go on together
    family.train(20)
    family.release()
    for i in (0, 2):
        alone[i].train_batches(20)
        assert_same_state(alone[i], members[i])


def test_dense_only_models_are_not_vmap_families(registry):
    mlp = [{"type": "flatten"}, {"type": "dense", "units": 8, "activation": "relu"}]
    assert vmap_key(build(registry, spec(1, layers=mlp))) is None


def test_a_member_with_another_batch_size_is_padded_exactly(registry):
    """Keys keep batch sizes apart; a batch size changed under a cached key still trains
    exactly (padded rows weigh 0)."""
    twins(registry, [spec(50), spec(51, "sgd", 0.05, batch_size=20)], calls=(30,))
