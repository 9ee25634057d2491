"""The engine with a small fake trainer: scheduling, queueing, controls, failure isolation,
checkpoints and recovery. Fast; the real trainer is exercised end to end in test_jobs_e2e."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from server.config import Settings
from server.engine.engine import Conflict, Engine, JobNotFound
from server.engine.events import Event
from server.spec.job import JobSpec
from server.store import Store
from server.train.protocol import Diverged

BATCHES_PER_EPOCH = 10
FAILING: dict[str, dict] = {}  # job name -> the FakeTrainer's fail_at_step, fail_with


class FakeTrainer:
    """A linear model trained on random data, with the Trainer interface the engine uses."""

    def __init__(self, spec: JobSpec, dataset, device) -> None:
        self.spec = spec
        torch.manual_seed(0)
        self.model = torch.nn.Linear(8, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01)
        self.x = torch.randn(16, 8)
        self.epoch = self.step = self.batch_in_epoch = 0
        self.epochs = spec.training.epochs
        self.finished = False
        self.stop_reason = None
        failing = FAILING.get(spec.name or "", {})  # the Rig names a job that is to fail
        self.fail_at_step = failing.get("fail_at_step")
        self.fail_with = failing.get("fail_with", "boom")

    def train_batches(self, n: int) -> list[dict]:
        records = []
        for _ in range(n):
            if self.finished:
                break
            if self.fail_at_step is not None and self.step >= self.fail_at_step:
                if self.fail_with == "diverged":
                    raise Diverged("diverged: loss became NaN at epoch 1; try a lower "
                                   "learning rate")
                if self.fail_with == "oom":
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
                raise ValueError("boom")
            loss = self.model(self.x).pow(2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.step += 1
            self.batch_in_epoch += 1
            if self.batch_in_epoch == BATCHES_PER_EPOCH:
                self.batch_in_epoch = 0
                self.epoch += 1
                records.append({"epoch": self.epoch, "step": self.step,
                                "train_loss": float(loss.detach())})
                if self.epochs is not None and self.epoch >= self.epochs:
                    self.finished, self.stop_reason = True, "epochs"
        return records

    def train_epoch(self) -> list[dict]:
        return self.train_batches(BATCHES_PER_EPOCH - self.batch_in_epoch)

    def set_epochs(self, epochs):
        self.epochs = epochs
        if self.stop_reason == "epochs" and (epochs is None or self.epoch < epochs):
            self.finished, self.stop_reason = False, None

    def state_tensors(self):
        return {f"model.{k}": v for k, v in self.model.state_dict().items()}

    def state_meta(self):
        return {"epoch": self.epoch, "step": self.step, "batch_in_epoch": self.batch_in_epoch,
                "finished": self.finished, "stop_reason": self.stop_reason}

    def load_state(self, tensors, meta):
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items()})
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.batch_in_epoch = meta["batch_in_epoch"]
        self.finished, self.stop_reason = meta["finished"], meta["stop_reason"]


class DirectLoop:
    def call_soon_threadsafe(self, fn, *args):
        fn(*args)


class FakeData:
    def load(self, spec):
        return object()


class Rig:
    def __init__(self, tmp_path, **settings) -> None:
        settings.setdefault("history_full_epochs", 0)  # every epoch stored, to be counted
        self.settings = Settings(data_dir=tmp_path, time_slice_ms=5, **settings)
        self.store = Store(tmp_path / "db.sqlite3")
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.engine = Engine(self.settings, self.store, FakeData(), trainer_factory=FakeTrainer)
        self.engine.start(DirectLoop(), self.on_event)

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def create(self, epochs=None, start=True, **failing) -> str:
        named = {}
        if failing:
            named["name"] = f"failing {len(FAILING)}"
            FAILING[named["name"]] = failing
        spec = JobSpec.model_validate({"dataset": {"name": "fake"}, "model": {"layers": []},
                                       "training": {"epochs": epochs}, "start": start, **named})
        row = self.store.create_job(token="t", owner="o", spec=spec.model_dump(mode="json"),
                                    status="queued" if start else "paused")
        self.engine.create(row["id"], spec).result(10)
        return row["id"]

    def wait(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("timed out")

    def status(self, job_id):
        return self.engine.progress(job_id)["status"]

    def close(self):
        self.engine.stop()
        self.store.close()


@pytest.fixture()
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_equal_jobs_get_equal_progress_and_a_late_job_is_not_starved(rig):
    ids = [rig.create() for _ in range(3)]
    time.sleep(0.3)
    late = rig.create()
    before = {i: rig.engine.progress(i)["step"] for i in ids + [late]}
    time.sleep(1.5)
    after = {i: rig.engine.progress(i)["step"] for i in ids + [late]}
    gains = [after[i] - before[i] for i in ids + [late]]
    assert min(gains) > 0
    assert max(gains) / min(gains) < 1.10, gains


def test_past_max_running_a_job_waits_queued(tmp_path):
    rig = Rig(tmp_path, max_running_jobs=2)
    try:
        a, b, c = rig.create(), rig.create(), rig.create()
        assert [rig.status(i) for i in (a, b, c)] == ["running", "running", "queued"]
        assert rig.engine.progress(c)["step"] == 0
        rig.engine.control(a, "pause").result(10)
        rig.wait(lambda: rig.status(c) == "running")
        rig.wait(lambda: rig.engine.progress(c)["step"] > 0)
        assert rig.store.get_job(c)["status"] == "running"
    finally:
        rig.close()


def test_pause_stops_progress_step_works_while_paused_and_resume_continues(rig):
    job = rig.create()
    rig.wait(lambda: rig.engine.progress(job)["step"] > 20)
    rig.engine.control(job, "pause").result(10)
    paused_at = rig.engine.progress(job)["step"]
    time.sleep(0.3)
    assert rig.engine.progress(job)["step"] == paused_at
    assert rig.store.get_job(job)["status"] == "paused"
    rig.engine.control(job, "step").result(10)
    assert rig.engine.progress(job)["step"] == paused_at + 1
    rig.engine.control(job, "step", "epoch").result(10)
    assert rig.engine.progress(job)["step"] % BATCHES_PER_EPOCH == 0
    rig.engine.control(job, "resume").result(10)
    rig.wait(lambda: rig.engine.progress(job)["step"] > paused_at + 50)


def test_completion_history_and_impossible_transitions(rig):
    job = rig.create(epochs=3)
    rig.wait(lambda: rig.status(job) == "completed")
    assert [r["epoch"] for r in rig.store.history(job)] == [1, 2, 3]
    row = rig.store.get_job(job)
    assert row["stop_reason"] == "epochs" and row["finished_at"] and row["epoch"] == 3
    with pytest.raises(Conflict, match="completed its 3 epochs"):
        rig.engine.control(job, "resume").result(10)
    with pytest.raises(Conflict, match="already completed"):
        rig.engine.control(job, "stop").result(10)
    with pytest.raises(JobNotFound):
        rig.engine.control("nope", "pause").result(10)
    statuses = [e.status for e in rig.events if e.job_id == job and e.type == "status"]
    assert statuses[0] == "running" and statuses[-1] == "completed"
    epochs = [r["epoch"] for e in rig.events if e.type == "metrics" and e.job_id == job
              for r in e.records]
    assert epochs == [1, 2, 3]
    rig.engine.control(job, "reset").result(10)
    assert rig.store.history(job) == [] and rig.status(job) == "paused"
    rig.engine.control(job, "resume").result(10)
    rig.wait(lambda: rig.status(job) == "completed")


def test_a_divergence_pauses_its_job_alone(rig):
    """Issue 16: a diverged job pauses (not fails) with the sentence and a `diverged` note; a
    trainer that cannot rewind itself goes back to its checkpoint."""
    healthy = rig.create()
    bad = rig.create(fail_at_step=5, fail_with="diverged")
    rig.wait(lambda: rig.status(bad) == "paused")
    row = rig.store.get_job(bad)
    assert row["error"].startswith("diverged: loss became NaN at epoch 1; ")
    assert row["stop_reason"] == "diverged"
    assert rig.engine.progress(bad)["diverged"]["loss"] == "NaN"
    assert not any(e.type == "error" and e.job_id == bad for e in rig.events)
    paused = [e for e in rig.events if e.type == "status" and e.job_id == bad
              and e.status == "paused"]
    assert paused[-1].diverged["message"] == row["error"]
    step = rig.engine.progress(healthy)["step"]
    rig.wait(lambda: rig.engine.progress(healthy)["step"] > step + 20)


@pytest.mark.parametrize("fail_with, message", [
    ("oom", "out of memory: this model does not fit in the device's memory; try fewer or "
            "smaller layers or a smaller batch size"),
    ("boom", "training failed: boom"),
])
def test_a_failure_stays_inside_its_job(rig, fail_with, message):
    healthy = rig.create()
    bad = rig.create(fail_at_step=5, fail_with=fail_with)
    rig.wait(lambda: rig.status(bad) == "failed")
    assert rig.store.get_job(bad)["error"] == message
    assert any(e.type == "error" and e.message == message for e in rig.events)
    step = rig.engine.progress(healthy)["step"]
    rig.wait(lambda: rig.engine.progress(healthy)["step"] > step + 20)
    assert rig.engine._jobs[bad].trainer is None  # its memory is freed
    after = rig.create(epochs=2)
    rig.wait(lambda: rig.status(after) == "completed")


def test_restart_comes_back_paused_at_the_checkpoint_without_gap_or_duplicate(tmp_path):
    rig = Rig(tmp_path, checkpoint_seconds=0.2)
    job = rig.create()
    rig.wait(lambda: rig.engine.progress(job)["epoch"] >= 5)
    time.sleep(0.3)
    # Simulate a crash: the worker dies without its shutdown checkpoint.
    rig.engine._worker.stopping = True
    rig.engine._worker.commands.put(None)
    rig.engine._worker.thread.join(10)
    rig.engine._jobs.clear()
    rig.store.close()
    written = len(Store(tmp_path / "db.sqlite3").history(job))
    rig2 = Rig(tmp_path)
    try:
        row = rig2.store.get_job(job)
        meta = rig2.store.checkpoint_meta(job)
        assert row["status"] == "paused" and row["epoch"] == meta["engine"]["epoch"]
        assert [r["epoch"] for r in rig2.store.history(job)] == list(range(1, row["epoch"] + 1))
        assert row["epoch"] <= written
        rig2.engine.control(job, "resume").result(10)
        rig2.wait(lambda: rig2.engine.progress(job)["epoch"] >= written + 2)
        rig2.engine.control(job, "pause").result(10)
        epochs = [r["epoch"] for r in rig2.store.history(job)]
        assert epochs == list(range(1, len(epochs) + 1))
    finally:
        rig2.close()


def test_snapshots_are_paced_and_first_frame_is_sent_at_once(rig, monkeypatch):
    frames = []

    def frame(trainer, dataset, options):
        frames.append(options)
        return b"frame"

    monkeypatch.setattr(rig.engine._table.frames.snapshots, "frame", frame)
    job = rig.create(start=False)
    rig.engine.subscribe(job, {"hz": 5, "layers": True}, subscriber="a").result(10)
    rig.wait(lambda: len(frames) == 1)
    assert frames[0] == {"layers": True, "detail": "full"}
    rig.engine.control(job, "resume").result(10)
    time.sleep(1.0)
    rig.engine.unsubscribe(job, subscriber="a").result(10)
    count = len(frames)
    assert 3 <= count <= 8, count
    time.sleep(0.3)
    assert len(frames) == count
    assert any(e.type == "snapshot" and e.data == b"frame" for e in rig.events)


def test_delete_frees_the_job_and_its_files(rig):
    job = rig.create(epochs=2)
    rig.wait(lambda: rig.status(job) == "completed")
    assert rig.store.checkpoint_path(job).exists()
    rig.engine.delete(job).result(10)
    assert rig.store.get_job(job) is None and not rig.store.checkpoint_path(job).exists()
    assert rig.engine.progress(job) is None
    assert rig.events[-1].status == "deleted"


def test_idle_trainers_beyond_the_limit_are_freed_and_reload_from_their_checkpoint(tmp_path):
    rig = Rig(tmp_path, max_running_jobs=1)
    try:
        jobs = [rig.create(start=False) for _ in range(3)]
        for job in jobs:
            rig.engine.control(job, "step", "epoch").result(10)
        rig.wait(lambda: sum(rig.engine._jobs[j].trainer is not None for j in jobs) <= 1)
        rig.engine.control(jobs[0], "step").result(10)
        assert rig.engine.progress(jobs[0])["step"] == BATCHES_PER_EPOCH + 1
        assert [r["epoch"] for r in rig.store.history(jobs[0])] == [1]
    finally:
        rig.close()


def test_a_job_nobody_watches_any_more_is_paused_whether_page_or_script_made_it(tmp_path):
    rig = Rig(tmp_path, unwatched_job_seconds=0.6)
    try:
        watched, budgeted = rig.create(), rig.create(epochs=10_000)
        scripted, polled = rig.create(), rig.create()
        for job_id in (watched, budgeted):
            rig.engine.subscribe(job_id, {"snapshots": False}, subscriber="tab").result(10)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # a script that polls its job over REST
            rig.engine.watched(polled)
            time.sleep(0.1)
        assert rig.status(watched) == "running"  # its tab is open
        assert rig.status(polled) == "running"
        # made by a script (REST) that never looked again: paused like a closed page's
        assert rig.status(scripted) == "paused"
        for job_id in (watched, budgeted):
            rig.engine.unsubscribe(job_id, subscriber="tab").result(10)
        rig.wait(lambda: rig.status(watched) == "paused")
        rig.wait(lambda: rig.status(polled) == "paused")  # it stopped polling
        assert rig.store.get_job(watched)["stop_reason"] == (
            "paused: nobody was watching it (the page was closed); press play to go on")
        # with an epoch budget: trains on
        assert rig.status(budgeted) in ("running", "completed")
        rig.engine.control(watched, "resume").result(10)
        assert rig.status(watched) == "running"
    finally:
        rig.close()


def test_the_engine_keeps_the_validated_spec_through_a_patch(rig):
    job = rig.create(start=False)
    assert isinstance(rig.engine._table.jobs[job].spec, JobSpec)
    answer = rig.engine.patch(job, {"training": {"epochs": 7}}).result(10)
    spec = rig.engine._table.jobs[job].spec
    assert isinstance(spec, JobSpec) and spec.training.epochs == 7
    assert answer == spec.model_dump(mode="json") == rig.store.get_job(job)["spec"]


def test_a_stored_spec_that_is_no_longer_valid_fails_only_its_job(tmp_path):
    rig = Rig(tmp_path)
    good = rig.create(start=False)
    bad = rig.store.create_job(token="t", owner="o", status="paused",
                               spec={"dataset": {"name": "fake"}, "model": {"layers": []},
                                     "training": {"epochs": 0}})["id"]
    rig.close()
    rig2 = Rig(tmp_path)
    try:
        assert rig2.status(good) == "paused" and rig2.status(bad) == "failed"
        assert rig2.store.get_job(bad)["error"].startswith("the job could not be built: ")
        rig2.engine.delete(bad).result(10)
        assert rig2.store.get_job(bad) is None
    finally:
        rig2.close()
