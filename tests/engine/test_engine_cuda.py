"""The engine on a CUDA device (skipped without one): a real out-of-memory error fails only its
job and frees its memory, and the next job trains on the GPU."""

from __future__ import annotations

import time

import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine.engine import OUT_OF_MEMORY, Engine, default_trainer_factory
from server.spec.job import JobSpec
from server.store import Store
from tests.engine.common import xor_spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class DirectLoop:
    def call_soon_threadsafe(self, fn, *args):
        fn(*args)


def factory(spec, dataset, device):
    trainer = default_trainer_factory(spec, dataset, device)
    if spec.name == "greedy":
        def train_batches(n):  # asks for far more than any GPU has
            trainer.hog = torch.empty(1 << 40, dtype=torch.uint8, device=device)
            return []
        trainer.train_batches = train_batches
        trainer.ballast = torch.empty(1 << 30, dtype=torch.uint8, device=device)  # 1 GiB
    return trainer


def wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_out_of_memory_on_cuda_fails_only_its_job(tmp_path):
    settings = Settings(data_dir=tmp_path, device="auto")
    store = Store(tmp_path / "db.sqlite3")
    engine = Engine(settings, store, DataRegistry(tmp_path / "uploads", settings),
                    trainer_factory=factory)
    events = []
    engine.start(DirectLoop(), events.append)
    try:
        assert engine.device.type == "cuda"

        def create(name, epochs):
            spec = JobSpec.model_validate({**xor_spec(epochs=epochs), "name": name})
            row = store.create_job(token="t", owner="o", spec=spec.model_dump(mode="json"),
                                   status="queued")
            engine.create(row["id"], spec).result(30)
            return row["id"]

        steady = create("steady", None)
        wait(lambda: engine.progress(steady)["step"] > 0)
        base = torch.cuda.memory_allocated()
        greedy = create("greedy", None)
        wait(lambda: engine.progress(greedy)["status"] == "failed")
        assert store.get_job(greedy)["error"] == OUT_OF_MEMORY
        assert torch.cuda.memory_allocated() <= base + (1 << 20)  # the 1 GiB ballast is freed
        step = engine.progress(steady)["step"]
        wait(lambda: engine.progress(steady)["step"] > step + 100)
        after = create("after", 30)
        wait(lambda: engine.progress(after)["status"] in ("completed", "failed"))
        row = store.get_job(after)
        assert row["status"] == "completed" and row["metrics"]["test_accuracy"] >= 0.9
        export = engine.export(after, "safetensors").result(30)
        assert len(export) > 100
    finally:
        engine.stop()
        store.close()
