"""Cross-site requests and websocket hijacking are refused; the page's own origin is not.

A page on another site (or a DNS-rebinding page that points its own name at this server) must
not drive a student's session: 20 variants of Host and Origin are refused for websockets
(handshake answered 403) and for POSTs (403 with a fixed sentence), and the allowed forms work.
"""

from __future__ import annotations

import socket

import pytest

from server.api.classroom import origins, refusals
from server.config import Settings


def refused_variants(port: int) -> list[tuple[str, dict]]:
    own = f"127.0.0.1:{port}"
    return [
        ("null origin", {"Origin": "null"}),
        ("another site", {"Origin": "http://evil.example"}),
        ("another port", {"Origin": f"http://127.0.0.1:{port + 1}"}),
        ("https instead of http", {"Origin": f"https://{own}"}),
        ("no port (80)", {"Origin": "http://127.0.0.1"}),
        ("subdomain", {"Host": f"localhost:{port}", "Origin": f"http://www.localhost:{port}"}),
        ("suffix trick", {"Origin": f"http://127.0.0.1.evil.example:{port}"}),
        ("another name of this machine", {"Origin": f"http://localhost:{port}"}),
        ("IPv6 loopback for IPv4 page", {"Origin": f"http://[::1]:{port}"}),
        ("websocket scheme", {"Origin": f"ws://{own}"}),
        ("file page", {"Origin": "file://"}),
        ("origin with a path", {"Origin": f"http://{own}/page"}),
        ("userinfo", {"Origin": f"http://evil@{own}"}),
        ("port smuggling", {"Origin": f"http://127.0.0.1:{port}.evil.example"}),
        ("upper-case other site", {"Origin": "HTTP://EVIL.EXAMPLE"}),
        ("forged Host (DNS rebinding)", {"Host": f"evil.example:{port}",
                                         "Origin": f"http://evil.example:{port}"}),
        ("forged Host, no Origin", {"Host": "evil.example"}),
        ("loopback-looking Host", {"Host": f"127.0.0.1.evil.example:{port}",
                                   "Origin": f"http://127.0.0.1.evil.example:{port}"}),
        ("localhost-looking Host", {"Host": f"localhost.evil.example:{port}"}),
        ("empty Host", {"Host": ""}),
    ]


def allowed_variants(port: int) -> list[tuple[str, dict]]:
    return [
        ("no Origin (a script)", {}),
        ("own origin", {"Origin": f"http://127.0.0.1:{port}"}),
        ("localhost page", {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}),
        ("IPv6 loopback page", {"Host": f"[::1]:{port}", "Origin": f"http://[::1]:{port}"}),
        ("LAN address (Docker port mapping)", {"Host": "192.168.1.10:8000",
                                               "Origin": "http://192.168.1.10:8000"}),
        ("this machine's name", {"Host": f"{socket.gethostname().lower()}:{port}",
                                 "Origin": f"http://{socket.gethostname().lower()}:{port}"}),
    ]


@pytest.fixture(scope="module")
def owner(room):
    ada = room.join("Ada")
    return ada, room.create(ada, start=False)["id"]


def test_twenty_refused_variants(room):
    assert len(refused_variants(room.live.port)) == 20


@pytest.mark.parametrize("index", range(20))
def test_refused_websocket(room, owner, index):
    token, job = owner
    name, headers = refused_variants(room.live.port)[index]
    status = room.handshake(f"/api/jobs/{job}/stream?token={token}", headers)
    assert status == 403, name


@pytest.mark.parametrize("index", range(20))
def test_refused_post(room, owner, index):
    token, job = owner
    name, headers = refused_variants(room.live.port)[index]
    if headers.get("Host") == "":
        return  # httpx cannot send an empty Host; the websocket test covers it
    with room.http(token) as c:
        r = c.post(f"/api/jobs/{job}/control", json={"action": "pause"}, headers=headers)
    assert r.status_code == 403, name
    host_bad = "evil" in headers.get("Host", "")
    assert r.json()["detail"] == (refusals.HOST_REFUSED if host_bad else refusals.ORIGIN_REFUSED)


@pytest.mark.parametrize("index", range(6))
def test_allowed(room, owner, index):
    token, job = owner
    name, headers = allowed_variants(room.live.port)[index]
    assert room.handshake(f"/api/jobs/{job}/stream?token={token}", headers) == 101, name
    with room.http(token) as c:
        r = c.post(f"/api/jobs/{job}/control", json={"action": "pause"}, headers=headers)
    assert r.status_code == 200, (name, r.text)


def test_reads_from_a_forged_host_are_refused(room):
    with room.http() as c:
        r = c.get("/api/catalog", headers={"Host": "evil.example"})
    assert (r.status_code, r.json()["detail"]) == (403, refusals.HOST_REFUSED)


def test_open_mode_is_guarded_too(server):
    """At home (open, no tokens) a page on another site must not drive the server either."""
    from tests.classroom.conftest import raw_handshake

    with server.client() as c:
        job = c.post("/api/jobs", json={"dataset": {"name": "xor"}, "start": False,
                                        "model": {"layers": []}}).json()["id"]
        r = c.post(f"/api/jobs/{job}/control", json={"action": "pause"},
                   headers={"Origin": "http://evil.example"})
        assert (r.status_code, r.json()["detail"]) == (403, refusals.ORIGIN_REFUSED)
        assert c.delete(f"/api/jobs/{job}", headers={"Origin": "null"}).status_code == 403
    path = f"/api/jobs/{job}/stream"
    assert raw_handshake(server.port, path, {"Origin": "http://evil.example"}) == 403
    assert raw_handshake(server.port, path, {"Origin": server.url}) == 101


def test_allow_lists_from_settings():
    settings = Settings(host="0.0.0.0", allowed_hosts=("playground.school.example",),
                        allowed_origins=("https://playground.school.example",))
    assert origins.host_allowed(settings, "playground.school.example")
    assert origins.host_allowed(settings, "127.0.0.1:8000")  # the health check
    assert not origins.host_allowed(settings, "192.168.1.10:8000")  # listed names only
    assert not origins.host_allowed(settings, "evil.example")
    # behind TLS the app sees http, the page is https: the listed origin is allowed
    assert origins.origin_allowed(settings, "https://playground.school.example",
                                   "playground.school.example", "http")
    assert not origins.origin_allowed(settings, "https://evil.example",
                                       "playground.school.example", "http")
    anything = Settings(allowed_hosts=("*",))
    assert origins.host_allowed(anything, "whatever.example")
    default = Settings(host="0.0.0.0")
    assert origins.host_allowed(default, "10.0.0.7:8000")
    assert origins.host_allowed(default, "[fe80::1]:8000")
    assert not origins.host_allowed(default, "evil.example:8000")
