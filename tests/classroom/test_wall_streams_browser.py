"""The class wall over ONE multi-job stream (issue 14), in a real headless Chromium (marked
`browser`): with three students' runs the page opens exactly one `/api/streams` websocket and
no job stream, subscribes once with the three jobs, every tile draws frames from its bundles
and the page acknowledges each bundle once; the spotlight opens one job stream of its own
(the `boundary` picture) and closes it on Esc, while the wall's socket stays. A student whose
run is on a tabular data set (iris): the wall asks for its job `without_snapshots`, no bundle
after that holds a frame of it, and its tile still follows the loss curve."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from server.stream import wire
from tests.classroom.conftest import BROWSER_TESTS, PASSWORD, ClassRoom, roomy_class

pytestmark = BROWSER_TESTS

STUDENTS = 3
STATS = "window.__wallStats ? window.__wallStats() : []"
ACK = {"type": "ack"}


@pytest.fixture(scope="module")
def small_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClassRoom, list]]:
    """A class of three students, each with one small running job: (room, [(name, job)])."""
    with roomy_class(tmp_path_factory.mktemp("wall3") / "data") as room:
        yield room, [(name, room.create(room.join(name))["id"])
                     for name in ("Ada", "Brook", "Chen")]


class Sockets:
    """Every websocket the page opens, with the text it sent and the messages it got."""

    def __init__(self, page) -> None:
        self.opened: list = []
        self.sent: dict[int, list] = {}
        self.binary: dict[int, int] = {}
        self.received: dict[int, list] = {}  # ("text", message) or ("bundle", [job ids])
        page.on("websocket", self.add)

    def add(self, ws) -> None:
        i = len(self.opened)
        self.opened.append(ws)
        self.sent[i], self.binary[i], self.received[i] = [], 0, []
        ws.on("framesent", lambda payload: self.sent[i].append(
            json.loads(payload) if isinstance(payload, str) else payload))
        ws.on("framereceived", lambda payload: self.count(i, payload))

    def count(self, i: int, payload) -> None:
        if isinstance(payload, str):
            self.received[i].append(("text", json.loads(payload)))
            return
        self.binary[i] += 1
        if self.opened[i].url.split("?")[0].endswith("/api/streams"):
            self.received[i].append(("bundle", [wire.decode(f)[0]["job_id"]
                                                for f in wire.decode_bundle(payload)]))

    def urls(self) -> list[str]:
        return [ws.url for ws in self.opened]


def teacher_browser(room: ClassRoom, browser):
    """(context, page, errors, sockets): a browser the teacher signed in on, its new page, the
    page's uncaught errors and every socket it will open."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    response = context.request.post(room.url + "/api/class/teacher/login",
                                    data={"password": PASSWORD})
    assert response.status == 200
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors, Sockets(page)


def wait_for(page, check, what: str, timeout: float = 60.0):
    """`check()`'s value once it is truthy; the page runs meanwhile (its events arrive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        page.wait_for_timeout(200)
    raise AssertionError(f"never: {what}")


def test_one_socket_for_the_wall_one_more_for_the_spotlight(small_room, browser):
    room, students = small_room
    context, page, errors, sockets = teacher_browser(room, browser)
    wall = f"{room.live.ws_url}/api/streams"
    try:
        page.goto(room.url + "/teacher/wall")
        stats = wait_for(page, lambda: (lambda s: s if len(s) == STUDENTS and all(
            t["frames"] >= 3 and t["kind"] == "points2d" for t in s) else None)(
                page.evaluate(STATS)), "every tile draws frames", timeout=120)
        assert [t["job"] for t in stats] == [job for _, job in students]
        assert sockets.urls() == [wall]  # one socket for the whole wall, no job stream
        assert not sockets.opened[0].is_closed()
        # One subscribe with the three jobs (the tiles made in one poll: coalesced).
        subscribes = [m for m in sockets.sent[0] if m["type"] == "subscribe"]
        assert len(subscribes) == 1
        assert sorted(subscribes[0]["jobs"]) == sorted(job for _, job in students)
        assert subscribes[0]["detail"] == "tile"
        assert subscribes[0]["hz"] == 10
        # Every message sent besides it is an ack; one per bundle, the last maybe still drawing.
        acks = sockets.sent[0][1:]
        assert all(m == ACK for m in acks)
        bundles = sockets.binary[0]
        assert bundles >= 3
        assert len(acks) in (bundles - 1, bundles)

        # The spotlight: its own job stream (the full picture), closed again on Esc.
        name, job = students[1]
        page.focus(f"article.tile[data-job-id='{job}']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#spotlight[open]")
        assert page.inner_text("#spot-name") == name
        wait_for(page, lambda: len(sockets.opened) == 2, "the spotlight's stream opens")
        assert sockets.urls() == [wall, f"{room.live.ws_url}/api/jobs/{job}/stream"]
        spot = wait_for(page, lambda: (lambda s: s if s["frames"] >= 2 else None)(
            page.evaluate("window.__wallSpot()")), "the spotlight draws its frames")
        assert spot["job"] == job and spot["open"] is True
        subscribe = sockets.sent[1][0]
        assert subscribe["type"] == "subscribe" and subscribe["detail"] == "boundary"
        assert subscribe["max_points"] is None  # every point while enlarged
        page.keyboard.press("Escape")
        page.wait_for_selector("#spotlight", state="hidden")
        wait_for(page, lambda: sockets.opened[1].is_closed(), "the spotlight's stream closes")
        spot = page.evaluate("window.__wallSpot()")
        assert (spot["job"], spot["open"]) == (None, False)

        # The wall goes on over its one socket.
        before = {t["job"]: t["frames"] for t in page.evaluate(STATS)}
        wait_for(page, lambda: all(t["frames"] > before[t["job"]] for t in page.evaluate(STATS)),
                 "every tile draws more frames after the spotlight")
        assert len(sockets.opened) == 2 and not sockets.opened[0].is_closed()
        assert errors == []
    finally:
        context.close()


def test_a_tabular_run_is_watched_without_snapshots(small_room, browser):
    room, _ = small_room
    iris = room.create(room.join("Dara"), dataset={"name": "iris"})["id"]
    context, page, errors, sockets = teacher_browser(room, browser)
    loss = f"article.tile[data-job-id='{iris}'] .numbers .loss"
    try:
        page.goto(room.url + "/teacher/wall")
        tiles = wait_for(page, lambda: (lambda s: s if len(s) == STUDENTS + 1 and all(
            (t["kind"], t["frames"] > 0) == (("tabular", False) if t["job"] == iris else
                                             ("points2d", True)) for t in s) else None)(
                page.evaluate(STATS)), "the 2-D tiles draw, the iris tile has its hello",
            timeout=120)
        assert [t["kind"] for t in tiles].count("points2d") == STUDENTS
        # The tile said it wants no frames of its job once its hello came: a later subscribe.
        subscribes = wait_for(page, lambda: (lambda s: s if len(s) >= 2 else None)(
            [m for m in sockets.sent[0] if m["type"] == "subscribe"]), "a second subscribe")
        assert iris in subscribes[0]["jobs"] and subscribes[0]["without_snapshots"] == []
        assert subscribes[-1]["jobs"] == subscribes[0]["jobs"]
        assert subscribes[-1]["without_snapshots"] == [iris]
        request = subscribes[-1]["id"]

        def replied() -> int | None:
            return next((i for i, (kind, m) in enumerate(sockets.received[0]) if kind == "text"
                         and m["type"] == "reply" and m.get("id") == request), None)
        at = wait_for(page, lambda: (lambda i: None if i is None else i + 1)(replied()),
                      "the reply to that subscribe")
        assert sockets.received[0][at - 1][1]["without_snapshots"] == [iris]
        # Bundles after the reply: the 2-D runs' frames, none of the iris run; its curve goes on.
        first = page.inner_text(loss)
        wait_for(page, lambda: page.inner_text(loss) != first, "the iris tile's loss changes")
        wait_for(page, lambda: sum(kind == "bundle" for kind, _ in sockets.received[0][at:]) >= 3,
                 "three more bundles")
        later = [jobs for kind, jobs in sockets.received[0][at:] if kind == "bundle"]
        assert all(iris not in jobs for jobs in later)
        assert any(jobs for jobs in later)
        tile = next(t for t in page.evaluate(STATS) if t["job"] == iris)
        assert tile["frames"] == 0 and tile["updates"] >= 2
        assert "curve" in page.locator(f"article.tile[data-job-id='{iris}']").get_attribute(
            "class").split()
        assert sockets.urls() == [f"{room.live.ws_url}/api/streams"]
        assert errors == []
    finally:
        context.close()
