"""The rules of a challenge without a server (server/challenges/rules.py): which changes the
editable entries allow, what a student's setup is, which controls an entry reaches, the
metrics of a task and how a value meets a goal."""

from __future__ import annotations

import copy

import pytest

from server.challenges import rules

BASE = {"name": "a", "start": True,
        "dataset": {"name": "circle", "params": {"noise": 0.0}, "seed": 1},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"},
                             {"type": "dense", "units": 2, "activation": "tanh"}]},
        "training": {"epochs": 100, "early_stopping": None,
                     "optimizer": {"name": "sgd", "learning_rate": 0.03}}}


def changed(**where) -> dict:
    spec = copy.deepcopy(BASE)
    for path, value in where.items():
        parts = path.split("__")
        node = spec
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    return spec


def test_only_the_editable_paths_may_differ():
    lr = changed(training__optimizer__learning_rate=0.1, name="b", start=False)
    assert rules.locked_change(BASE, lr, ["learning_rate"]) is None
    assert rules.locked_change(BASE, lr, ["training.optimizer.learning_rate"]) is None
    assert rules.locked_change(BASE, lr, ["layers"]) == ("training", "optimizer", "learning_rate")
    assert rules.setup(BASE, lr) == {"training.optimizer.learning_rate": 0.1}
    # 0.1 as an int and a float are the same; True is not 1
    assert rules.differences({"a": 1}, {"a": 1.0}) == []
    assert rules.differences({"a": 1}, {"a": True}) == [("a",)]


def test_activation_reaches_every_layer_but_not_their_units_or_number():
    relu = changed(model__layers__0__activation="relu", model__layers__1__activation="relu")
    assert rules.locked_change(BASE, relu, ["activation"]) is None
    wider = changed(model__layers__0__units=8)
    assert rules.locked_change(BASE, wider, ["activation"]) == ("model", "layers", "0", "units")
    assert rules.locked_change(BASE, wider, ["model.layers.0.units"]) is None
    deeper = changed(model__layers=[*BASE["model"]["layers"], {"type": "dense", "units": 2}])
    assert rules.locked_change(BASE, deeper, ["activation"]) == ("model", "layers", "2")
    assert rules.locked_change(BASE, deeper, ["layers"]) is None


def test_an_object_for_null_is_one_change_at_its_path():
    early = changed(training__early_stopping={"patience": 5})
    assert rules.differences(BASE, early) == [("training", "early_stopping")]
    assert rules.setup(BASE, early) == {"training.early_stopping": {"patience": 5}}


def test_entries_are_controls_or_paths_in_the_spec():
    assert rules.check_entries(BASE, ["layers", "model.layers.*.units", "layers"], "editable") == [
        "layers", "model.layers.*.units"]
    for bad in ("name", "model.layers.5.units", "training.early_stopping.patience", "lr"):
        with pytest.raises(rules.SpecError) as err:
            rules.check_entries(BASE, ["seed", bad], "hidden")
        assert err.value.errors[0]["loc"] == ["hidden", 1]


def test_the_controls_an_entry_reaches():
    assert rules.controls_touching(["model.layers.0.units"]) == ["layers"]
    assert rules.controls_touching(["layers"]) == ["layers", "activation"]
    assert rules.controls_touching(["training.optimizer"]) == ["learning_rate", "optimizer",
                                                               "momentum"]


def test_metrics_and_goals():
    assert rules.metric_names("classification", 3, False) == [
        "test_loss", "test_accuracy", "test_precision", "test_recall", "test_f1",
        "train_loss", "train_accuracy", "train_precision", "train_recall", "train_f1"]
    assert "validation_auc" in rules.metric_names("classification", 2, True)
    assert rules.metric_names("regression", None, False) == [
        "test_loss", "test_mae", "test_r2", "train_loss", "train_mae", "train_r2"]
    assert rules.meets(0.05, "<=", 0.05) and not rules.meets(0.051, "<=", 0.05)
    assert rules.meets(0.95, ">=", 0.95) and not rules.meets(None, ">=", 0.1)
    assert rules.better(0.1, 0.2, "<=") and rules.better(0.3, 0.2, ">=")
    assert rules.better(0.1, None, ">=") and not rules.better(None, 0.1, "<=")
