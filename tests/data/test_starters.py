"""Every data set's starter (the setup it opens with, `starter` in the catalogue) learns.

For every set the registry knows (the built-in ones, collected from the kind modules, and two
uploaded CSVs, which get a generic starter), the starter becomes a job spec with the set's
default params and is trained with the real Trainer for the starter's own epochs; the test
accuracy (classification) or test R^2 (regression) must reach the `expect` written next to
the starter. The point sets are also trained from other seeds (a newcomer's Reset draws a new
one, Regenerate a new data seed). A new data set is covered without a new test.

Run with `-s` to print each set's time and score (the table in docs/DATASETS.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from server.config import Settings
from server.data.registry import BUILTIN, DataRegistry
from server.data.starters import table_starter
from server.spec.job import JobSpec
from server.train.trainer import Trainer
from tests.conftest import LiveServer


def _csv(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def _uploads() -> dict[str, tuple[bytes, str, float]]:
    """Two learnable tables a newcomer might bring: name -> (CSV bytes, target column, the
    score their generic starter must reach; higher than its floor, since these are easy)."""
    rng = np.random.default_rng(7)
    a, b, c = rng.normal(size=(3, 300))
    label = np.where(a + 0.5 * b > 0, "yes", "no")
    classes = _csv("a,b,c,label", [f"{x:.4f},{y:.4f},{z:.4f},{t}"
                                   for x, y, z, t in zip(a, b, c, label, strict=True)])
    value = 2 * a - b + 0.1 * c
    values = _csv("a,b,c,value", [f"{x:.4f},{y:.4f},{z:.4f},{t:.4f}"
                                  for x, y, z, t in zip(a, b, c, value, strict=True)])
    return {"upload_classes": (classes, "label", 0.9), "upload_values": (values, "value", 0.9)}


UPLOADS = _uploads()
NAMES = [d.name for d in BUILTIN] + list(UPLOADS)
POINT_SETS = [d.name for d in BUILTIN if d.kind == "points2d"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> DataRegistry:
    path: Path = tmp_path_factory.mktemp("starters")
    reg = DataRegistry(path / "uploads", Settings(data_dir=path))
    for name, (content, target, _) in UPLOADS.items():
        reg.add_upload(content, target, name=name)
    return reg


def job(registry: DataRegistry, name: str, seed: int = 0, data_seed: int = 1) -> JobSpec:
    """The job a newcomer runs: the catalogue's starter, default params, the given seeds."""
    starter = registry.entry(name)["starter"]
    dataset = {"name": name, "seed": data_seed}
    if "features" in starter:
        dataset["features"] = starter["features"]
    return JobSpec.model_validate({
        "dataset": dataset,
        "model": starter["model"],
        "training": {**starter["training"], "seed": seed},
    })


def score(registry: DataRegistry, spec: JobSpec) -> tuple[float, float]:
    """Train `spec` to its last epoch; (test accuracy or test R^2, seconds)."""
    start = time.perf_counter()
    trainer = Trainer(spec, registry.load(spec.dataset), "cpu")
    records = trainer.train_batches(10**9)
    seconds = time.perf_counter() - start
    assert trainer.finished and trainer.stop_reason == "epochs"
    assert records[-1]["epoch"] == spec.training.epochs
    metric = "test_accuracy" if trainer.shape.task == "classification" else "test_r2"
    return float(records[-1][metric]), seconds


def test_every_set_has_a_starter_in_the_catalogue_shape(registry: DataRegistry) -> None:
    assert registry.names() == NAMES  # the parametrized tests below cover every set
    for entry in registry.catalog():
        starter = entry["starter"]
        assert set(starter) == ({"features", "model", "training"} if entry["kind"] == "points2d"
                                else {"model", "training"}), entry["name"]
        assert set(starter["model"]) == {"layers"}
        assert set(starter["training"]) == {"optimizer", "batch_size", "epochs"}
        assert set(starter["training"]["optimizer"]) == {"name", "learning_rate"}
        assert isinstance(starter["training"]["epochs"], int)
        if entry["kind"] == "points2d":
            assert set(starter["features"]) <= set(entry["features"])


def test_the_named_starters(registry: DataRegistry) -> None:
    circle = registry.entry("circle")["starter"]
    assert circle["features"] == ["x1", "x2"]
    assert circle["model"]["layers"] == [{"type": "dense", "units": 4, "activation": "tanh"},
                                         {"type": "dense", "units": 2, "activation": "tanh"}]
    assert circle["training"]["optimizer"] == {"name": "sgd", "learning_rate": 0.03}
    assert circle["training"]["batch_size"] == 10
    marker = registry.entry("marker")["starter"]
    assert marker["model"]["layers"] == [{"type": "lstm", "units": 16}]
    assert marker["training"]["optimizer"]["name"] == "adam"
    recall = registry.entry("recall")["starter"]["model"]["layers"]
    assert recall[-1] == {"type": "pool_sequence", "mode": "last"}
    assert registry.entry("line")["starter"]["features"] == ["x1"]
    assert len(registry.entry("spiral")["starter"]["features"]) > 2


def test_the_api_serves_the_starters_and_each_one_fits_its_set(server: LiveServer,
                                                               registry: DataRegistry) -> None:
    """GET /api/catalog, /api/datasets and /api/datasets/{name} carry the registry's starter;
    POST /api/models/check accepts each one on its set; an upload gets a starter too."""
    with server.client() as client:
        catalog = {e["name"]: e for e in client.get("/api/catalog").json()["datasets"]}
        listed = {e["name"]: e for e in client.get("/api/datasets").json()}
        for d in BUILTIN:
            starter = registry.entry(d.name)["starter"]
            assert catalog[d.name]["starter"] == listed[d.name]["starter"] == starter
            assert client.get(f"/api/datasets/{d.name}").json()["starter"] == starter
            body = job(registry, d.name).model_dump(mode="json", include={"dataset", "model",
                                                                          "training"})
            check = client.post("/api/models/check", json=body)
            assert check.status_code == 200, (d.name, check.text)
        content, target, _ = UPLOADS["upload_values"]
        made = client.post("/api/datasets", data={"target": target, "name": "starter_values"},
                           files={"file": ("values.csv", content, "text/csv")})
        assert made.status_code == 201, made.text
        generic = table_starter("regression", 300).as_spec()
        assert made.json()["starter"] == generic
        assert client.get("/api/datasets/starter_values").json()["starter"] == generic


def test_an_upload_starter_is_sized_from_its_rows() -> None:
    small, large = table_starter("classification", 300), table_starter("regression", 100_000)
    assert (small.batch_size, small.epochs) == (10, 100)
    assert (large.batch_size, large.epochs) == (128, 10)
    assert table_starter("classification", 0).epochs == 100  # an unreadable upload still lists


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_starter_learns(registry: DataRegistry, name: str, one_thread) -> None:
    expect = max(registry.starter(name).expect, UPLOADS.get(name, ("", "", 0.0))[2])
    reached, seconds = score(registry, job(registry, name))
    print(f"\n{name}: {reached:.3f} (expect >= {expect}) in {seconds:.2f} s")
    assert reached >= expect


@pytest.mark.slow
@pytest.mark.parametrize("name", POINT_SETS)
def test_a_point_set_starter_learns_from_other_seeds(registry: DataRegistry, name: str,
                                                     one_thread) -> None:
    """Reset draws new weights (training seed), Regenerate new points (data seed)."""
    expect = registry.starter(name).expect
    reached = {seed: score(registry, job(registry, name, seed, seed + 1))[0]
               for seed in range(1, 5)}
    print(f"\n{name} seeds 1-4: " + ", ".join(f"{v:.3f}" for v in reached.values()))
    assert min(reached.values()) >= expect, reached
