"""Families (server.train.family): jobs trained together give the history they give alone.

The oracle is the solo Trainer (plain PyTorch autograd and torch.optim) on the same spec and
seed: every record's numbers within 1e-5, the same batch order, counters and epochs, weights
and checkpoint tensors within 1e-5 and the same checkpoint keys; for each optimizer, loss and
activation, dropout, L1/L2, schedules, batch sizes and mixed widths and features in one family.
Settings are moderate (no run here is chaotic: there, any two float implementations part).
"""

from __future__ import annotations

import math
import os
import random

import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import JobSpec
from server.train.family import DenseFamily, family_key
from server.train.trainer import Trainer

TOL = 1e-5
FEATURES = [["x1", "x2"], ["x1", "x2", "x1^2", "x2^2"],
            ["x1", "x2", "x1*x2", "sin(x1)", "sin(x2)", "x1^2", "x2^2"]]


@pytest.fixture(params=["c", "torch"])
def path(request, monkeypatch):
    """Both ways a family steps on the CPU: the C kernels (server/train/kernel) and the
    torch path (what CUDA and a machine with no C compiler run)."""
    if request.param == "torch":
        monkeypatch.setenv("PLAYGROUND_FAMILY_KERNEL", "off")
    return request.param


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("family-data")
    return DataRegistry(path, Settings(data_dir=path))


def spec(rnd: random.Random, optimizer: str = "sgd", *, layers=None, activation="tanh",
         dataset=None, lr=None, **training) -> JobSpec:
    layers = layers or [{"type": "dense", "units": rnd.randint(2, 8), "activation": activation},
                        {"type": "dense", "units": rnd.randint(2, 8), "activation": activation}]
    return JobSpec.model_validate({
        "dataset": {"name": dataset or rnd.choice(["circle", "xor", "gauss"]),
                    "features": rnd.choice(FEATURES), "params": {"noise": rnd.choice([0, 0.1])},
                    "validation_fraction": rnd.choice([0.0, 0.2])},
        "model": {"layers": layers},
        "training": {"epochs": None, "batch_size": rnd.choice([10, 30]),
                     "seed": rnd.randint(0, 999),
                     "optimizer": {"name": optimizer,
                                   "learning_rate": lr or rnd.choice([0.003, 0.01, 0.03])},
                     **training}})


def trainer(registry, job: JobSpec) -> Trainer:
    return Trainer(job, registry.load(job.dataset))


def assert_close_records(alone: list[dict], together: list[dict]) -> None:
    """Losses, penalties, MAE and R^2 within 1e-5. Rank and count metrics follow from the
    outputs' order: outputs 1e-6 apart swap nearly tied samples (many, while a network's
    outputs are still nearly equal), so those may differ by a few samples (0.02; a confusion
    matrix by 10 counts)."""
    assert len(alone) == len(together)
    for a, b in zip(alone, together, strict=True):
        assert set(a) == set(b)
        for key, value in a.items():
            if key.endswith("_confusion_matrix"):
                diff = sum(abs(x - y) for ra, rb in zip(value, b[key], strict=True)
                           for x, y in zip(ra, rb, strict=True))
                assert diff <= 10, key
            elif isinstance(value, float) and b[key] is not None:
                tol = 0.02 if key.endswith(("_auc", "_accuracy", "_precision", "_recall",
                                            "_f1")) else TOL
                assert b[key] == pytest.approx(value, abs=tol), key
            else:
                assert b[key] == value, key


def assert_same_state(a: Trainer, b: Trainer, tol: float = TOL) -> None:
    assert (a.step, a.epoch, a._pos, a.batch_in_epoch) == (b.step, b.epoch, b._pos,
                                                            b.batch_in_epoch)
    assert (a._perm is None) == (b._perm is None)
    if a._perm is not None:
        assert torch.equal(a._perm, b._perm)  # the same batch order
    ta, tb = a.state_tensors(), b.state_tensors()
    assert set(ta) == set(tb)
    for name in ta:
        if ta[name].dtype == torch.uint8:  # generator states: the same draws
            assert torch.equal(ta[name], tb[name]), name
        else:
            diff = (ta[name].double() - tb[name].double()).abs().max().item()
            assert diff <= tol, (name, diff)
    ma, mb = a.state_meta(), b.state_meta()
    assert ma["optimizer"]["indices"] == mb["optimizer"]["indices"]
    for key in ma:
        if key != "optimizer":
            assert ma[key] == mb[key], key


def twins(registry, specs: list[JobSpec], calls=(7, 60, 1, 40), tol: float = TOL) -> None:
    """Train each spec alone and all of them as one family with the same calls; compare."""
    alone = [trainer(registry, s) for s in specs]
    members = [trainer(registry, s) for s in specs]
    assert len({family_key(t) for t in members}) == 1
    family = DenseFamily(members)
    assert (family.kernel is None) == (os.environ.get("PLAYGROUND_FAMILY_KERNEL") == "off")
    side_by_side(alone, members, family, calls,
                 lambda a, b: assert_same_state(a, b, tol))


def side_by_side(alone: list, members: list, family, calls,
                 assert_state=assert_same_state) -> None:
    """Train each of `alone` by itself and `family` (of `members`, the same specs) with the
    same calls; every member's records and state must be its twin's (the family kinds'
    equivalence tests share this)."""
    got_alone = [[] for _ in alone]
    got_family = [[] for _ in members]
    for n in calls:
        for i, t in enumerate(alone):
            got_alone[i] += t.train_batches(n)
        results = family.train(n)
        for i, t in enumerate(members):
            records, error = results[t]
            assert error is None
            got_family[i] += records
    family.release()
    for a, b, ra, rb in zip(alone, members, got_alone, got_family, strict=True):
        assert ra, "every member completed an epoch"
        assert_close_records(ra, rb)
        assert_state(a, b)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                       "adam", "adamw"])
def test_each_optimizer_with_mixed_widths_features_and_batch_sizes(registry, path, optimizer):
    rnd = random.Random(optimizer)
    extra = {"optimizer": {"name": optimizer, "learning_rate": 0.01, "momentum": 0.5,
                           "weight_decay": 0.001}}
    specs = []
    for _ in range(5):
        s = spec(rnd, optimizer)
        training = s.training.model_dump(mode="json")
        training["optimizer"].update(extra["optimizer"],
                                     learning_rate=rnd.choice([0.003, 0.01]))
        specs.append(s.model_copy(update={"training": type(s.training).model_validate(training)}))
    # RMSprop's buffers hold g / sqrt(v): where v is tiny they carry rounding noise 1e4 times
    # larger than the weights do, so its state is compared within 1e-3 (its losses within 1e-5).
    twins(registry, specs, tol=1e-3 if optimizer == "rmsprop" else TOL)


@pytest.mark.parametrize("loss,dataset", [("mse", "circle"), ("l1", "gauss"), ("huber", "gauss"),
                                          ("bce", "circle"), ("cross_entropy", "blobs"),
                                          ("mse", "plane")])
def test_each_loss(registry, path, loss, dataset):
    rnd = random.Random(loss + dataset)
    specs = [spec(rnd, "adam", dataset=dataset, lr=0.01, loss=loss) for _ in range(3)]
    # l1's gradient is a sign: a sample whose error is near 0 flips it on rounding noise.
    # On blobs some tanh units saturate: their 1 - a^2 is a few float steps, so z's last bit
    # (the order of a matrix product's sums, which is not the same in the C steps as in
    # torch's) moves it by up to half, and Adam makes such tiny gradients full steps: the C
    # steps' weights part from torch's by up to 3e-5 over these 80 steps (losses within 1e-5).
    loose = loss == "l1" or (loss == "cross_entropy" and path == "c")
    twins(registry, specs, calls=(30, 50), tol=1e-4 if loose else TOL)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid",
                                        "softplus", "linear"])
def test_each_activation(registry, path, activation):
    rnd = random.Random(activation)
    specs = [spec(rnd, "sgd", activation=activation) for _ in range(3)]
    twins(registry, specs, calls=(30, 50))


def test_dropout_draws_the_masks_each_job_draws_alone(registry, path):
    rnd = random.Random(5)
    specs = [spec(rnd, "sgd", layers=[
        {"type": "dense", "units": rnd.randint(4, 8), "activation": "relu"},
        {"type": "dropout", "p": p},
        {"type": "dense", "units": 4, "activation": "relu"}]) for p in (0.0, 0.2, 0.5, 0.3)]
    twins(registry, specs)


def test_penalties_and_schedules(registry, path):
    rnd = random.Random(7)
    for kind in ("l1", "l2"):
        specs = [spec(rnd, "adam", lr=0.01, regularization={"kind": kind, "rate": 0.003},
                      schedule={"name": "step", "step_size": 1, "gamma": 0.7})
                 for _ in range(3)]
        twins(registry, specs)


def test_a_member_joining_mid_epoch_goes_on_from_where_it_was(registry):
    rnd = random.Random(9)
    specs = [spec(rnd, "momentum", lr=0.01) for _ in range(3)]
    alone = [trainer(registry, s) for s in specs]
    members = [trainer(registry, s) for s in specs]
    for t, m in zip(alone, members, strict=True):  # each trained alone for a while first
        t.train_batches(13)
        m.train_batches(13)
    family = DenseFamily(members)
    family.train(40)
    family.release()  # and alone again
    for t in members:
        t.train_batches(9)
    for t in alone:
        t.train_batches(49)
    for a, b in zip(alone, members, strict=True):
        assert_same_state(a, b)


def test_a_checkpoint_taken_in_a_family_resumes_alone_and_the_other_way(registry):
    rnd = random.Random(11)
    specs = [spec(rnd, "adam", lr=0.01) for _ in range(3)]
    reference = trainer(registry, specs[0])
    reference.train_batches(120)
    members = [trainer(registry, s) for s in specs]
    family = DenseFamily(members)
    family.train(70)
    family.sync(members[0])
    tensors, meta = members[0].state_tensors(), members[0].state_meta()

    def copy() -> dict:  # load_state may keep the tensors it is given (as a file's are)
        return {name: value.clone() for name, value in tensors.items()}

    resumed = trainer(registry, specs[0])
    resumed.load_state(copy(), meta)  # resumed alone
    resumed.train_batches(50)
    assert_same_state(reference, resumed)
    family.release()
    again = trainer(registry, specs[0])  # alone -> family
    again.load_state(copy(), meta)
    other = DenseFamily([again, trainer(registry, specs[1])])
    other.train(50)
    other.release()
    assert_same_state(reference, again)


def test_a_nan_in_one_member_fails_it_alone(registry):
    rnd = random.Random(13)
    specs = [spec(rnd, "sgd", lr=0.01) for _ in range(3)]
    alone = [trainer(registry, s) for s in specs]
    members = [trainer(registry, s) for s in specs]
    for t in (alone[1], members[1]):
        with torch.no_grad():
            t.model.layers[0].linear.weight[0, 0] = math.nan
    family = DenseFamily(members)
    results = family.train(60)
    records, error = results[members[1]]
    assert error is not None and "diverged: loss became NaN at epoch 1" in str(error)
    assert records == [] and members[1].stop_reason == "diverged"
    for i in (0, 2):
        ra = alone[i].train_batches(60)
        rb, err = results[members[i]]
        assert err is None
        assert_close_records(ra, rb)
        assert_same_state(alone[i], members[i])


def test_an_epoch_budget_ends_the_member_exactly_there(registry):
    rnd = random.Random(17)
    specs = [spec(rnd, "sgd", epochs=e, dataset="circle") for e in (2, 5)]
    members = [trainer(registry, s) for s in specs]
    family = DenseFamily(members)
    results = family.train(10_000)  # stops when the first member finishes
    assert members[0].finished and members[0].epoch == 2
    assert len(results[members[0]][0]) == 2
    assert not members[1].finished


def test_what_cannot_join_a_family(registry):
    rnd = random.Random(19)
    assert family_key(trainer(registry, spec(rnd, early_stopping={"patience": 3}))) is None
    assert family_key(trainer(registry, spec(rnd, gradient_clip=1.0))) is None
    norm = spec(rnd, layers=[{"type": "dense", "units": 4}, {"type": "batchnorm"}])
    assert family_key(trainer(registry, norm)) is None
    small = family_key(trainer(registry, spec(rnd, layers=[{"type": "dense", "units": 4}])))
    large = family_key(trainer(registry, spec(rnd, layers=[{"type": "dense", "units": 512}])))
    assert small is not None and large is not None and small != large  # no 128x padding


def test_each_member_sees_its_last_gradient_as_alone(registry):
    rnd = random.Random(23)
    specs = [spec(rnd, "sgd", regularization={"kind": "l2", "rate": 0.01}) for _ in range(3)]
    alone = [trainer(registry, s) for s in specs]
    members = [trainer(registry, s) for s in specs]
    family = DenseFamily(members)
    family.train(17)
    for a, b in zip(alone, members, strict=True):
        a.train_batches(17)
        for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
            assert torch.allclose(pa.grad, pb.grad, atol=TOL, rtol=0)
    family.release()


def test_every_optimizer_and_penalty_in_one_family(registry):
    # Each optimizer kind updates its own rows; SGD, momentum and Nesterov share one formula,
    # Adam and AdamW another; L1, L2 and none share the penalty columns.
    rnd = random.Random(29)
    specs = []
    for i, name in enumerate(["sgd", "momentum", "nesterov", "adagrad", "adam", "adamw",
                              "sgd", "adam"]):
        kind = ("none", "l1", "l2")[i % 3]
        s = spec(rnd, name, lr=0.01, regularization={"kind": kind, "rate": 0.002})
        training = s.training.model_dump(mode="json")
        training["optimizer"].update(momentum=0.5, weight_decay=0.001 * (i % 2))
        specs.append(s.model_copy(update={"training": type(s.training).model_validate(training)}))
    twins(registry, specs)


def test_a_members_weights_at_each_epoch_end_of_a_call_are_its_solo_weights(registry):
    """`state_at` (the timeline's exact pictures of family members): the state dict at the
    end of every epoch that ended during the last call equals the job's own at that epoch."""
    rnd = random.Random(11)
    specs = [spec(rnd, "momentum") for _ in range(3)]
    members = [trainer(registry, s) for s in specs]
    family = DenseFamily(members)
    results = family.train(70)
    for s, member in zip(specs, members, strict=True):
        records, error = results[member]
        assert error is None and len(records) >= 2
        alone = trainer(registry, s)
        for record in records:
            while alone.epoch < record["epoch"]:
                alone.train_epoch()
            step, state_of = family.state_at(member, record["epoch"])
            state = state_of()
            assert step == alone.step == record["step"]
            own = alone.model.state_dict()
            assert set(state) == set(own)
            for name, tensor in own.items():
                assert torch.allclose(state[name], tensor, atol=TOL, rtol=0), name
        assert family.state_at(member, records[-1]["epoch"] + 1) is None
    family.release()
