"""Values JSON cannot carry, sent to every JSON route and into every number of the job spec
(issue 12, item 5): NaN, Infinity, -Infinity, 1e400 and a lone surrogate each get a 4xx with a
JSON body (422 saying where and what), never a 500; a non-ASCII token or cookie gets a 401.

The routes come from the server's own OpenAPI document, so a new JSON route is fuzzed without
a change here; the spec's number fields come from JobSpec's JSON schema and every layer type's.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from server.spec.job import JobPatch, JobSpec
from server.spec.layers import LAYER_TYPES
from tests.classroom.conftest import CODE, PASSWORD, class_env, raw_handshake
from tests.conftest import start_server, stop_server

BAD = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "1e400": "1e400",
       "surrogate": '"\\ud800"'}
SPEC = {"name": "fuzz", "dataset": {"name": "xor", "params": {"samples": 100}},
        "model": {"layers": [{"type": "dense", "units": 2}]},
        "training": {"epochs": 1}, "start": False}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("fuzz"))
    with server.client() as c:
        job = c.post("/api/jobs", json=SPEC)
        assert job.status_code == 201, job.text
    server.job_id = job.json()["id"]
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def openapi(live) -> dict:
    with live.client() as c:
        return c.get("/openapi.json").json()


def json_routes(doc: dict) -> list[tuple[str, str]]:
    routes = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                routes.append((method.upper(), path))
    return routes


def fill(path: str, job_id: str) -> str:
    return (path.replace("{job_id}", job_id).replace("{student_id}", "nobody")
            .replace("{name}", "xor").replace("{sweep_id}", "nosweep"))


def assert_refused(r: httpx.Response, where: str) -> dict:
    assert 400 <= r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
    body = r.json()  # a JSON body, always
    assert "detail" in body, f"{where}: {body}"
    return body


def send(client: httpx.Client, method: str, url: str, text: str) -> httpx.Response:
    return client.request(method, url, content=text.encode(),
                          headers={"content-type": "application/json"})


def test_every_json_route_refuses_each_bad_value(live, openapi):
    routes = json_routes(openapi)
    assert ("POST", "/api/jobs") in routes and ("PATCH", "/api/jobs/{job_id}") in routes
    assert len(routes) >= 6, routes
    with live.client() as c:
        for method, path in routes:
            url = fill(path, live.job_id)
            for label, literal in BAD.items():
                key = "\\ud800" if label == "surrogate" else "a"
                for text in (literal, f"[{literal}]", f'{{"name": {literal}}}',
                             f'{{"{key}": 1, "b": {{"c": [{literal}]}}}}'):
                    r = send(c, method, url, text)
                    body = assert_refused(r, f"{method} {path} {text}")
                    assert r.status_code == 422, (method, path, text, r.text)
                    assert isinstance(body["detail"], list)


@pytest.mark.parametrize("label", list(BAD))
def test_the_refusal_says_what_and_where(live, label):
    text = json.dumps(SPEC).replace('"epochs": 1', f'"epochs": 1, "gradient_clip": {BAD[label]}')
    with live.client() as c:
        r = send(c, "POST", "/api/jobs", text)
    assert r.status_code == 422, r.text
    (entry,) = r.json()["detail"]
    assert entry["loc"] == ["body", "training", "gradient_clip"]
    expected = {"NaN": "NaN is not a number; send a finite number",
                "Infinity": "Infinity is not a finite number; send a finite number",
                "-Infinity": "-Infinity is not a finite number; send a finite number",
                "1e400": "1e400 is too large for a number (the largest is about 1.8e308); "
                         "send a finite number",
                "surrogate": "this text holds a lone surrogate (\\ud800), which is not valid "
                             "Unicode; send the text as UTF-8"}[label]
    assert entry["msg"] == expected


def number_paths(schema: dict, root: dict, prefix: tuple = ()) -> list[tuple]:
    """Paths of every number or integer field (following $ref, anyOf and objects)."""
    if "$ref" in schema:
        return number_paths(root["$defs"][schema["$ref"].split("/")[-1]], root, prefix)
    found = []
    for option in schema.get("anyOf", []):
        found += number_paths(option, root, prefix)
    if schema.get("type") in ("number", "integer"):
        found.append(prefix)
    for name, sub in schema.get("properties", {}).items():
        if prefix == () and name == "model":
            continue  # layers: below, one layer type at a time
        found += number_paths(sub, root, (*prefix, name))
    return sorted(set(found))


def inject(doc: dict, path: tuple, literal: str) -> str:
    """`doc` as JSON text with the raw `literal` at `path` (dicts made on the way)."""
    marker = "__FUZZ__"
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        if isinstance(key, int):
            node = node[key]
        else:
            if not isinstance(node.get(key), dict | list):
                node[key] = {}
            node = node[key]
    node[path[-1]] = marker
    return json.dumps(doc).replace(f'"{marker}"', literal)


def spec_cases() -> list[tuple[dict, tuple]]:
    root = JobSpec.model_json_schema()
    cases = [(SPEC, path) for path in number_paths(root, root)]
    for name, layer in LAYER_TYPES.items():
        schema = layer.model_json_schema()
        for path in number_paths(schema, schema):
            spec = {**SPEC, "model": {"layers": [{"type": name}]}}
            cases.append((spec, ("model", "layers", 0, *path)))
    return cases


def test_every_number_of_the_spec_refuses_each_bad_value(live):
    cases = spec_cases()
    paths = {p for _, p in cases}
    for expected in [("training", "schedule", "min_learning_rate"), ("training", "gradient_clip"),
                     ("training", "early_stopping", "min_delta"), ("dataset", "train_fraction"),
                     ("training", "optimizer", "learning_rate"), ("model", "layers", 0, "units")]:
        assert expected in paths, expected
    check_keys = ("dataset", "model", "training")
    with live.client() as c:
        for spec, path in cases:
            for label, literal in BAD.items():
                for route, body in (("/api/jobs", spec), ("/api/models/check",
                                    {k: v for k, v in spec.items() if k in check_keys})):
                    r = send(c, "POST", route, inject(body, path, literal))
                    detail = assert_refused(r, f"{route} {path} {label}")["detail"]
                    assert r.status_code == 422, (route, path, label, r.text)
                    assert detail[0]["loc"] == ["body", *path], (route, path, label, detail)


def test_patch_and_models_refuse_infinity_in_python_too():
    """The stream's `set` and any Python client validate the same models: no infinity, no
    NaN, in every float field (model-wide allow_inf_nan=False)."""
    for path in [("training", "gradient_clip"), ("training", "schedule", "min_learning_rate"),
                 ("training", "early_stopping", "min_delta"), ("model", "layers", 0, "units")]:
        for value in ("Infinity", "-Infinity", "NaN"):
            doc = json.loads(inject(SPEC, path, value))  # Python's json reads these
            with pytest.raises(ValueError, match="finite number|valid integer"):
                JobSpec.model_validate(doc)
    with pytest.raises(ValueError, match="finite number"):
        JobPatch.model_validate({"training": {"optimizer": {"learning_rate": math.inf}}})


@pytest.mark.parametrize("value", [True, "3", 3.5])
def test_spec_types_are_strict(live, value):
    """`true` is not 1 and "3" is not 3 (nor 3.5 an integer); a JSON integer is a fine float."""
    with live.client() as c:
        r = c.post("/api/jobs", json={**SPEC, "training": {"epochs": value}})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "training", "epochs"]
        r = c.post("/api/jobs", json={**SPEC, "model": {"layers": [
            {"type": "dense", "units": value}]}})
        assert r.status_code == 422, r.text
        r = c.post("/api/jobs", json={**SPEC, "dataset": {"name": "xor",
                                                          "params": {"samples": value}}})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][:4] == ["body", "dataset", "params", "samples"]
        r = c.post("/api/jobs", json={**SPEC, "start": 1})
        assert r.status_code == 422, r.text
        fine = c.post("/api/models/check", json={
            "dataset": SPEC["dataset"], "model": SPEC["model"],
            "training": {"optimizer": {"name": "sgd", "learning_rate": 1}, "gradient_clip": 2}})
        assert fine.status_code == 200, fine.text  # integers where floats go: accepted


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("fuzz-class"),
                          env=class_env(PLAYGROUND_RATE_LIMIT_PER_SECOND="0"))
    yield server
    stop_server(server)


def test_every_json_route_in_class_mode_refuses_each_bad_value(live, openapi, class_server):
    """The same with a student's token and with the teacher's, where more of the routes get
    past the sign-in checks (the 401s of anonymous callers come before any body is read)."""
    with class_server.client() as c:
        student = c.post("/api/class/join", json={"code": CODE, "name": "Fuzz"}).json()["token"]
        teacher = c.post("/api/class/teacher/login", json={"password": PASSWORD}).json()["token"]
        job = c.post("/api/jobs", json=SPEC, headers={"Authorization": f"Bearer {student}"})
        assert job.status_code == 201, job.text
        for token in (student, teacher, None):
            headers = {"content-type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            for method, path in json_routes(openapi):
                url = fill(path, job.json()["id"])
                for literal in BAD.values():
                    r = c.request(method, url, content=f'{{"name": {literal}}}'.encode(),
                                  headers=headers)
                    assert_refused(r, f"{method} {path} {literal} {token and token[:2]}")


NON_ASCII = ["t\u00f6ken", "\u4e2d\u6587", "s.\u00e9.x.y"]


@pytest.mark.parametrize("mode", ["open", "class"])
def test_a_non_ascii_token_or_cookie_gets_401(live, class_server, mode):
    server = live if mode == "open" else class_server
    with server.client() as c:
        for token in NON_ASCII:
            raw = token.encode("utf-8")
            for headers in ({"Authorization": b"Bearer " + raw},
                            {"Cookie": b"playground_student=" + raw},
                            {"Cookie": b"playground_teacher=" + raw}):
                for path in ("/api/jobs", "/api/class", f"/api/jobs/{live.job_id}"):
                    r = c.get(path, headers=headers)
                    assert r.status_code == 401, (path, headers, r.status_code, r.text)
                    assert r.json()["detail"].startswith("That token is not one this server")
                    if "Cookie" in headers:  # the bad cookie is cleared, so the page recovers
                        assert "playground_student=;" in r.headers["set-cookie"]
                    else:  # a script's bad header costs the browser's cookie nothing
                        assert "set-cookie" not in r.headers
            status = raw_handshake(server.port, f"/api/jobs/{live.job_id}/stream",
                                   {"Authorization": f"Bearer {token}"})
            assert status == 401, (token, status)
            status = raw_handshake(server.port, f"/api/jobs/{live.job_id}/stream",
                                   {"Cookie": f"playground_student={token}"})
            assert status == 401, (token, status)
    # Joining replaces a bad cookie instead of being refused by it.
    with class_server.client() as c:
        r = c.post("/api/class/join", json={"code": CODE, "name": "Ada"},
                   headers={"Cookie": "playground_student=t\u00f6ken".encode()})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 5000 + b"]" * 5000, "the body is nested deeper than 64 levels; a request needs far "
                                "fewer"),
    (b'{"name": ' + b"7" * 5000 + b"}", "a number in the body has too many digits; send a "
                                       "number of usual size"),
    (b'{"name": "\xff\xfe"}', "the body is not valid UTF-8 text; send JSON encoded as UTF-8"),
])
def test_bodies_python_cannot_read_get_422(live, body, message):
    with live.client() as c:
        for route in ("/api/jobs", "/api/models/check", "/api/class/join"):
            r = c.post(route, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422, (route, r.text)
            assert r.json()["detail"][0]["msg"] == message
