"""Commands share the engine fairly with training (issue 12): a flood of `step` commands on one
job leaves another job at least half its steps a second and a new job is created at once,
and `step` writes no checkpoint of its own (the normal schedule does). Uses the fast fake
trainer of test_engine_unit."""

from __future__ import annotations

import threading
import time

from tests.engine.test_engine_unit import Rig


def _rate(rig: Rig, job_id: str, seconds: float) -> float:
    start = rig.engine.progress(job_id)["step"]
    time.sleep(seconds)
    return (rig.engine.progress(job_id)["step"] - start) / seconds


def test_a_flood_of_step_commands_leaves_another_job_half_its_speed(tmp_path):
    rig = Rig(tmp_path, checkpoint_seconds=60)
    stop = threading.Event()
    done = [0]

    def flood(job_id: str) -> None:
        while not stop.is_set():
            futures = [rig.engine.control(job_id, "step") for _ in range(200)]
            for future in futures:
                future.result(30)
            done[0] += len(futures)

    try:
        trained, flooded = rig.create(), rig.create(start=False)
        time.sleep(0.5)  # warm up
        alone = _rate(rig, trained, 1.5)
        flooder = threading.Thread(target=flood, args=(flooded,))
        flooder.start()
        time.sleep(0.3)
        during = _rate(rig, trained, 1.5)
        started = time.monotonic()
        rig.create(start=False)  # a newcomer's command waits for no flood
        created_in = time.monotonic() - started
        stop.set()
        flooder.join(30)
        assert done[0] > 100  # the flood was served, only not before everyone else
        assert during >= 0.5 * alone, (alone, during, done[0])
        assert created_in < 1.0, created_in
    finally:
        stop.set()
        rig.close()


def test_step_writes_no_checkpoint_the_schedule_does(tmp_path):
    rig = Rig(tmp_path, checkpoint_seconds=0.5)
    try:
        job = rig.create(start=False)
        path = rig.store.checkpoint_path(job)
        for _ in range(30):
            rig.engine.control(job, "step").result(10)
        assert not path.exists()  # 30 steps, no checkpoint yet
        rig.wait(path.exists, timeout=5)  # the schedule checkpoints a paused job too
        meta = rig.store.checkpoint_meta(job)
        assert meta["engine"]["step"] == 30
        written = path.stat().st_mtime_ns
        time.sleep(1.0)
        assert path.stat().st_mtime_ns == written  # nothing new trained: no new checkpoint
    finally:
        rig.close()
