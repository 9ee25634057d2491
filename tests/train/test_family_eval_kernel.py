"""A family's epoch-end evaluation in C (server/train/kernel/evaluate.c through
server.train.family_eval_kernel) gives the records of the torch path (family_eval._records).

Two kinds of check:
(Binary classification has one output unit: a spec cannot give it two, so the two-unit
binary path, kept as the torch path's, is not reached here.)

- exact: weights that pass an input straight through (every product by 1 or 0, sums with 0),
  so that both paths compute the very same outputs; then every record is equal: losses within
  1e-6, counts, accuracy, precision, recall, F1, AUC and R^2 to the last bit or 1e-12, with
  many tied scores (inputs rounded to one decimal), rows that are not a prefix, both of the C
  AUC's ways (pairs compared for few rows, a radix sort for many) and a NaN member.
- real families as they train (binary with one unit and bce, two units and cross entropy, three
  classes, regression; members of different widths, features, split sizes and one without a
  validation split): the two paths' outputs differ by float rounding (other sums, another
  tanh), so a count or an AUC may differ where two outputs, or an output and the threshold, lie
  within that rounding of each other. The allowance is computed, not guessed: from float64
  outputs, the rows within 1e-5 of the threshold (or of a tie between classes) and the
  (positive, negative) pairs within 1e-5 of each other; where there are none the values must
  be equal.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.spec.job import JobSpec
from server.train import family as family_module
from server.train.family import DenseFamily
from server.train.family_eval import evaluate_snapshots, forward
from server.train.family_eval_kernel import kernel_records
from server.train.trainer import Trainer

NEAR = 1e-5  # outputs this close may be ordered differently by the two paths
FEATURES = [["x1", "x2"], ["x1", "x2", "x1^2", "x2^2"],
            ["x1", "x2", "x1*x2", "sin(x1)", "sin(x2)", "x1^2", "x2^2"]]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("family-eval-kernel-data")
    return DataRegistry(path, Settings(data_dir=path))


def job(rnd: random.Random, *, dataset: str, loss: str | None = None,
        activation: str = "tanh", samples: int = 500, validation: float = 0.2,
        optimizer: str = "adam", lr: float = 0.01, **training) -> JobSpec:
    layers = [{"type": "dense", "units": rnd.randint(2, 8), "activation": activation},
              {"type": "dense", "units": rnd.randint(2, 8), "activation": activation}]
    extra = {"loss": loss} if loss else {}
    return JobSpec.model_validate({
        "dataset": {"name": dataset, "features": rnd.choice(FEATURES),
                    "params": {"noise": 0.1, "samples": samples},
                    "validation_fraction": validation},
        "model": {"layers": layers},
        "training": {"epochs": None, "batch_size": rnd.choice([10, 30]),
                     "seed": rnd.randint(0, 999),
                     "optimizer": {"name": optimizer, "learning_rate": lr}, **extra,
                     **training}})


def make_family(registry, specs: list[JobSpec]) -> DenseFamily:
    family = DenseFamily([Trainer(s, registry.load(s.dataset)) for s in specs])
    if family.kernel is None:
        pytest.skip("no C kernel here (no compiler, or PLAYGROUND_FAMILY_KERNEL=off)")
    return family


def torch_records(family, snapshots) -> dict:
    kernel, family.kernel = family.kernel, None
    try:
        return evaluate_snapshots(family, snapshots)
    finally:
        family.kernel = kernel


def info(epoch: int = 1, penalty=("none", 0.0)) -> dict:
    return {"lr": 0.01, "epoch": epoch, "step": 10 * epoch, "batch_size": 10,
            "penalty": penalty}


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a)
                      and math.isnan(b))


def assert_exactly_the_same(want: dict, got: dict) -> None:
    assert list(got) == list(want)
    for i in want:
        assert len(got[i]) == len(want[i])
        for (step_a, a, raw_a), (step_b, b, raw_b) in zip(want[i], got[i], strict=True):
            assert step_a == step_b
            assert same(raw_a, raw_b) or raw_b == pytest.approx(raw_a, abs=1e-6, rel=1e-6)
            assert list(a) == list(b)
            for key, value in a.items():
                if key.endswith("_loss") and value is not None:
                    assert b[key] == pytest.approx(value, abs=1e-6, rel=1e-6), key
                elif key.endswith(("_precision", "_recall", "_f1", "_mae", "_r2",
                                   "_penalty")) and value is not None:
                    assert b[key] == pytest.approx(value, abs=1e-12, rel=1e-6), key
                else:
                    assert b[key] == value, key  # counts, accuracy, AUC: to the bit


# -- exact: outputs that both paths compute alike -----------------------------------------


def pass_through(family, slot: int, outputs: list[int | None]) -> torch.Tensor:
    """Weights of member `slot` whose output unit u is input feature outputs[u] (None: 0),
    through every hidden layer (each passes features 0 and 1 on; the activations are linear or
    relu, which give x itself for the non-negative inputs these tests use)."""
    w = torch.zeros(family.size)
    denses = [o for o in family.ops if not isinstance(o, tuple)]
    for d, op in enumerate(denses):
        weights = w[op.w_at:op.w_at + op.out * op.inp].view(op.out, op.inp)
        if d < len(denses) - 1:
            weights[0, 0] = weights[1, 1] = 1.0
        else:
            for u, source in enumerate(outputs):
                if source is not None:
                    weights[u, source] = 1.0
    return w


def rounded_inputs(family, decimals: int = 1, holes: bool = False, seed: int = 0) -> None:
    """The family's evaluation inputs made non-negative and rounded (many tied outputs); with
    `holes`, every third real row of every member masked out (rows then not a prefix)."""
    x, target, index, labels, mask = family.eval_data
    x = (x.abs() * 10 ** decimals).round() / 10 ** decimals
    if holes:
        mask = mask.clone()
        mask[:, ::3] = False
    family.eval_data = (x, target, index, labels, mask)


@pytest.mark.parametrize("loss,dataset,outputs", [
    ("bce", "circle", [0]),  # one unit, threshold 0
    ("mse", "xor", [0]),  # one unit, threshold 0.5
    ("l1", "gauss", [1]),
    ("cross_entropy", "blobs", [0, 0, 1]),  # three classes: the first of tied maxima
    ("mse", "plane", [0]),  # regression
])
@pytest.mark.parametrize("holes", [False, True])
def test_same_outputs_give_the_same_records(registry, loss, dataset, outputs, holes):
    rnd = random.Random(loss + dataset)
    specs = [job(rnd, dataset=dataset, loss=loss, activation="relu",
                 validation=(0.0, 0.2, 0.3)[i % 3], samples=(300, 500, 200)[i % 3])
             for i in range(5)]
    family = make_family(registry, specs)
    assert family.units == len(outputs)
    rounded_inputs(family, holes=holes)
    rows = []
    for slot in range(family.k):
        rows.append(pass_through(family, slot, outputs))
        rows.append(pass_through(family, slot, outputs[::-1]))
    weights = torch.stack(rows)
    ended = [slot for slot in range(family.k) for _ in range(2)]
    snapshots = [(3, ended[:4], weights[:4].clone(), [info(1), info(2), info(1), info(2)]),
                 (7, ended[4:], weights[4:].clone(), [info(e) for e in range(3, 9)])]
    want, got = torch_records(family, snapshots), kernel_records(family, snapshots)
    assert_exactly_the_same(want, got)
    if family.task == "classification" and max(family.num_classes, 2) == 2:
        assert any(v[1]["train_auc"] not in (None, 1.0) for r in got.values() for v in r)
    have = family.split_data["validation"][5]
    assert not all(have)
    for i, made in got.items():  # a member without validation rows has no validation values
        assert all(("validation_loss" in record) == have[i] for _s, record, _r in made)


@pytest.mark.parametrize("rows", [40, 3000])  # pairs compared / a radix sort
def test_auc_with_ties_both_ways(registry, rows):
    rnd = random.Random(rows)
    specs = [job(rnd, dataset="circle", loss="bce", activation="linear") for _ in range(3)]
    family = make_family(registry, specs)
    generator = torch.Generator().manual_seed(rows)
    s_k = len(family.eval_splits) * family.k
    x = (torch.rand(s_k, rows, family.features, generator=generator) * 20).round() / 10 - 1
    x[0, :5, 0] = torch.tensor([0.0, -0.0, 0.0, -0.0, math.inf])  # -0 ties +0; inf: no AUC
    labels = torch.randint(0, 2, (s_k, rows), generator=generator)
    counts = torch.randint(rows // 2, rows + 1, (s_k,), generator=generator)
    mask = torch.arange(rows).unsqueeze(0) < counts.unsqueeze(1)
    mask[1, 7] = False  # a hole
    labels[2, :] = 1  # no negatives: no AUC
    family.eval_data = (x, labels.unsqueeze(-1).float(), labels, labels, mask)
    weights = torch.stack([pass_through(family, i, [0]) for i in range(family.k)])
    snapshots = [(0, list(range(family.k)), weights, [info() for _ in range(family.k)])]
    want, got = torch_records(family, snapshots), kernel_records(family, snapshots)
    assert_exactly_the_same(want, got)
    aucs = [v[1].get(f"{s}_auc") for r in got.values() for v in r for s in family.eval_splits]
    assert None in aucs and sum(a is not None and 0 < a < 1 for a in aucs) >= 3


def test_a_nan_member_and_penalties(registry):
    rnd = random.Random(2)
    specs = [job(rnd, dataset="circle", loss="bce", regularization=r)
             for r in ({"kind": "l1", "rate": 0.01}, {"kind": "l2", "rate": 0.02},
                       {"kind": "none", "rate": 0.0})]
    family = make_family(registry, specs)
    weights = family.flat.clone()
    weights[1, 0] = math.nan
    infos = [info(penalty=m.trainer.regularization) for m in family.members]
    snapshots = [(4, [0, 1, 2], weights, infos)]
    want, got = torch_records(family, snapshots), kernel_records(family, snapshots)
    assert math.isnan(got[1][0][2]) and got[1][0][1]["train_loss"] is None
    assert got[1][0][1]["train_auc"] is None and got[1][0][1]["train_penalty"] is None
    assert got[0][0][1]["train_penalty"] > 0 and got[2][0][1]["train_penalty"] == 0.0
    for i in (0, 2):  # the others as the torch path has them (its float32 sums, within 1e-6)
        for key, value in want[i][0][1].items():
            if isinstance(value, float):
                assert got[i][0][1][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    assert got[1][0][1]["train_confusion_matrix"] == want[1][0][1]["train_confusion_matrix"]


# -- real families as they train ----------------------------------------------------------


def near_counts(family, i: int, w: torch.Tensor, s: int) -> tuple[int, float]:
    """From float64 outputs of member i's split s: how many rows lie within NEAR of the class
    boundary, and the share of (positive, negative) pairs within NEAR of each other."""
    rows = [s * family.k + i]
    x, _target, _index, labels, mask = (t[rows] for t in family.eval_data)
    out, _ = forward(family, w.double().unsqueeze(0), x.double(), None,
                     unit_rows=torch.tensor([i]))
    out, m = out[0][mask[0]], mask[0]
    scale = NEAR * (1 + out.abs().amax(-1))
    if out.shape[1] == 1:
        near_rows = int(((out[:, 0] - family.threshold).abs() <= scale).sum())
        score = out[:, 0]
    else:
        top = out.topk(2, -1).values
        near_rows = int(((top[:, 0] - top[:, 1]).abs() <= scale).sum())
        score = out[:, 1] - out[:, 0] if out.shape[1] == 2 else None
    share = 0.0
    if score is not None and family.task == "classification":
        positive = labels[0][m] == 1
        pos, neg = score[positive], score[~positive]
        if len(pos) and len(neg):
            close = (pos.unsqueeze(1) - neg.unsqueeze(0)).abs() <= NEAR * (
                1 + pos.abs().unsqueeze(1))
            share = float(close.sum()) / (len(pos) * len(neg))
    return near_rows, share


def assert_close_records(family, snapshots, want: dict, got: dict) -> int:
    """The comparison of the module docstring; returns how many values had to be allowed for
    near ties."""
    assert list(got) == list(want)
    weights = {}
    for step, ended, w, _infos in snapshots:
        for row, i in enumerate(ended):
            weights[(step, i)] = w[row]
    allowed = 0
    for i in want:
        for (step, a, raw_a), (step_b, b, raw_b) in zip(want[i], got[i], strict=True):
            assert step == step_b and list(a) == list(b)
            assert raw_b == pytest.approx(raw_a, abs=1e-6, rel=1e-6) or same(raw_a, raw_b)
            for s, split in enumerate(family.eval_splits):
                if f"{split}_loss" not in a:
                    continue
                assert b[f"{split}_loss"] == pytest.approx(a[f"{split}_loss"], abs=1e-6,
                                                           rel=1e-6), split
                if family.task != "classification":
                    for key in ("mae", "r2"):
                        assert b[f"{split}_{key}"] == pytest.approx(a[f"{split}_{key}"],
                                                                    abs=1e-6), key
                    continue
                near_rows, share = near_counts(family, i, weights[(step, i)], s)
                cm_a, cm_b = a[f"{split}_confusion_matrix"], b[f"{split}_confusion_matrix"]
                moved = sum(abs(x - y) for ra, rb in zip(cm_a, cm_b, strict=True)
                            for x, y in zip(ra, rb, strict=True))
                assert moved <= 2 * near_rows, (split, cm_a, cm_b, near_rows)
                for key in ("accuracy", "precision", "recall", "f1"):
                    if moved == 0:
                        assert b[f"{split}_{key}"] == pytest.approx(a[f"{split}_{key}"],
                                                                    abs=1e-12), key
                allowed += moved > 0
                if f"{split}_auc" in a and a[f"{split}_auc"] is not None:
                    diff = abs(b[f"{split}_auc"] - a[f"{split}_auc"])
                    assert diff <= share + 1e-12, (split, diff, share)
                    allowed += diff > 0
                else:
                    assert b.get(f"{split}_auc") == a.get(f"{split}_auc")
    return allowed


def train_and_compare(family, monkeypatch, calls=(40, 80)) -> tuple[int, int]:
    """Trains the family (the C path); every chunk's snapshots are evaluated both ways and
    compared. (evaluations compared, values allowed for near ties)."""
    seen = []
    real = family_module.evaluate_snapshots

    def both(fam, snapshots):
        got = real(fam, snapshots)  # the C path (family.kernel is set)
        want = torch_records(fam, snapshots)
        seen.append(sum(len(v) for v in got.values()))
        seen.append(-assert_close_records(fam, snapshots, want, got))
        return got

    monkeypatch.setattr(family_module, "evaluate_snapshots", both)
    for n in calls:
        results = family.train(n)
        assert all(error is None for _records, error in results.values())
    return sum(v for v in seen if v > 0), -sum(v for v in seen if v <= 0)


@pytest.mark.parametrize("loss,dataset,units", [
    ("bce", "circle", 1), ("mse", "xor", 1), ("cross_entropy", "blobs", 3), ("mse", "plane", 1),
    ("huber", "gauss", 1)])
def test_training_families_give_the_torch_records(registry, monkeypatch, loss, dataset, units):
    rnd = random.Random(loss + dataset + "!")
    specs = [job(rnd, dataset=dataset, loss=loss, validation=(0.0, 0.2, 0.25)[i % 3],
                 samples=(500, 300, 420)[i % 3], optimizer=("adam", "sgd")[i % 2], lr=0.03)
             for i in range(6)]
    family = make_family(registry, specs)
    assert family.units == units
    assert not all(family.split_data["validation"][5])  # a member without validation rows
    compared, allowed = train_and_compare(family, monkeypatch)
    assert compared >= 20
    assert allowed <= compared  # near ties are rare: most values compare exactly
