"""Batched frames of a family's watched jobs (issue 17, server/engine/family_frames.py).

First with real trainers, a real `DenseFamily` and the per-job `Snapshots.frame` as the oracle:
for families of mixed widths, features, optimizers and activations (tanh with bce, relu with
dropout on three classes, sigmoid hidden units on a regression set) the batched frames decode
to the per-job frames: same header, arrays, shapes and dtypes, maps within one quantization
step, histograms, confusion matrices and weights equal; "boundary" detail too, and for any
subset of the members. Then through a running server: several watched jobs of one family get
frames made in one pass (the same time stamp) whose maps are what their own weights compute.
"""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np
import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine.family_frames import FamilyFrames, batch_family
from server.engine.samples import BOUNDARY, THUMBNAIL, grid_xy
from server.engine.snapshot import Snapshots
from server.spec.job import JobSpec
from server.stream import wire
from server.train.family import DenseFamily, family_key
from server.train.trainer import Trainer
from tests.conftest import start_server, stop_server
from tests.engine.common import create, delete
from tests.stream.conftest import Client, connect, run

FEATURES = [["x1", "x2"], ["x1", "x2", "x1^2", "x2^2"], ["x1", "x2", "x1*x2", "sin(x1)"],
            ["x1^2", "x2^2"]]
OPTIMIZERS = [("sgd", 0.03), ("adam", 0.01), ("momentum", 0.01)]


def spec(rnd: random.Random, dataset: str, hidden: list, **training) -> dict:
    """One student's variant: `hidden` is a list of ("dense", activation) / ("dropout", p)."""
    layers = []
    for kind, value in hidden:
        layers.append({"type": "dense", "units": rnd.randint(2, 8), "activation": value}
                      if kind == "dense" else {"type": "dropout", "p": value})
    name, rate = rnd.choice(OPTIMIZERS)
    return {"dataset": {"name": dataset, "features": rnd.choice(FEATURES)},
            "model": {"layers": layers},
            "training": {"epochs": None, "batch_size": rnd.choice([10, 30]),
                         "seed": rnd.randint(0, 999),
                         "optimizer": {"name": name, "learning_rate": rate}, **training}}


CASES = {
    "tanh, bce": ("circle", [("dense", "tanh"), ("dense", "tanh")], {}),
    "relu with dropout, 3 classes": ("blobs", [("dropout", 0.1), ("dense", "relu"),
                                               ("dropout", 0.2), ("dense", "relu")], {}),
    "sigmoid units, regression": ("plane", [("dense", "sigmoid")], {"loss": "mse"}),
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> DataRegistry:
    path = tmp_path_factory.mktemp("data")
    return DataRegistry(path, Settings(data_dir=path))


def family_of(registry: DataRegistry, case: str, k: int, seed: int):
    dataset, hidden, training = CASES[case]
    rnd = random.Random(seed)
    trainers, datasets = [], []
    for _ in range(k):
        job = JobSpec.model_validate(spec(rnd, dataset, hidden, **training))
        data = registry.load(job.dataset)
        trainers.append(Trainer(job, data))
        datasets.append(data)
    assert len({family_key(t) for t in trainers}) == 1 and family_key(trainers[0])
    family = DenseFamily(trainers)
    family.train(40)  # weights and gradients that are not the initial ones
    by_trainer = dict(zip(map(id, trainers), datasets, strict=True))
    return family, [(m.trainer, by_trainer[id(m.trainer)]) for m in family.members]


def assert_same_frame(batched: bytes, alone: bytes) -> None:
    """Decoded, the batched frame is the per-job frame: header fields, array names in order,
    shapes, dtypes; quantized maps within one step; counts, ranges and weights equal."""
    h_b, a_b = wire.decode(batched)
    h_a, a_a = wire.decode(alone)
    assert h_b["time"] == pytest.approx(h_a["time"], abs=60)
    fields = lambda h: {k: v for k, v in h.items() if k not in ("arrays", "time")}  # noqa: E731
    assert fields(h_b) == fields(h_a)
    assert [m["name"] for m in h_b["arrays"]] == [m["name"] for m in h_a["arrays"]]
    for m_b, m_a in zip(h_b["arrays"], h_a["arrays"], strict=True):
        name = m_a["name"]
        assert (m_b["dtype"], m_b["shape"]) == (m_a["dtype"], m_a["shape"]), name
        if m_a["dtype"] == "uint8":
            step = (np.asarray(m_a["max"]) - np.asarray(m_a["min"])) / 255.0
            step = step.reshape((-1,) + (1,) * (len(m_a["shape"]) - 1))
            error = np.abs(wire.values(h_b, a_b, name) - wire.values(h_a, a_a, name))
            assert (error <= step * 1.001 + 1e-6).all(), (name, float(error.max()))
            assert m_b["min"] == pytest.approx(m_a["min"], abs=1e-5), name
            assert m_b["max"] == pytest.approx(m_a["max"], abs=1e-5), name
        elif name == "confusion":  # a test point on the threshold may move one count
            assert a_b[name].sum() == a_a[name].sum()
            assert np.abs(a_b[name].astype(int) - a_a[name]).sum() <= 2, name
        elif name.endswith("_hist"):
            assert m_b["range"] == m_a["range"], name
            np.testing.assert_array_equal(a_b[name], a_a[name], err_msg=name)
        else:  # the parameters themselves
            np.testing.assert_array_equal(a_b[name], a_a[name], err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_batched_frames_decode_to_the_per_job_frames(registry, case):
    family, members = family_of(registry, case, 7, seed=len(case))
    # Members 1..5 but 3 (two runs), mixed detail; the others are not due.
    due = [1, 2, 4, 5]
    detail = {1: "full", 2: "boundary", 4: "full", 5: "boundary"}
    items = [(*members[i], {"job_id": f"job{i}", "detail": detail[i]}) for i in due]
    snapshots = Snapshots()
    batched = FamilyFrames(snapshots).frames(family, items)
    assert len(snapshots.budget._costs) == len(items)  # charged: one part per frame
    alone = [Snapshots().frame(t, d, o) for t, d, o in items]
    for i, one, other in zip(due, batched, alone, strict=True):
        assert_same_frame(one, other)
        header, arrays = wire.decode(one)
        assert header["detail"] == detail[i] and header["job_id"] == f"job{i}"
        if detail[i] == "boundary":
            assert list(arrays) == ["output.boundary"]
        else:
            assert "layer0.heatmap" in arrays and "input.heatmap" in arrays
    # Every member, full; then again: `seq` goes on as the job's own count does.
    items = [(t, d, {"job_id": "j", "detail": "full"}) for t, d in members]
    frames = FamilyFrames(snapshots)
    frames.frames(family, items[:1])
    again = frames.frames(family, items)
    oracle = Snapshots()
    oracle.frame(*items[0])
    for n, (data, item) in enumerate(zip(again, items, strict=True)):
        assert wire.decode(data)[0]["seq"] == (2 if n in (0, 1, 2, 4, 5) else 1)
        if n in (0, 3, 6):
            assert_same_frame(data, oracle.frame(*item))


def test_only_family_members_on_points_are_batched(registry):
    family, members = family_of(registry, "tanh, bce", 3, seed=1)
    assert batch_family(*members[0]) is family
    job = JobSpec.model_validate(spec(random.Random(2), "circle", [("dense", "tanh")]))
    data = registry.load(job.dataset)
    lone = Trainer(job, data)
    assert batch_family(lone, data) is None
    with pytest.raises(ValueError, match="not a member"):
        FamilyFrames(Snapshots()).frames(family, [(lone, data, {})])
    family.release()
    assert batch_family(*members[0]) is None


def local_maps(job: dict, arrays: dict, registry: DataRegistry) -> tuple:
    """The job's output map and last hidden layer's heatmaps, computed here from the frame's
    own weights with plain torch (the job's model, rebuilt)."""
    spec_ = JobSpec.model_validate(job)
    data = registry.load(spec_.dataset)
    layers = len(job["model"]["layers"]) + 1

    def run_net(xy: np.ndarray) -> list[torch.Tensor]:
        h = torch.as_tensor(data.features_of(xy), dtype=torch.float32)
        outs = []
        for i in range(layers):
            h = h @ torch.tensor(arrays[f"layer{i}.weight"]).T \
                + torch.tensor(arrays[f"layer{i}.bias"])
            h = torch.tanh(h) if i < layers - 1 else torch.sigmoid(h)
            outs.append(h)
        return outs

    fine = run_net(grid_xy(data.domain, BOUNDARY))[-1].T.reshape(-1, BOUNDARY, BOUNDARY)
    hidden = run_net(grid_xy(data.domain, THUMBNAIL))[-2].T.reshape(-1, THUMBNAIL, THUMBNAIL)
    return fine.numpy(), hidden.numpy()


def within_a_step(header: dict, arrays: dict, name: str, want: np.ndarray) -> None:
    meta = next(m for m in header["arrays"] if m["name"] == name)
    step = (np.asarray(meta["max"]) - np.asarray(meta["min"])) / 255.0
    error = np.abs(wire.values(header, arrays, name) - want).reshape(len(step), -1).max(1)
    assert (error <= step + 1e-5).all(), (name, error, step)


def test_watched_jobs_of_a_family_get_batched_frames_of_their_own_models(tmp_path, registry):
    rnd = random.Random(11)
    specs = [spec(rnd, "circle", [("dense", "tanh"), ("dense", "tanh")]) for _ in range(4)]
    for s in specs:
        s["training"]["optimizer"] = {"name": "sgd", "learning_rate": 0.03}
    server = start_server(tmp_path / "data")
    try:
        with server.client() as http:
            ids = [create(http, s)["id"] for s in specs]

            async def watch(job_id: str, detail: str, seconds: float) -> list:
                async with connect(server, job_id) as ws:
                    client = Client(ws)
                    await client.next("hello")
                    await client.send({"type": "subscribe", "detail": detail, "hz": 20})
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        try:
                            await client.recv(timeout=max(0.05, end - time.monotonic()))
                        except TimeoutError:
                            break
                    return client.frames

            async def main():
                details = ["full", "full", "boundary"]  # the fourth job trains unwatched
                return await asyncio.gather(*(watch(i, d, 4.0)
                                              for i, d in zip(ids, details, strict=False)))

            received = run(main(), timeout=60)
            for job_id in ids:
                delete(http, job_id)
    finally:
        stop_server(server)
    full_a, full_b, light = received
    for frames in received:
        assert len(frames) >= 5, len(frames)
    # One pass made the three jobs' frames: they carry one time stamp.
    stamps = [{h["time"] for h, _ in frames if h["epoch"] > 0} for frames in received]
    assert stamps[0] & stamps[1] & stamps[2], stamps
    for header, arrays in light:
        if header["detail"] == "boundary":
            assert list(arrays) == ["output.boundary"]
    for job, frames in ((specs[0], full_a), (specs[1], full_b)):
        header, arrays = [f for f in frames if f[0]["detail"] == "full"][-1]
        assert header["weights"] is True and header["epoch"] > 0
        fine, hidden = local_maps(job, arrays, registry)
        within_a_step(header, arrays, "output.boundary", fine)
        within_a_step(header, arrays, "layer1.heatmap", hidden)
        assert arrays["layer0.heatmap"].shape[0] == job["model"]["layers"][0]["units"]
        assert arrays["input.heatmap"].shape[0] == len(job["dataset"]["features"])
