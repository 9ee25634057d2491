"""The server training on a real Ray cluster (issue 15): two nodes on loopback started here, the
server as a separate process (`python -m server` with PLAYGROUND_RAY_ADDRESS), real HTTP and
websocket clients. Jobs train on both nodes with the histories the in-process engine gives the
same seeds; a stream gets metrics and frames from a job on an actor; a node killed in the middle
of training: its jobs go on on the other node from their last checkpoint, their histories with
no gap and no epoch twice, their streams going on; an unreachable cluster stops the start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from safetensors.torch import load

pytest.importorskip("ray", reason="Ray is not installed: pip install '.[cluster]' runs these")

from tests.cluster.local import NODE, RAY_ENV, local_cluster  # noqa: E402
from tests.conftest import ROOT, free_port, start_server, stop_server  # noqa: E402
from tests.engine.common import (  # noqa: E402
    control,
    create,
    delete,
    get,
    history,
    wait_progress,
    wait_status,
    xor_spec,
)
from tests.stream.conftest import Client, connect  # noqa: E402

pytestmark = pytest.mark.slow
# Every job trains alone, here and in-process: a family batches its epoch-end evaluations by
# the slice, so its last float bits follow the timing (rank metrics such as AUC then differ).
SOLO = {"PLAYGROUND_FAMILIES": "false"}


@pytest.fixture(scope="module")
def cluster() -> Iterator:
    """The school of docs/CLUSTER.md on loopback: a head that trains nothing, two machines."""
    with local_cluster(nodes=3, head_cpus=0) as running:
        yield running


@pytest.fixture(scope="module")
def live(cluster, tmp_path_factory) -> Iterator:
    env = {**RAY_ENV, **SOLO, "PLAYGROUND_RAY_ADDRESS": cluster.address,
           "PLAYGROUND_CHECKPOINT_SECONDS": "1"}
    server = start_server(tmp_path_factory.mktemp("cluster-data"), env=env, timeout=240)
    yield server
    stop_server(server)


def actors(client) -> dict[str, dict]:
    """{actor: {"node", "address", "jobs", "running", ...}} from /metrics."""
    found: dict[str, dict] = {}
    for line in client.get("/metrics").text.splitlines():
        if not line.startswith("playground_cluster_actor_"):
            continue
        name, _, value = line.rpartition(" ")
        metric, _, labels = name.partition("{")
        fields = dict(part.split("=", 1) for part in labels.rstrip("}").split(","))
        fields = {k: v.strip('"') for k, v in fields.items()}
        entry = found.setdefault(fields["actor"], {"node": fields["node"],
                                                   "address": fields["address"]})
        entry[metric.removeprefix("playground_cluster_actor_")] = float(value)
    return found


def spec(seed: int, epochs: int | None, units: int = 8) -> dict:
    job = xor_spec(epochs=epochs, seed=seed)
    job["model"]["layers"][0]["units"] = units
    return job


def test_jobs_train_on_both_nodes_with_the_in_process_histories(live, tmp_path):
    seeds = [(0, 8), (1, 8), (2, 6), (3, 5)]
    with live.client() as client:
        jobs = [create(client, spec(seed, 12, units)) for seed, units in seeds]
        for job in jobs:
            wait_status(client, job["id"], "completed", timeout=120)
        on_cluster = [history(client, job["id"]) for job in jobs]
        where = actors(client)
        for job in jobs:
            delete(client, job["id"])
    assert len(where) == 2 and len({a["node"] for a in where.values()}) == 2, where
    assert {a["address"] for a in where.values()} == {"127.0.0.1"}
    assert all(a["jobs"] >= 1 for a in where.values()), where  # both nodes trained jobs

    alone = start_server(tmp_path / "in-process", env=SOLO)
    try:
        with alone.client() as client:
            jobs = [create(client, spec(seed, 12, units)) for seed, units in seeds]
            for job in jobs:
                wait_status(client, job["id"], "completed", timeout=120)
            in_process = [history(client, job["id"]) for job in jobs]
    finally:
        stop_server(alone)
    for remote, local in zip(on_cluster, in_process, strict=True):
        assert [r["epoch"] for r in remote] == list(range(1, 13))
        assert [r["epoch"] for r in local] == list(range(1, 13))
        for a, b in zip(remote, local, strict=True):
            for key, value in b.items():
                if isinstance(value, float):
                    assert a[key] == pytest.approx(value, abs=1e-6), (key, a["epoch"])


def test_a_stream_gets_metrics_and_frames_from_a_job_on_an_actor(live):
    with live.client() as client:
        job = create(client, spec(7, None))

        async def watch() -> tuple[dict, list, list]:
            async with connect(live, job["id"]) as ws:
                stream = Client(ws)
                hello = await stream.next("hello")
                header, arrays = await stream.next("snapshot", timeout=30)
                metrics = await stream.next("metrics", timeout=30)
                await stream.next("snapshot", timeout=30)  # frames keep coming after an ack
                return hello, [header, arrays], metrics["points"]

        hello, (header, arrays), points = asyncio.run(asyncio.wait_for(watch(), 90))
        delete(client, job["id"])
    assert hello["job_id"] == job["id"] and hello["kind"] == "points2d"
    assert header["job_id"] == job["id"] and arrays
    assert points and all(p["epoch"] >= 1 for p in points)


def test_a_job_on_an_actor_downloads_inspects_edits_and_patches(live):
    with live.client() as client:
        job = create(client, spec(5, 3))
        wait_status(client, job["id"], "completed", timeout=60)
        r = client.get(f"/api/jobs/{job['id']}/model?format=safetensors")
        assert r.status_code == 200 and load(r.content)
        assert (live.data_dir / "checkpoints" / f"{job['id']}.safetensors").exists()
        r = client.post(f"/api/jobs/{job['id']}/inspect", json={"point": [0.5, -0.5]})
        assert r.status_code == 200, r.text
        assert r.json()["layers"]
        r = client.post(f"/api/jobs/{job['id']}/inspect", json={"split": "test", "index": 10**6})
        assert r.status_code == 422  # the actor's SpecError, rebuilt on the server
        r = client.patch(f"/api/jobs/{job['id']}", json={"training": {"epochs": 5}})
        assert r.status_code == 200, r.text
        r = client.post(f"/api/jobs/{job['id']}/weights",
                        json={"layer": 0, "param": "weight", "index": [0, 0], "value": 0.25})
        assert r.status_code == 409  # completed, not paused: the engine's Conflict
        control(client, job["id"], "resume")
        done = wait_status(client, job["id"], "completed", timeout=60)
        assert done["progress"]["epoch"] == 5
        assert [r["epoch"] for r in history(client, job["id"])] == [1, 2, 3, 4, 5]
        delete(client, job["id"])
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404
        assert not (live.data_dir / "checkpoints" / f"{job['id']}.safetensors").exists()


def test_a_killed_node_s_jobs_go_on_elsewhere_with_whole_histories(cluster, live):
    """Four endless jobs over the two nodes, each watched by a stream; the second node is
    killed: its jobs (and only they) get the notice and go on within 30 s."""
    with live.client() as client:
        jobs = [create(client, spec(seed, None)) for seed in range(10, 14)]
        ids = [job["id"] for job in jobs]

        async def watch_all() -> dict:
            streams = {}
            for job_id in ids:
                streams[job_id] = Client(await connect(live, job_id))
                await streams[job_id].next("hello")
            for stream in streams.values():  # every job has trained a few checkpoints' worth
                await stream.next("metrics", timeout=60, where=lambda m: any(
                    p["epoch"] >= 20 for p in m["points"]))
            await asyncio.sleep(2.5)  # checkpoints every second: some epochs after the last
            worker = cluster.list_all_nodes()[2]
            on_worker = sum(a["jobs"] for a in client.get("/api/class/cluster").json()["actors"]
                            if a["node"] == worker.node_id)
            killed_at = time.monotonic()
            await asyncio.to_thread(cluster.remove_node, worker, False)
            moved, back = {}, {}

            async def follow(job_id: str, stream: Client) -> None:
                notice = await stream.next("status", timeout=40, where=lambda m: (
                    m.get("stop_reason") or "").startswith("moved:"))
                moved[job_id] = notice
                await stream.next("status", timeout=40, where=lambda m: m["status"] == "running")
                back[job_id] = time.monotonic() - killed_at
                epoch = notice["epoch"]
                await stream.next("metrics", timeout=40, where=lambda m: any(
                    p["epoch"] > epoch + 20 for p in m["points"]))

            tasks = {asyncio.create_task(follow(j, s)) for j, s in streams.items()}
            finished: set = set()
            deadline = time.monotonic() + 90
            while (len(finished) < on_worker and tasks - finished
                   and time.monotonic() < deadline):
                done, _ = await asyncio.wait(tasks - finished, timeout=deadline - time.monotonic(),
                                             return_when=asyncio.FIRST_COMPLETED)
                finished |= done
            for task in tasks - finished:  # the jobs that stayed: no notice comes
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for stream in streams.values():  # the jobs that stayed kept streaming too
                await stream.next("metrics", timeout=20)
            points = {j: s.points() for j, s in streams.items()}
            for stream in streams.values():
                await stream.ws.close()
            return {"moved": moved, "back": back, "points": points, "on_worker": on_worker}

        seen = asyncio.run(asyncio.wait_for(watch_all(), 240))
        for job_id in ids:
            client.post(f"/api/jobs/{job_id}/control", json={"action": "pause"})
        for job_id in ids:
            wait_status(client, job_id, "paused", timeout=60)
        finals = {job_id: (get(client, job_id), history(client, job_id)) for job_id in ids}
        where = actors(client)
        for job_id in ids:
            delete(client, job_id)

    assert 1 <= seen["on_worker"] <= 3  # both nodes trained some of the four
    assert len(seen["moved"]) == seen["on_worker"], seen["moved"]  # the killed node's jobs
    assert set(seen["back"]) == set(seen["moved"])
    assert all(seconds <= 30 for seconds in seen["back"].values()), seen["back"]
    assert len(where) == 1, where  # one actor left, on the other machine
    for job_id, (job, records) in finals.items():
        epochs = [r["epoch"] for r in records]
        assert epochs == list(range(1, job["progress"]["epoch"] + 1)), job_id  # no gap, no twice
        streamed = [p["epoch"] for p in seen["points"][job_id]]
        assert streamed == sorted(set(streamed)), job_id  # the stream never repeats an epoch
        assert streamed == list(range(streamed[0], streamed[-1] + 1)), job_id


def test_with_no_machine_left_jobs_wait_queued_and_go_on_when_one_joins(cluster, live):
    with live.client() as client:
        jobs = [create(client, spec(seed, None)) for seed in (20, 21)]
        for job in jobs:
            wait_status(client, job["id"], "running", timeout=60)
        deadline = time.monotonic() + 60
        while min(get(client, j["id"])["progress"]["epoch"] for j in jobs) < 30:
            assert time.monotonic() < deadline, "the jobs did not train"
            time.sleep(0.2)
        cluster.remove_node(cluster.list_all_nodes()[1], False)  # the last training machine
        for job in jobs:
            waiting = wait_status(client, job["id"], "queued", timeout=30)
            assert waiting["stop_reason"].startswith("moved:")
        late = create(client, spec(22, None))  # made while no machine is there: it waits too
        assert get(client, late["id"])["status"] == "queued"
        assert client.get("/api/class/cluster").json() == {"enabled": True, "actors": [],
                                                           "waiting": 3}
        r = client.post(f"/api/jobs/{late['id']}/control", json={"action": "step"})
        assert r.status_code == 409 and "no machine running now" in r.json()["detail"]
        cluster.add_node(**NODE)  # a machine comes back
        for job in [*jobs, late]:
            wait_status(client, job["id"], "running", timeout=120)
        wait_progress(client, late["id"], "epoch", 5, timeout=60)
        for job in [*jobs, late]:
            control(client, job["id"], "pause")
            paused = wait_status(client, job["id"], "paused", timeout=60)
            epochs = [r["epoch"] for r in history(client, job["id"])]
            assert epochs == list(range(1, paused["progress"]["epoch"] + 1))
            delete(client, job["id"])


def test_a_restarted_server_finds_its_jobs_paused_and_they_go_on(cluster, live):
    """The server stops (its actors checkpoint and send what they trained) and starts again on
    the same cluster and data: the job is paused where it was and trains on from there."""
    with live.client() as client:
        job = create(client, spec(30, None))
        wait_progress(client, job["id"], "epoch", 15, timeout=60)
    stop_server(live)
    again = start_server(live.data_dir, env={**RAY_ENV, **SOLO,
                                             "PLAYGROUND_RAY_ADDRESS": cluster.address},
                         timeout=240)
    try:
        with again.client() as client:
            paused = get(client, job["id"])
            assert paused["status"] == "paused" and paused["progress"]["epoch"] >= 15
            epochs = [r["epoch"] for r in history(client, job["id"])]
            assert epochs == list(range(1, paused["progress"]["epoch"] + 1))
            control(client, job["id"], "resume")
            wait_progress(client, job["id"], "epoch", paused["progress"]["epoch"] + 10)
            control(client, job["id"], "pause")
            done = wait_status(client, job["id"], "paused")
            epochs = [r["epoch"] for r in history(client, job["id"])]
            assert epochs == list(range(1, done["progress"]["epoch"] + 1))
            delete(client, job["id"])
    finally:
        stop_server(again)


def test_an_unreachable_cluster_stops_the_start_with_exit_2(tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "server", "--port", str(free_port()), "--data-dir",
         str(tmp_path), "--ray", f"127.0.0.1:{port}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"error: The Ray cluster at 127.0.0.1:{port} cannot be reached" in done.stderr
    assert "docs/CLUSTER.md" in done.stderr
    assert time.monotonic() - started < 30
