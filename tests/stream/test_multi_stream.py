"""The multi-job stream (`WS /api/streams`, docs/STREAM.md "The multi-job stream").

First its channel alone (server.stream.multi with a hub and a fake socket). Then a real
uvicorn on loopback (in this process, so that the tests can look at the hub's channels and the
engine's subscribers; its options are `python -m server`'s) and a real websocket client:
hellos and bundles for three jobs, one bundle per ack, the batched light metrics, refusals
that leave the rest accepted, the set's limit, a smaller set, a deleted job, control messages
refused, everything unsubscribed on close, a job stream beside it, 4408 for a client that never
acks, a job without snapshots (`without_snapshots`) and that list's refusals; then a
class-mode server (a subprocess): the teacher watches two students' jobs, a student only their
own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
import websockets

from server.__main__ import server_options
from server.config import Settings, settings_from_env
from server.engine.events import MetricsEvent, SnapshotEvent, StatusEvent
from server.main import create_app
from server.stream import wire
from server.stream.hub import Hub
from server.stream.multi import MAX_STREAM_JOBS, MultiChannel, Port, Prepared
from tests.classroom.conftest import ClassRoom, roomy_class
from tests.conftest import free_port
from tests.stream.conftest import Client, job_spec, run
from tests.stream.test_hub import Recorder
from tests.stream.test_stream import check_hello, check_snapshot

TIMEOUT = 4.0  # client_timeout_seconds of the server here
TILE = {"detail": "tile", "fields": ["train_loss", "test_loss", "train_accuracy"],
        "metrics_hz": 2, "max_points": 3}
DEFAULT_SUBSCRIPTION = {"snapshots": True, "hz": 10.0, "metrics": True, "detail": "full"}


@dataclass
class Local:
    """uvicorn serving the app in a thread of this process."""

    url: str
    app: object

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def ports(self, job_id: str) -> tuple[list, list]:
        """(this job's multi-stream ports in the hub, those among the engine's subscribers)."""
        for _ in range(100):  # the server's threads change them while we read: retry
            try:
                hub = [c for c in self.app.state.hub.channels.get(job_id, ()) if
                       isinstance(c, Port)]
                job = self.app.state.engine._jobs.get(job_id)
                engine = [s for s in (job.subscribers if job else {}) if isinstance(s, Port)]
                return hub, engine
            except RuntimeError:
                time.sleep(0.01)
        raise AssertionError("could not read the subscribers")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    settings = settings_from_env(host="127.0.0.1", port=free_port(), device="cpu",
                                 data_dir=str(tmp_path_factory.mktemp("multi")),
                                 client_timeout_seconds=TIMEOUT)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, **server_options(settings),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Local(f"http://127.0.0.1:{settings.port}", app)
    server.should_exit = True
    thread.join(30)


@pytest.fixture()
def make_jobs(local) -> Iterator:
    """`make_jobs(n) -> [id, ...]`: running jobs, deleted after the test."""
    made: list[str] = []
    with local.client() as http:
        def create(n: int = 1) -> list[str]:
            ids = []
            for _ in range(n):
                r = http.post("/api/jobs", json=job_spec())
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            made.extend(ids)
            return ids
        yield create
        for job_id in made:
            http.delete(f"/api/jobs/{job_id}")


class Multi(Client):
    """A client of `/api/streams`; `next(type)` waits for a text of that type, `next("bundle")`
    for the next bundle (acknowledged unless `auto_ack` is off)."""

    BINARY = "bundle"

    def __init__(self, ws, auto_ack: bool = True) -> None:
        super().__init__(ws, auto_ack)
        self.bundles: list[list[tuple[dict, dict]]] = []  # each: decoded frames

    def decode(self, message: bytes) -> list[tuple[dict, dict]]:
        frames = [wire.decode(f) for f in wire.decode_bundle(message)]
        self.bundles.append(frames)
        return frames

    async def subscribe(self, request_id: object = "s", **fields) -> dict:
        await self.send({"type": "subscribe", "id": request_id, **fields})
        return await self.next("reply", where=lambda m: m["id"] == request_id)

    async def for_a_while(self, seconds: float) -> None:
        """Read (and ack) everything that comes for `seconds`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await self.recv(left)


def test_the_multi_channel_alone_orders_batches_and_bounds():
    """The hub side without a server: a job's texts, points and frames wait for its hello; one
    bundle and one metrics_batch for all jobs; a status past the bound replaces its own job's;
    a job deleted before its hello still says so and leaves."""
    async def main():
        hub = Hub(Settings())
        watched: list[tuple[str, str]] = []
        multi = MultiChannel(None, hub.default_subscription(), 60.0, hub=hub, max_texts=8,
                             watch=lambda p: watched.append(("watch", p.job_id)),
                             unwatch=lambda p: watched.append(("unwatch", p.job_id)))
        a, b, c = multi.add("a"), multi.add("b"), multi.add("c")
        assert watched == [("watch", "a"), ("watch", "b"), ("watch", "c")]
        assert [type(x).__name__ for x in hub.channels["a"]] == ["Port"]
        socket = Recorder()
        pump = asyncio.create_task(multi.pump(socket.send_text, socket.send_bytes))
        multi.greeted(a, Prepared('{"type": "hello", "job_id": "a"}', type="hello",
                                  job_id="a"))
        for job in "abc":
            hub.on_event(StatusEvent(job, "running", 3, 30))
            hub.on_event(MetricsEvent(job, [{"epoch": 4, "step": 40}]))
            hub.on_event(SnapshotEvent(job, job.encode() * 3))
        await asyncio.sleep(0.2)
        assert [(t["type"], t.get("job_id")) for t in socket.texts] == [
            ("hello", "a"), ("status", "a"), ("metrics_batch", None)]
        assert socket.texts[-1]["jobs"] == {"a": [{"epoch": 4, "step": 40}]}
        assert [wire.decode_bundle(f) for f in socket.frames] == [[b"aaa"]]
        multi.greeted(b, Prepared('{"type": "hello", "job_id": "b"}', type="hello",
                                  job_id="b"))
        await asyncio.sleep(0.2)
        assert [(t["type"], t.get("job_id")) for t in socket.texts[3:]] == [
            ("hello", "b"), ("status", "b"), ("metrics_batch", None)]
        assert len(socket.frames) == 1  # b's frame waits for the ack
        multi.ack()
        await asyncio.sleep(0.2)
        assert wire.decode_bundle(socket.frames[1]) == [b"bbb"]
        hub.on_event(StatusEvent("c", "deleted", 3, 30))  # before its hello
        await asyncio.sleep(0.1)
        assert socket.texts[-1]["job_id"] == "c" and socket.texts[-1]["status"] == "deleted"
        assert "c" not in multi.ports and "c" not in hub.channels
        assert watched[-1] == ("unwatch", "c")
        multi.greeted(c, Prepared("{}", type="hello", job_id="c"))  # too late: not sent
        pump.cancel()
        # The bound (8 texts here): a newer status replaces a waiting one of its own job.
        multi.texts.clear()
        for i in range(8):
            multi.push_text({"type": "status", "job_id": "a" if i else "b", "epoch": i})
        multi.push_text({"type": "status", "job_id": "b", "epoch": 99})
        assert [(m["job_id"], m["epoch"]) for m in multi.texts] == [
            ("a", i) for i in range(1, 8)] + [("b", 99)]
        multi.push_text({"type": "reply", "job_id": None})
        assert len(multi.texts) == 8 and multi.dropped_notice()["message"].startswith("1 ")
        multi.drop_all()
        assert hub.channels == {} and multi.ports == {}

    run(main())


def connect(server, token: str | None = None):
    query = f"?token={token}" if token else ""
    return websockets.connect(f"{server.ws_url}/api/streams{query}", max_size=2**24)


def jobs_in(bundle: list[tuple[dict, dict]]) -> list[str]:
    return [header["job_id"] for header, _ in bundle]


def test_three_jobs_get_their_hellos_and_bundles_of_their_frames(local, make_jobs):
    ids = make_jobs(3)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=ids)
            assert reply == {"type": "reply", "request": "subscribe", "id": "s", "ok": True,
                             "jobs": ids, "refused": {}, "without_snapshots": [],
                             "subscription": DEFAULT_SUBSCRIPTION}
            hellos = {}
            for _ in ids:
                hello = await c.next("hello")
                check_hello(hello, hello["job_id"])
                hellos[hello["job_id"]] = hello
            assert set(hellos) == set(ids)
            seen: dict[str, tuple] = {}
            while set(seen) != set(ids):
                bundle = await c.next("bundle", timeout=30)
                names = jobs_in(bundle)
                assert len(names) == len(set(names)) and set(names) <= set(ids)
                for header, arrays in bundle:
                    check_snapshot(header, arrays, header["job_id"])
                    seen.setdefault(header["job_id"], (header, arrays))
            for job_id, (header, _) in seen.items():
                if hellos[job_id]["arrays"]:
                    assert hellos[job_id]["arrays"] == [
                        {k: m[k] for k in ("name", "dtype", "shape")} for m in header["arrays"]]
            statuses = [m for m in c.log if m["type"] == "status"]
            assert all(m["job_id"] in ids for m in statuses)
            batch = await c.next("metrics_batch")
            assert set(batch) == {"type", "jobs"} and set(batch["jobs"]) <= set(ids)
            for job_id, points in batch["jobs"].items():
                last = max((p["epoch"] for p in hellos[job_id]["metrics"]), default=0)
                assert points and all(p["epoch"] > last for p in points)
                assert {"epoch", "step", "train_loss", "test_loss"} <= set(points[0])

    run(main())


def test_no_second_bundle_before_an_ack_then_one_after(local, make_jobs):
    ids = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws, auto_ack=False)
            await c.subscribe(jobs=ids, hz=30)
            await c.next("bundle", timeout=30)
            await c.for_a_while(1.2)  # frames are made meanwhile (30 a second asked)
            assert len(c.bundles) == 1
            await c.send({"type": "ack"})
            await c.next("bundle", timeout=5)
            assert len(c.bundles) == 2

    run(main())


def test_metrics_batch_applies_fields_and_max_points(local, make_jobs):
    ids = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=ids, **TILE)
            assert reply["subscription"] == {
                "snapshots": True, "hz": 10.0, "metrics": True, "detail": "tile",
                "fields": sorted(TILE["fields"] + ["epoch", "step"]), "metrics_hz": 2.0,
                "max_points": 3}
            hellos = {}
            for _ in ids:
                hello = await c.next("hello")
                hellos[hello["job_id"]] = hello
            assert all(h["subscription"] == reply["subscription"] for h in hellos.values())
            bundle = await c.next("bundle", timeout=30)
            assert all(h.get("detail") == "tile" for h, _ in bundle)
            await c.next("metrics_batch")
            start = len(c.log)
            began = time.monotonic()
            await c.for_a_while(2.5)
            elapsed = time.monotonic() - began
            batches = [m for m in c.log[start:] if m["type"] == "metrics_batch"]
            assert 2 <= len(batches) <= elapsed * 2 + 2
            for batch in batches:
                assert set(batch["jobs"]) <= set(ids)
                for points in batch["jobs"].values():
                    assert 1 <= len(points) <= 3
                    for p in points:
                        assert {"epoch", "step", "train_loss"} <= set(p)
                        assert set(p) <= set(TILE["fields"]) | {"epoch", "step"}
            for job_id in ids:
                epochs = [p["epoch"] for b in batches for p in b["jobs"].get(job_id, [])]
                assert epochs and epochs == sorted(set(epochs))

    run(main())


def test_unknown_jobs_are_refused_and_the_others_accepted(local, make_jobs):
    ids = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=[ids[0], "nope", ids[1], ids[0]])
            assert reply["jobs"] == ids and reply["refused"] == {"nope": "Job not found"}
            got = {(await c.next("hello"))["job_id"] for _ in ids}
            assert got == set(ids)
            await c.for_a_while(0.5)
            assert not [m for m in c.log if m["type"] == "hello" and m["job_id"] == "nope"]

    run(main())


def test_a_bad_set_is_refused_with_a_sentence_and_changes_nothing(local, make_jobs):
    ids = make_jobs(1)
    too_many = [f"job{i}" for i in range(MAX_STREAM_JOBS + 1)]
    bad = [({"jobs": too_many}, f"subscribe: {MAX_STREAM_JOBS + 1} jobs asked for; one stream "
             f"watches at most {MAX_STREAM_JOBS}: open another stream for the rest"),
           ({"jobs": "abc"}, f"subscribe: jobs must be a list of at most {MAX_STREAM_JOBS} "
            "job ids (strings of 1 to 100 characters)"),
           ({"jobs": [ids[0], 3]}, "subscribe: jobs must be a list"),
           ({"jobs": [], "hz": 0}, "subscribe: hz must be a number above 0; got 0"),
           ({"jobs": [], "max_points": 0}, "subscribe: max_points must be null or a whole"),
           ({"jobs": [], "colour": 1}, "subscribe: unknown fields ['colour']; expected: jobs, "
            "snapshots, hz")]

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            assert (await c.subscribe(jobs=ids))["jobs"] == ids
            await c.next("hello")
            for i, (body, words) in enumerate(bad):
                await c.send({"type": "subscribe", "id": i, **body})
                error = await c.next("error", where=lambda m, i=i: m["id"] == i)
                assert set(error) == {"type", "job_id", "message", "request", "id"}
                assert error["request"] == "subscribe" and error["job_id"] is None
                assert error["message"].startswith(words), error
            # Nothing changed: the same set and subscription, frames still coming.
            reply = await c.subscribe("same")
            assert reply["jobs"] == ids and reply["subscription"] == DEFAULT_SUBSCRIPTION
            assert local.ports(ids[0])[0]
            # Duplicates count once: MAX_STREAM_JOBS ids given twice are a valid set.
            many = [f"job{i}" for i in range(MAX_STREAM_JOBS - 1)] + ids
            reply = await c.subscribe("many", jobs=many + many)
            assert reply["jobs"] == ids and len(reply["refused"]) == MAX_STREAM_JOBS - 1
            await c.next("bundle", timeout=30)

    run(main())


def test_a_smaller_set_stops_the_frames_of_the_job_that_left(local, make_jobs):
    a, b = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            await c.subscribe(jobs=[a, b])
            seen: set[str] = set()
            while seen != {a, b}:
                seen |= set(jobs_in(await c.next("bundle", timeout=30)))
            assert len(local.ports(b)[0]) == 1 and len(local.ports(b)[1]) == 1
            reply = await c.subscribe("smaller", jobs=[a])
            assert reply["jobs"] == [a] and reply["refused"] == {}
            start_log, start_bundles = len(c.log), len(c.bundles)
            await c.for_a_while(1.5)
            after = [j for bundle in c.bundles[start_bundles:] for j in jobs_in(bundle)]
            assert a in after and b not in after
            assert all(b not in m.get("jobs", {}) and m.get("job_id") != b
                       for m in c.log[start_log:])
            deadline = time.monotonic() + 10  # the engine unsubscribes between two slices
            while local.ports(b) != ([], []):  # unregistered, unsubscribed
                assert time.monotonic() < deadline, local.ports(b)
                await c.recv(5)
            assert len(local.ports(a)[1]) == 1
            assert not [m for m in c.log if m["type"] == "hello" and m["job_id"] == b][1:]

    run(main())


def test_a_deleted_job_leaves_the_set_and_the_socket_stays_open(local, make_jobs):
    a, b = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            await c.subscribe(jobs=[a, b])
            for _ in range(2):
                await c.next("hello")
            await c.next("bundle", timeout=30)
            with local.client() as http:
                assert (await asyncio.to_thread(http.delete, f"/api/jobs/{b}")).status_code \
                    in (200, 204)
            status = await c.next("status", where=lambda m: m["status"] == "deleted")
            assert status["job_id"] == b
            start = len(c.bundles)
            await c.for_a_while(1.0)
            assert c.bundles[start:] and all(jobs_in(x) == [a] for x in c.bundles[start:])
            assert local.ports(b) == ([], [])
            reply = await c.subscribe("again", jobs=[a, b])
            assert reply["jobs"] == [a] and reply["refused"] == {b: "Job not found"}

    run(main())


def test_control_messages_are_refused_and_bad_ones_answered(local, make_jobs):
    ids = make_jobs(1)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            for kind in ("control", "set", "edit_weight"):
                await c.send({"type": kind, "action": "pause", "id": kind})
                error = await c.next("error", where=lambda m, k=kind: m["id"] == k)
                assert error == {
                    "type": "error", "job_id": None, "request": kind, "id": kind,
                    "message": f"this stream only watches jobs; send {kind} on the job's own "
                               "stream (/api/jobs/{id}/stream) or to its REST route"}
            await c.send({"type": "nonsense"})
            error = await c.next("error", where=lambda m: m["request"] == "nonsense")
            assert error["message"] == ("unknown message type 'nonsense'; expected one of: "
                                         "ack, subscribe")
            await c.send("{")
            error = await c.next("error", where=lambda m: m["message"].startswith("not JSON"))
            assert error["request"] is None
            assert (await c.subscribe(jobs=ids))["jobs"] == ids  # still open and working
            await c.next("bundle", timeout=30)
            with local.client() as http:
                assert http.get(f"/api/jobs/{ids[0]}").json()["status"] == "running"

    run(main())


def test_closing_the_socket_unsubscribes_every_job(local, make_jobs):
    ids = make_jobs(3)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            await c.subscribe(jobs=ids)
            for _ in ids:
                await c.next("hello")
            assert all(local.ports(j) != ([], []) for j in ids)
        deadline = time.monotonic() + 10
        while any(local.ports(j) != ([], []) for j in ids):
            assert time.monotonic() < deadline, [local.ports(j) for j in ids]
            await asyncio.sleep(0.05)

    run(main())


def test_a_job_stream_beside_the_multi_stream_outlives_it(local, make_jobs):
    """The wall's spotlight: a tile's job also has its own job stream for a while."""
    (a,) = make_jobs(1)

    async def main():
        async with websockets.connect(f"{local.ws_url}/api/jobs/{a}/stream",
                                      max_size=2**24) as job_ws:
            single = Client(job_ws)
            assert (await single.recv())["type"] == "hello"
            async with connect(local) as ws:
                c = Multi(ws)
                await c.subscribe(jobs=[a], detail="tile")
                bundle = await c.next("bundle", timeout=30)
                assert jobs_in(bundle) == [a]
                await single.next("snapshot")
                deadline = time.monotonic() + 10
                while len(local.ports(a)[1]) != 1:  # the engine takes it between two slices
                    assert time.monotonic() < deadline
                    await c.recv(5)
                subscribers = local.app.state.engine._jobs[a].subscribers
                assert sorted(type(s).__name__ for s in list(subscribers)) == ["Channel", "Port"]
            deadline = time.monotonic() + 10
            while local.ports(a) != ([], []):
                assert time.monotonic() < deadline
                await single.recv(5)  # the job stream goes on meanwhile
            before = len(single.frames)
            await single.next("snapshot")
            await single.next("snapshot")
            assert len(single.frames) >= before + 2
            assert [type(s).__name__ for s in local.app.state.engine._jobs[a].subscribers] == [
                "Channel"]

    run(main())


def test_a_client_that_never_acks_is_closed_with_4408(local, make_jobs):
    ids = make_jobs(2)

    async def main():
        async with connect(local) as ws:
            c = Multi(ws, auto_ack=False)
            await c.subscribe(jobs=ids)
            await c.next("bundle", timeout=30)
            start = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await c.recv(TIMEOUT + 10)
            assert closed.value.rcvd.code == 4408
            assert closed.value.rcvd.reason == f"No ack for {TIMEOUT:g} s; reconnect to continue"
            assert time.monotonic() - start < TIMEOUT + 4
        deadline = time.monotonic() + 10
        while any(local.ports(j) != ([], []) for j in ids):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    run(main())


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassRoom]:
    with roomy_class(tmp_path_factory.mktemp("multi-class") / "data") as room:
        yield room


def test_the_teacher_watches_two_students_and_a_student_only_their_own(classroom):
    ann, bob = classroom.join("Ann"), classroom.join("Bob")
    job_a, job_b = classroom.create(ann)["id"], classroom.create(bob)["id"]
    teacher = classroom.teacher()

    async def main():
        async with connect(classroom.live, teacher) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=[job_a, job_b])
            assert reply["jobs"] == [job_a, job_b] and reply["refused"] == {}
            assert {(await c.next("hello"))["job_id"] for _ in range(2)} == {job_a, job_b}
        async with connect(classroom.live, ann) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=[job_a, job_b])
            assert reply["jobs"] == [job_a]
            assert reply["refused"] == {job_b: "This job belongs to someone else"}
            assert (await c.next("hello"))["job_id"] == job_a
            await c.for_a_while(0.5)
            assert [m["job_id"] for m in c.log if m["type"] == "hello"] == [job_a]
        async with connect(classroom.live) as ws:  # no token: every job needs one
            c = Multi(ws)
            reply = await c.subscribe(jobs=[job_a])
            assert reply["jobs"] == [] and reply["refused"] == {
                job_a: "This job needs its token: add ?token=<token> to the URL"}

    run(main())


def test_a_job_without_snapshots_gets_metrics_but_no_frames(local, make_jobs):
    """`without_snapshots`: that job's metrics and statuses come, its frames do not (the engine
    has no subscriber for it); off the list, its frames come back; on it again, they stop."""
    a, b = make_jobs(2)

    async def until_engine(c: Multi, job_id: str, count: int) -> None:
        deadline = time.monotonic() + 10  # the engine (un)subscribes between two slices
        while len(local.ports(job_id)[1]) != count:
            assert time.monotonic() < deadline, local.ports(job_id)
            with contextlib.suppress(TimeoutError):
                await c.recv(0.2)

    async def frames_for(c: Multi, seconds: float) -> tuple[set[str], set[str]]:
        """(jobs in the bundles, jobs in the metrics batches) that came in `seconds`."""
        start_log, start_bundles = len(c.log), len(c.bundles)
        await c.for_a_while(seconds)
        return ({j for bundle in c.bundles[start_bundles:] for j in jobs_in(bundle)},
                {j for m in c.log[start_log:] if m["type"] == "metrics_batch" for j in m["jobs"]})

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=[a, b], without_snapshots=[b, b])
            assert reply["jobs"] == [a, b] and reply["without_snapshots"] == [b]
            assert reply["subscription"] == DEFAULT_SUBSCRIPTION
            hellos = {(await c.next("hello"))["job_id"]: None for _ in range(2)}
            assert set(hellos) == {a, b}
            await c.next("bundle", timeout=30)
            framed, measured = await frames_for(c, 2.0)
            assert framed == {a} and measured == {a, b}
            assert (len(local.ports(b)[0]), local.ports(b)[1]) == (1, [])
            assert len(local.ports(a)[1]) == 1
            # Off the list: subscribed again, its frames come back.
            reply = await c.subscribe("back", without_snapshots=[])
            assert reply["jobs"] == [a, b] and reply["without_snapshots"] == []
            await c.next("bundle", timeout=30, where=lambda f: b in jobs_in(f))
            await until_engine(c, b, 1)
            # On it again mid-stream: no bundle after the reply holds it, the engine lets go.
            reply = await c.subscribe("again", jobs=[a, b], without_snapshots=[b])
            assert reply["without_snapshots"] == [b]
            framed, measured = await frames_for(c, 1.5)
            assert framed == {a} and b in measured
            await until_engine(c, b, 0)
            assert len(local.ports(b)[0]) == 1 and len(local.ports(a)[1]) == 1

    run(main())


def test_without_snapshots_names_only_jobs_of_the_set(local, make_jobs):
    """An id outside `jobs`, or not a list of strings: an error that says which and what is
    allowed; nothing changes (the set, the list, the engine's subscribers)."""
    a, b = make_jobs(2)
    bad = [({"jobs": [a], "without_snapshots": ["nope"]},
            f"subscribe: without_snapshots lists 'nope', which is not in jobs; it may list "
            f"only these: ['{a}']"),
           ({"without_snapshots": [a, "other"]},
            f"subscribe: without_snapshots lists 'other', which is not in jobs; it may list "
            f"only these: ['{a}', '{b}']"),
           ({"without_snapshots": [a, 3]}, f"subscribe: without_snapshots must be a list of at "
            f"most {MAX_STREAM_JOBS} job ids (strings of 1 to 100 characters)"),
           ({"without_snapshots": a}, "subscribe: without_snapshots must be a list")]

    async def main():
        async with connect(local) as ws:
            c = Multi(ws)
            reply = await c.subscribe(jobs=[a, b], without_snapshots=[b])
            assert reply["without_snapshots"] == [b]
            for _ in range(2):
                await c.next("hello")
            for i, (body, words) in enumerate(bad):
                await c.send({"type": "subscribe", "id": i, **body})
                error = await c.next("error", where=lambda m, i=i: m["id"] == i)
                assert error["request"] == "subscribe" and error["job_id"] is None
                assert error["message"].startswith(words), error
                if words.endswith("]"):
                    assert error["message"] == words
            reply = await c.subscribe("same")
            assert reply["jobs"] == [a, b] and reply["without_snapshots"] == [b]
            assert reply["subscription"] == DEFAULT_SUBSCRIPTION
            await c.for_a_while(0.5)
            assert len(local.ports(a)[1]) == 1 and local.ports(b)[1] == []
            assert len(local.ports(b)[0]) == 1
            # A smaller set keeps the list's jobs that stay in it.
            reply = await c.subscribe("smaller", jobs=[b])
            assert reply["jobs"] == [b] and reply["without_snapshots"] == [b]

    run(main())
