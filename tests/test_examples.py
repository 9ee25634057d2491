"""The example specs the README shows (examples/*.json) are valid jobs on a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_spec_checks_and_creates_a_job(server, path: Path) -> None:
    spec = json.loads(path.read_text())
    with server.client() as http:
        check = http.post("/api/models/check", json={k: spec[k] for k in ("dataset", "model")})
        assert check.status_code == 200, check.text
        assert check.json()["total_parameters"] > 0
        created = http.post("/api/jobs", json={**spec, "start": False})
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["status"] == "paused"
        assert http.delete(f"/api/jobs/{job['id']}").status_code == 204


def test_there_are_examples_for_each_kind_of_data() -> None:
    names = {json.loads(p.read_text())["dataset"]["name"] for p in EXAMPLES}
    assert {"spiral", "digits", "sine", "recall"} <= names
