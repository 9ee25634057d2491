"""The stored history of a long run: every epoch of the first `history_full_epochs`, then one
in 10, past ten times as many one in 100 (server/engine/storage.py `history_keeps`), while the
job's latest metrics stay those of its last epoch and nothing else changes (live events carry
every epoch)."""

from __future__ import annotations

from types import SimpleNamespace

from server.api.hello import pick_epochs
from server.engine.storage import history_keeps, kept
from server.store import Store
from tests.conftest import start_server, stop_server
from tests.engine.common import circle_spec, control, create, get, history, wait_status
from tests.engine.test_engine_unit import Rig
from tests.stream.conftest import Client, connect, run


def test_which_epochs_are_kept():
    full = 20
    assert [e for e in range(1, 2_500) if history_keeps(e, full)] == [
        *range(1, 21), *range(30, 201, 10), *range(300, 2_001, 100)]
    assert all(history_keeps(e, 0) for e in range(1, 5_000))  # 0: every epoch, always
    # A run of a million epochs at the default 10,000 keeps about 28,000 of them.
    assert sum(history_keeps(e, 10_000) for e in range(1, 1_000_001)) == 10_000 + 9_000 + 9_000


def test_kept_records_and_the_latest_metrics_that_go_with_them():
    settings = SimpleNamespace(history_full_epochs=20, history_detail_epochs=10)
    records = [{"epoch": e, "train_loss": 1.0 / e} for e in range(25, 36)]
    stored, latest = kept(records, settings)
    assert [r["epoch"] for r in stored] == [30]
    assert latest == {"metrics": records[-1], "epoch": 35}
    stored, latest = kept(records[:6], settings)  # ends on a kept epoch: no extra field
    assert [r["epoch"] for r in stored] == [30] and latest == {}
    assert kept([], settings) == ([], {})


def test_the_hello_sample_is_even_over_epochs_not_records():
    # Every epoch stored: every stride-th epoch from the first, and the last.
    assert pick_epochs(list(range(1, 101)), 11) == ([*range(1, 100, 10), 100], 10)
    assert pick_epochs(list(range(1, 6)), 2) == ([1, 5], 5)
    # A thinned run of 2,000 epochs (1..20, then every 10th, then every 100th): a sample by
    # record would spend 19 of 20 points on the first 200 epochs.
    thinned = [e for e in range(1, 2_001) if history_keeps(e, 20)]
    chosen, stride = pick_epochs(thinned, 21)
    assert stride == 100
    assert chosen == [1, 110, *range(300, 2_001, 100)]  # the first stored at or after each
    assert pick_epochs([5, 7], 1) == ([7], 3)


def epochs(store: Store, job: str) -> list[int]:
    return [r["epoch"] for r in store.history(job)]


def test_a_long_run_stores_the_kept_epochs_and_its_last_metrics(tmp_path):
    rig = Rig(tmp_path, history_full_epochs=20)
    try:
        job = rig.create(epochs=250)
        rig.wait(lambda: rig.status(job) == "completed")
        assert epochs(rig.store, job) == [*range(1, 21), *range(30, 201, 10)]
        row = rig.store.get_job(job)
        assert row["epoch"] == 250 and row["metrics"]["epoch"] == 250

        def live() -> list[int]:  # a slice's events come after its status is set
            with rig.lock:
                return sorted({r["epoch"] for e in rig.events
                               if e.type == "metrics" and e.job_id == job for r in e.records})

        rig.wait(lambda: live()[-1:] == [250])
        assert live() == list(range(1, 251))  # the stream still gets every epoch
    finally:
        rig.close()


def test_a_family_stores_the_same_epochs_over_http(tmp_path):
    """Four jobs of one exercise, started together, train in families (their records written
    by `Storage.write_histories`) on a real server: each stores the kept epochs, and
    GET /api/jobs/{id} shows its last epoch's metrics."""
    server = start_server(tmp_path / "data", env={"PLAYGROUND_HISTORY_FULL_EPOCHS": "20",
                                                  "PLAYGROUND_HELLO_MAX_POINTS": "11"})
    try:
        with server.client() as client:
            jobs = [create(client, dict(circle_spec(epochs=250, seed=s), start=False))["id"]
                    for s in range(4)]
            for job in jobs:
                control(client, job, "resume")
            for job in jobs:
                wait_status(client, job, "completed")
                assert [r["epoch"] for r in history(client, job)] == [
                    *range(1, 21), *range(30, 201, 10)]
                row = get(client, job)
                assert row["progress"]["epoch"] == 250 and row["metrics"]["epoch"] == 250

            async def hello(job_id: str) -> dict:
                async with connect(server, job_id) as ws:
                    return await Client(ws).recv()

            # The hello's 11 points: 10 spread over the 200 stored epochs' span (stride 23),
            # and the last epoch, which only the job's latest metrics hold.
            shown = run(hello(jobs[0]))
            assert shown["history_total"] == 38 and shown["history_stride"] == 23
            assert [p["epoch"] for p in shown["metrics"]] == [
                1, 30, 50, 70, 100, 120, 140, 170, 190, 200, 250]
            assert shown["metrics"][-1] == get(client, jobs[0])["metrics"]
    finally:
        stop_server(server)
