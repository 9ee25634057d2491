"""Fixtures for the Python client, the command line and the notebook view (issue 18).

`server` (tests/conftest.py) is the shared open server; `class_server` a class-mode server
(tokens required) for the wrong-token paths. `SPEC` is a small xor job that trains in about a
second; `spec_file` writes a spec to a JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground import Playground
from tests.classroom.conftest import ClassRoom, roomy_class
from tests.conftest import LiveServer

SPEC = {"name": "xor, client test",
        "dataset": {"name": "xor", "params": {"samples": 200}},
        "model": {"layers": [{"type": "dense", "units": 4, "activation": "tanh"}]},
        "training": {"optimizer": {"name": "sgd", "learning_rate": 0.1}, "batch_size": 10,
                     "epochs": 20}}


def spec(**training) -> dict:
    """SPEC with other training settings (epochs=None trains until stopped)."""
    return {**SPEC, "training": {**SPEC["training"], **training}}


@pytest.fixture()
def pg(server: LiveServer) -> Iterator[Playground]:
    """A client of the shared server; the jobs it made are deleted afterwards."""
    client = Playground(server.url)
    before = {j.id for j in client.jobs()}
    yield client
    for job in client.jobs():
        if job.id not in before:
            job.delete()
    client.close()


@pytest.fixture()
def spec_file(tmp_path: Path):
    def write(body: dict | str, name: str = "spec.json") -> Path:
        path = tmp_path / name
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        return path

    return write


@pytest.fixture(scope="package")
def class_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClassRoom]:
    """A class-mode server: every job needs its token."""
    with roomy_class(tmp_path_factory.mktemp("client-class") / "data") as room:
        yield room
