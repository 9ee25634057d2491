"""The data set endpoints through a real server: list, entry, preview, CSV upload (with every
refusal, the 413 for an oversized body, and survival across a restart)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer, start_server, stop_server

MB = 1024 * 1024


def csv_bytes(rows: int = 30) -> bytes:
    lines = ["a,b,label"] + [f"{i},{i * i % 7},{'yes' if i % 2 else 'no'}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(client: httpx.Client, content: bytes, **fields) -> httpx.Response:
    fields.setdefault("target", "label")
    return client.post("/api/datasets", files={"file": ("data.csv", content, "text/csv")},
                       data=fields)


def test_list_and_entry(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get("/api/datasets")
        assert r.status_code == 200
        names = {e["name"]: e for e in r.json()}
        for name in ("circle", "xor", "gauss", "spiral", "iris", "digits", "sine", "recall"):
            assert name in names
        assert names["spiral"]["params"]["properties"]["noise"]["maximum"] == 0.5
        assert c.get("/api/datasets/digits").json()["input_shape"] == [1, 8, 8]
        missing = c.get("/api/datasets/nope")
        assert missing.status_code == 404 and "Data set not found" in missing.json()["detail"]


def test_openapi_documents_the_upload_form(server: LiveServer) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    body = doc["paths"]["/api/datasets"]["post"]["requestBody"]["content"]
    schema = body["multipart/form-data"]["schema"]
    assert schema["required"] == ["file", "target"] and "task" in schema["properties"]


def test_preview_kinds(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get("/api/datasets/spiral/preview", params={"noise": 0.2, "samples": 200})
        assert r.status_code == 200
        body = r.json()
        assert len(body["points"]) == 200 and set(body["points"][0]) == {"x", "y", "label"}
        assert body["params"] == {"noise": 0.2, "samples": 200}
        again = c.get("/api/datasets/spiral/preview", params={"noise": 0.2, "samples": 200})
        assert again.json() == body
        images = c.get("/api/datasets/shapes/preview", params={"samples": 100}).json()["images"]
        assert len(images[0]["pixels"]) == 1 and len(images[0]["pixels"][0]) == 16
        seqs = c.get("/api/datasets/recall/preview").json()
        assert len(seqs["sequences"]) == 8 and "token_names" in seqs
        rows = c.get("/api/datasets/iris/preview").json()
        assert rows["columns"][0].startswith("sepal")


@pytest.mark.parametrize(("query", "loc"), [
    ({"noise": "loud"}, ["query", "noise"]),
    ({"noise": "0.9"}, ["query", "noise"]),
    ({"colour": "red"}, ["query", "colour"]),
    ({"samples": "1000000"}, ["query", "samples"]),
    ({"seed": "-1"}, ["query", "seed"]),
])
def test_preview_bad_params_are_422(server: LiveServer, query: dict, loc: list) -> None:
    with server.client() as c:
        r = c.get("/api/datasets/xor/preview", params=query)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def test_preview_unknown_is_404_naming_the_choices(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get("/api/datasets/spirals/preview")
    assert r.status_code == 404
    assert "'spirals'" in r.json()["detail"] and "spiral" in r.json()["detail"]


def test_upload_then_list_and_preview(server: LiveServer) -> None:
    with server.client() as c:
        r = upload(c, csv_bytes(), name="api_upload")
        assert r.status_code == 201, r.text
        entry = r.json()
        assert entry["name"] == "api_upload" and entry["kind"] == "tabular"
        assert entry["task"] == "classification" and entry["class_names"] == ["no", "yes"]
        listed = {e["name"]: e for e in c.get("/api/datasets").json()}
        assert listed["api_upload"]["input_shape"] == [2]
        preview = c.get("/api/datasets/api_upload/preview").json()
        assert preview["columns"] == ["a", "b"]
        regression = upload(c, b"x,y\n" + b"".join(f"{i},{i / 3}\n".encode() for i in range(12)),
                            target="y", name="api_regression")
        assert regression.status_code == 201 and regression.json()["task"] == "regression"


@pytest.mark.parametrize(("content", "fields", "field", "words"), [
    (b"", {}, "file", "empty"),
    (csv_bytes().replace(b"\n3,", b"\nthree,"), {}, "file", "Row 4"),
    (csv_bytes().replace(b"\n3,", b"\nNaN,"), {}, "file", "'a'"),
    (csv_bytes(), {"target": "klass"}, "target", "'klass'"),
    (csv_bytes().replace(b"yes", b"no"), {}, "file", "only one class"),
    (csv_bytes(), {"task": "guess"}, "task", "'guess'"),
    (csv_bytes(), {"name": "spiral"}, "name", "already exists"),
    (csv_bytes(), {"target": ""}, "target", "target"),
])
def test_upload_refusals_are_422(server: LiveServer, content, fields, field, words) -> None:
    with server.client() as c:
        r = upload(c, content, **fields)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", field]
    assert words in detail["msg"]


def test_upload_malformed_requests_are_422(server: LiveServer) -> None:
    with server.client() as c:
        no_file = c.post("/api/datasets", data={"target": "label"},
                         files={"other": ("x", b"1", "text/plain")})
        assert no_file.status_code == 422 and "field `file`" in no_file.text
        not_multipart = c.post("/api/datasets", json={"target": "label"})
        assert not_multipart.status_code == 422 and "multipart/form-data" in not_multipart.text
        broken = c.post("/api/datasets", content=b"garbage",
                        headers={"content-type": "multipart/form-data; boundary=zz"})
        assert broken.status_code == 422
        dup = upload(c, csv_bytes(), name="twice")
        assert dup.status_code == 201
        assert upload(c, csv_bytes(), name="twice").status_code == 422


def test_50_mb_upload_is_413_and_the_server_stays_healthy(server: LiveServer) -> None:
    big = b"1,2,3\n" * (50 * MB // 6)
    with server.client() as c:
        try:
            r = upload(c, big)
            assert r.status_code == 413
        except httpx.TransportError:
            pass  # the server may close the connection before the client finished sending

    def chunks():  # no Content-Length: the server must count while it reads
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n\r\n"
        for _ in range(50):
            yield b"1" * MB

    with server.client() as c:
        try:
            r = c.post("/api/datasets", content=chunks(),
                       headers={"content-type": "multipart/form-data; boundary=b"})
            assert r.status_code == 413
        except httpx.TransportError:
            pass
    with server.client() as c:
        assert c.get("/api/health").status_code == 200
        assert upload(c, csv_bytes(), name="after_big").status_code == 201


def test_413_from_content_length_before_reading(server: LiveServer) -> None:
    """A client that only announces a huge body gets its 413 at once."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /api/datasets HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
                  + b"Content-Length: 52428800\r\n"
                  b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_uploads_survive_a_restart(server: LiveServer, tmp_path) -> None:
    """What one server stored in its data directory, a server started there later serves."""
    import shutil

    with server.client() as c:
        assert upload(c, csv_bytes(), name="kept").status_code == 201
    shutil.copytree(server.data_dir / "uploads", tmp_path / "data" / "uploads")
    live = start_server(tmp_path / "data")
    try:
        with live.client() as c:
            names = [e["name"] for e in c.get("/api/datasets").json()]
            assert "kept" in names
            preview = c.get("/api/datasets/kept/preview")
            assert preview.status_code == 200 and preview.json()["columns"] == ["a", "b"]
    finally:
        stop_server(live)


def test_the_route_itself_enforces_the_byte_budget(tmp_path) -> None:
    """Without the server's middleware in front, the route still refuses an oversized body:
    by its Content-Length, and by counting a body sent without one."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from server.api import datasets
    from server.config import Settings
    from server.data.registry import DataRegistry

    settings = Settings(data_dir=tmp_path, max_upload_bytes=4096)
    app = FastAPI()
    app.include_router(datasets.router, prefix="/api")
    app.state.settings = settings
    app.state.datasets = DataRegistry(tmp_path / "uploads", settings)
    big = b"1,2,3\n" * 40_000  # 240 kB: over the 4 kB limit plus the multipart allowance
    with TestClient(app) as client:
        r = client.post("/api/datasets", files={"file": ("x.csv", big)}, data={"target": "y"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]

        def chunks():
            yield (b"--b\r\nContent-Disposition: form-data; name=\"file\"; "
                   b"filename=\"x.csv\"\r\n\r\n")
            for _ in range(40):
                yield big[:8192]

        r = client.post("/api/datasets", content=chunks(),
                        headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413
        small = b"a,y\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(20))
        r = client.post("/api/datasets", files={"file": ("s.csv", small)}, data={"target": "y"})
        assert r.status_code == 201 and r.json()["name"] == "s"
        over_file = b"a,y\n" + b"1,0\n" * 1500  # 6 kB file: within the body allowance, over 4 kB
        r = client.post("/api/datasets", files={"file": ("o.csv", over_file)}, data={"target": "y"})
        assert r.status_code == 413
