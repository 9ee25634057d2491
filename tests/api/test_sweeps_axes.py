"""server/sweeps.py on its own (no server): which paths a spec offers, range values, random
draws, and where a variant's error is reported."""

from __future__ import annotations

import pytest

from server.data.registry import BUILTIN
from server.spec.errors import SpecError
from server.sweeps import SweepRequest, range_values, sweepable, variants

PARAMS = {d.name: d.params for d in BUILTIN}
CNN = {"dataset": {"name": "digits"},
       "model": {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3},
                            {"type": "flatten"}, {"type": "dropout", "p": 0.2},
                            {"type": "dense", "units": 16}]}}
XOR = {"dataset": {"name": "xor"}, "model": {"layers": [{"type": "dense", "units": 4}]}}


def request(base: dict, axes: list[dict], **extra) -> SweepRequest:
    return SweepRequest.model_validate({"base": base, "axes": axes, **extra})


def test_the_paths_of_a_spec_follow_its_layers_and_data_set() -> None:
    req = request(CNN, [{"path": "training.seed", "values": [1]}])
    paths = sweepable(req.base, PARAMS["digits"])
    assert paths["model.layers.0.filters"].kind == "int"
    assert paths["model.layers.2.p"].kind == "float"
    assert paths["model.layers.3.activation"].kind == "choice"
    assert "relu" in paths["model.layers.3.activation"].choices
    assert paths["model.layers.3.bias"].choices == (True, False)
    assert paths["training.epochs"].kind == "int"  # int | None
    assert paths["training.gradient_clip"].kind == "float"  # float | None
    assert paths["training.early_stopping.patience"].kind == "int"  # absent from the base
    assert {"name", "start", "dataset.name", "dataset.features",
            "model.layers.0.type"}.isdisjoint(paths)
    assert not any(p.startswith("model.layers.1.") for p in paths)  # flatten has no numbers
    assert not any(p.startswith("dataset.params.") and p not in (
        f"dataset.params.{k}" for k in PARAMS["digits"].model_fields) for p in paths)


def test_range_values_are_rounded_and_integers_distinct() -> None:
    req = request(XOR, [{"path": "training.optimizer.learning_rate", "range": [0.0001, 1],
                         "count": 5, "scale": "log"},
                        {"path": "model.layers.0.units", "range": [1, 2], "count": 4}])
    leaves = sweepable(req.base, PARAMS["xor"])
    lr, units = req.axes
    assert range_values(lr, leaves[lr.path]) == [0.0001, 0.001, 0.01, 0.1, 1.0]
    assert range_values(units, leaves[units.path]) == [1, 2]
    one = request(XOR, [{"path": lr.path, "range": [0.5, 0.9], "count": 1}]).axes[0]
    assert range_values(one, leaves[lr.path]) == [0.5]


def test_random_draws_depend_only_on_the_seed() -> None:
    def draw(seed: int) -> list[dict]:
        req = request({**XOR, "training": {"seed": seed}},
                      [{"path": "training.batch_size", "range": [1, 64], "scale": "log"},
                       {"path": "training.optimizer.name", "values": ["sgd", "adam"]}],
                      mode="random", count=6)
        return [v.values for v in variants(req, PARAMS["xor"], 64)]

    assert draw(3) == draw(3) != draw(4)
    assert all(isinstance(v["training.batch_size"], int) for v in draw(3))


def test_an_error_is_reported_at_the_axis_that_caused_it_else_at_the_base() -> None:
    req = request(XOR, [{"path": "training.optimizer.learning_rate", "values": [0.1]},
                        {"path": "dataset.train_fraction", "values": [0.5, 0.7]}])
    # validation_fraction 0.4 passes alone but not with train_fraction 0.7: the base is named
    req.base.dataset.validation_fraction = 0.4
    with pytest.raises(SpecError) as err:
        variants(req, PARAMS["xor"], 64)
    assert err.value.errors[0]["loc"] == ["base", "dataset", "validation_fraction"]
    assert "dataset.train_fraction=0.7" in err.value.errors[0]["msg"]
    req = request(XOR, [{"path": "model.layers.0.activation", "values": ["tanh", "swish"]},
                        {"path": "training.seed", "values": [1, 2]}])
    with pytest.raises(SpecError) as err:
        variants(req, PARAMS["xor"], 64)
    assert err.value.errors[0]["loc"] == ["axes", 0, "values", 1]
    assert err.value.errors[0]["msg"].startswith("axis 'model.layers.0.activation' value "
                                                 "\"swish\": unknown activation 'swish'")
