"""Every built-in data set: catalogue entry, shapes, dtypes, label and value ranges, the
meaning of the targets, determinism, splits, params errors, previews."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from server.data.base import point_features
from server.data.registry import BUILTIN, DataRegistry, DataSetNotFound
from server.data.splits import split_indices
from server.spec.errors import SpecError
from server.spec.job import DatasetSpec

NAMES = [d.name for d in BUILTIN]
# Smaller than the defaults where that keeps the test quick.
SMALL = {"shapes": {"samples": 200}, "recall": {"samples": 500}, "digits": {"samples": 500}}
EXPECTED = {
    "circle", "xor", "gauss", "spiral", "moons", "blobs", "plane", "multi_gauss", "line",
    "iris", "wine", "breast_cancer", "diabetes", "digits", "shapes", "sine", "marker", "recall",
}


def spec(name: str, **kw) -> DatasetSpec:
    return DatasetSpec(name=name, params=kw.pop("params", SMALL.get(name, {})), **kw)


def test_catalog_lists_every_set_with_its_schema(registry: DataRegistry) -> None:
    entries = registry.catalog()
    assert {e["name"] for e in entries} == EXPECTED
    json.dumps(entries)  # JSON-ready
    for e in entries:
        assert e["task"] in ("classification", "regression")
        assert e["kind"] in ("points2d", "tabular", "image", "sequence")
        assert e["title"] and e["description"] and e["teaches"]
        assert e["params"]["type"] == "object" and e["params"]["additionalProperties"] is False
        props = e["params"]["properties"]
        if "samples" in props:
            assert props["samples"]["maximum"] <= registry.settings.max_samples
            assert "default" in props["samples"]
        if e["task"] == "classification":
            assert e["num_classes"] == len(e["class_names"]) >= 2
        else:
            assert e["num_classes"] is None and e["class_names"] == []
    by_name = {e["name"]: e for e in entries}
    assert by_name["digits"]["input_shape"] == [1, 8, 8]
    assert by_name["shapes"]["input_shape"] == [1, 16, 16]
    assert by_name["recall"]["input_tokens"] == 8 * 8 + 8
    assert by_name["recall"]["input_shape"] == [5]
    assert by_name["line"]["features"] == ["x1"]
    assert "standardized" in by_name["diabetes"]["notes"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_ranges(shared_registry: DataRegistry, name: str) -> None:
    s = spec(name, validation_fraction=0.2)
    shape = shared_registry.describe(s)
    ds = shared_registry.load(s)
    assert ds.shape == shape
    splits = [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]
    for x, y in splits:
        assert x.shape[1:] == shape.input.dims
        assert len(x) == len(y)
        if shape.input.tokens is None:
            assert x.dtype == np.float32 and np.isfinite(x).all()
        else:
            assert x.dtype == np.int64 and x.min() >= 0 and x.max() < shape.input.tokens
        if shape.task == "classification":
            assert y.dtype == np.int64 and y.ndim == 1
            assert y.min() >= 0 and y.max() < shape.num_classes
        else:
            assert y.dtype == np.float32 and y.shape[1:] == (1,) and np.isfinite(y).all()
    assert len(ds.x_train) > 0 and len(ds.x_val) > 0 and len(ds.x_test) > 0
    if shape.task == "classification":  # every class appears in training
        assert set(np.unique(ds.y_train)) == set(range(shape.num_classes))
    if shape.kind == "image":
        assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    if shape.kind == "points2d":
        assert ds.points_train.shape == (len(ds.x_train), 2)
        assert ds.points_test.shape == (len(ds.x_test), 2)
        assert ds.domain == (-6.0, 6.0)
        np.testing.assert_array_equal(ds.features_of(ds.points_train), ds.x_train)


@pytest.mark.parametrize("name", ["circle", "xor", "spiral", "moons", "plane", "multi_gauss"])
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_points_stay_in_the_playground_square(registry: DataRegistry, name: str,
                                              noise: float) -> None:
    ds = registry.load(spec(name, params={"noise": noise}))
    assert np.abs(ds.points_train).max() <= 6.0


def test_point_labels_follow_tf_playground(registry: DataRegistry) -> None:
    ds = registry.load(spec("circle", train_fraction=0.9))
    r = np.hypot(*ds.points_train.T)
    assert ((r < 2.5) == (ds.y_train == 1)).all()  # noise 0: inside the half radius is class 1
    assert ((r <= 2.5) | (r >= 3.5)).all()
    ds = registry.load(spec("xor", train_fraction=0.9))
    x, y = ds.points_train.T
    assert (np.abs(ds.points_train) >= 0.3).all()  # padding away from the axes
    assert ((x * y >= 0) == (ds.y_train == 1)).all()
    ds = registry.load(spec("plane", train_fraction=0.9))
    np.testing.assert_allclose(ds.y_train[:, 0], ds.points_train.sum(1) / 10, atol=1e-5)
    ds = registry.load(spec("multi_gauss", train_fraction=0.9))
    assert ds.y_train.min() >= -1 and ds.y_train.max() <= 1
    noisy = registry.load(spec("circle", params={"noise": 0.5}, train_fraction=0.9))
    inside = np.hypot(*noisy.points_train.T) < 2.5
    assert ((inside) != (noisy.y_train == 1)).any()  # noise flips some labels


def test_blobs_has_k_classes(registry: DataRegistry) -> None:
    s = spec("blobs", params={"classes": 5, "samples": 200})
    assert registry.describe(s).num_classes == 5
    assert registry.describe(s).output_units == 5
    assert set(registry.load(s).y_train) == set(range(5))


def test_line_has_one_feature_and_draws_x_y(registry: DataRegistry) -> None:
    s = spec("line", params={"slope": 2.0, "intercept": -1.0, "noise": 0.0})
    assert registry.describe(s).input.dims == (1,)
    ds = registry.load(s)
    assert ds.feature_names == ["x1"]
    np.testing.assert_allclose(ds.points_train[:, 1], ds.y_train[:, 0])
    np.testing.assert_allclose(ds.y_train[:, 0], 2.0 * ds.x_train[:, 0] - 1.0, atol=1e-5)
    grid = np.array([[1.0, 5.0], [-2.0, 3.0]])
    np.testing.assert_array_equal(ds.features_of(grid), [[1.0], [-2.0]])
    assert registry.describe(spec("line", features=["x1"])).input.dims == (1,)
    # A stored spec carries the default features explicitly; for line they mean x1.
    assert registry.describe(spec("line", features=["x1", "x2"])).input.dims == (1,)
    with pytest.raises(SpecError) as err:
        registry.describe(spec("line", features=["x1", "x1^2"]))
    assert err.value.errors[0]["loc"] == ["dataset", "features"]
    assert "x1^2" in str(err.value) and "allows only: x1" in str(err.value)


def test_features_map_coordinates(registry: DataRegistry) -> None:
    feats = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)", "cos(x1)", "cos(x2)"]
    s = spec("spiral", features=feats)
    assert registry.describe(s).input.dims == (9,)
    ds = registry.load(s)
    x1, x2 = ds.points_train[:, 0].astype(np.float64), ds.points_train[:, 1].astype(np.float64)
    expected = np.stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2), np.cos(x1),
                         np.cos(x2)], 1).astype(np.float32)
    np.testing.assert_array_equal(ds.x_train, expected)
    np.testing.assert_array_equal(point_features(ds.points_train, feats), expected)
    with pytest.raises(ValueError, match="two-dimensional point sets"):
        registry.load(spec("iris")).features_of(np.zeros((2, 2)))


def test_tabular_standardized_with_training_statistics(registry: DataRegistry) -> None:
    ds = registry.load(spec("wine", validation_fraction=0.2))
    np.testing.assert_allclose(ds.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(0), 1, atol=1e-4)
    assert np.abs(ds.x_test.mean(0)).max() > 1e-3  # the test split was not used
    d = registry.load(spec("diabetes"))
    assert abs(float(d.y_train.mean())) < 1e-5 and abs(float(d.y_train.std()) - 1) < 1e-4
    assert d.target_std is not None and d.target_std > 10
    assert registry.load(spec("iris", params={"samples": 60})).x_train.shape[0] == 30


def test_images_are_in_unit_range_and_digits_are_sklearns(registry: DataRegistry) -> None:
    from sklearn.datasets import load_digits

    ds = registry.load(DatasetSpec(name="digits", train_fraction=0.5))
    assert len(ds.x_train) + len(ds.x_test) == 1797
    known = {img.tobytes() for img in load_digits().images}
    assert all((img[0] * 16).astype(np.float64).tobytes() in known for img in ds.x_train[:20])
    noisy = registry.load(spec("shapes", params={"samples": 200, "noise": 0.5}))
    assert noisy.x_train.min() >= 0 and noisy.x_train.max() <= 1


def test_sequence_targets_mean_what_they_say(registry: DataRegistry) -> None:
    ds = registry.load(spec("recall", params={"samples": 300, "pairs": 3, "keys": 5, "values": 4},
                            train_fraction=0.9))
    keys, values = 5, 4
    for row, target in zip(ds.x_train, ds.y_train, strict=True):
        pair_keys, pair_values = row[:3] // values, row[:3] % values
        assert (row[:3] < keys * values).all() and len(set(pair_keys)) == 3
        asked = row[3] - keys * values
        assert 0 <= asked < keys
        assert pair_values[list(pair_keys).index(asked)] == target
    p = registry.preview("recall", {"pairs": "3", "keys": "5", "values": "4"})
    assert p["token_names"][:5] == ["A0", "A1", "A2", "A3", "B0"] and p["token_names"][-1] == "E?"
    m = registry.load(spec("marker", params={"length": 30, "early": 4, "noise": 0.1}))
    strongest = np.abs(m.x_train[:, :, 0]).argmax(1)
    assert (strongest < 4).all()
    signs = m.x_train[np.arange(len(strongest)), strongest, 0]
    assert (np.abs(signs) == 1).all() and ((signs > 0) == (m.y_train == 1)).all()
    s = registry.load(spec("sine", params={"noise": 0.0, "length": 10}))
    assert np.abs(s.x_train).max() <= 1.0 and np.abs(s.y_train).max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_same_spec_same_bits_other_seed_other_data(name: str, tmp_path) -> None:
    from server.config import Settings

    a = DataRegistry(tmp_path / "a", Settings()).load(spec(name, validation_fraction=0.1))
    b = DataRegistry(tmp_path / "b", Settings()).load(spec(name, validation_fraction=0.1))
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        left, right = getattr(a, field), getattr(b, field)
        assert left.dtype == right.dtype and left.tobytes() == right.tobytes(), field
    c = DataRegistry(tmp_path / "c", Settings()).load(spec(name, seed=2, validation_fraction=0.1))
    assert c.x_train.tobytes() != a.x_train.tobytes() or c.y_train.tobytes() != a.y_train.tobytes()


@pytest.mark.parametrize("name", ["spiral", "shapes", "breast_cancer", "recall"])
def test_splits_are_disjoint_and_cover_every_sample(registry: DataRegistry, name: str) -> None:
    params = {**SMALL.get(name, {}), **({"noise": 0.1} if name == "spiral" else {})}
    ds = registry.load(spec(name, params=params, train_fraction=0.6, validation_fraction=0.2))
    parts = [ds.x_train, ds.x_val, ds.x_test]
    rows = [{r.tobytes() for r in p.reshape(len(p), -1)} for p in parts]
    assert rows[0].isdisjoint(rows[1]) and rows[0].isdisjoint(rows[2])
    assert rows[1].isdisjoint(rows[2])
    total = sum(len(p) for p in parts)
    expected = {"spiral": 500, "shapes": 200, "breast_cancer": 569, "recall": 500}[name]
    assert total == expected
    assert abs(len(ds.x_train) - 0.6 * total) <= 10 and abs(len(ds.x_val) - 0.2 * total) <= 10


def test_split_indices_stratified_disjoint() -> None:
    y = np.array([0] * 90 + [1] * 10 + [2] * 30)
    train, val, test = split_indices(y, True, 0.5, 0.2, np.random.default_rng(0))
    all_ = np.concatenate([train, val, test])
    assert len(all_) == len(set(all_)) == len(y)
    assert np.bincount(y[train]).tolist() == [45, 5, 15]
    assert np.bincount(y[val]).tolist() == [18, 2, 6]
    assert np.bincount(y[test]).tolist() == [27, 3, 9]
    again = split_indices(y, True, 0.5, 0.2, np.random.default_rng(0))
    assert all((a == b).all() for a, b in zip((train, val, test), again, strict=True))


def test_stratified_on_real_data(registry: DataRegistry) -> None:
    ds = registry.load(spec("breast_cancer", train_fraction=0.7))
    share_train = ds.y_train.mean()
    share_test = ds.y_test.mean()
    assert abs(share_train - share_test) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "loc", "words"),
    [
        ({"name": "nope"}, ["dataset", "name"], ["Data set not found", "'nope'", "spiral"]),
        ({"name": "xor", "params": {"nosie": 0.1}}, ["dataset", "params", "nosie"],
         ["'nosie'", "samples, noise"]),
        ({"name": "xor", "params": {"noise": 0.9}}, ["dataset", "params", "noise"],
         ["0.9", "0.5"]),
        ({"name": "xor", "params": {"samples": "many"}}, ["dataset", "params", "samples"],
         ["'many'"]),
        ({"name": "spiral", "params": {"samples": 50_000}}, ["dataset", "params", "samples"],
         ["50000", "20000"]),
        ({"name": "recall", "params": {"pairs": 6, "keys": 4}}, ["dataset", "params"],
         ["keys (4)", "pairs (6)"]),
        ({"name": "marker", "params": {"length": 5, "early": 5}}, ["dataset", "params"],
         ["early (5)", "length (5)"]),
        ({"name": "line", "features": ["x2"]}, ["dataset", "features"], ["x2", "x1"]),
        ({"name": "line", "features": ["x1", "sin(x1)"]}, ["dataset", "features"],
         ["sin(x1)", "allows only: x1"]),
    ],
)
def test_bad_specs_name_the_field_and_the_choices(registry: DataRegistry, kwargs, loc,
                                                  words) -> None:
    with pytest.raises(SpecError) as err:
        registry.describe(DatasetSpec(**kwargs))
    assert err.value.errors[0]["loc"] == loc
    for word in words:
        assert word in str(err.value)
    with pytest.raises(SpecError):
        registry.load(DatasetSpec(**kwargs))


def test_empty_split_is_refused(registry: DataRegistry) -> None:
    with pytest.raises(SpecError, match="training split"):
        registry.load(spec("xor", params={"samples": 10}, train_fraction=0.01))


def test_features_ignored_for_other_kinds(registry: DataRegistry) -> None:
    assert registry.describe(spec("iris", features=["x1", "x2"])).input.dims == (4,)


def test_load_is_cached_and_thread_safe(registry: DataRegistry) -> None:
    s = spec("spiral", params={"samples": 400})
    results = []

    def worker() -> None:
        results.append(registry.load(s))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is results[0] for r in results)
    assert registry.load(s) is results[0]


@pytest.mark.parametrize("name", NAMES)
def test_preview(shared_registry: DataRegistry, name: str) -> None:
    p = shared_registry.preview(name, {k: str(v) for k, v in SMALL.get(name, {}).items()})
    json.dumps(p)
    assert p["name"] == name
    if p["kind"] == "points2d":
        assert len(p["points"]) == p["samples"]
        assert set(p["points"][0]) == {"x", "y", "label"}
    elif p["kind"] == "image":
        assert 4 <= len(p["images"]) <= 16
        pixels = np.array(p["images"][0]["pixels"])
        assert pixels.ndim == 3 and pixels.min() >= 0 and pixels.max() <= 1
        assert len({img["label"] for img in p["images"]}) == len(p["class_names"])
    elif p["kind"] == "sequence":
        assert 1 <= len(p["sequences"]) <= 8
    else:
        assert len(p["rows"]) == 20 and len(p["rows"][0]) == len(p["columns"])


def test_preview_params_from_query_strings(registry: DataRegistry) -> None:
    p = registry.preview("xor", {"noise": "0.2", "samples": "40"})
    assert p["params"] == {"noise": 0.2, "samples": 40} and len(p["points"]) == 40
    with pytest.raises(DataSetNotFound, match="Choose one of"):
        registry.preview("nope", {})
    with pytest.raises(SpecError) as err:
        registry.preview("xor", {"noise": "loud"})
    assert err.value.errors[0]["loc"] == ["query", "noise"]
