"""Helpers for the end-to-end job tests: specs of known problems and waiting on a job."""

from __future__ import annotations

import json
import time

import httpx

TANH = "tanh"


def dense(units: int, activation: str = TANH) -> dict:
    return {"type": "dense", "units": units, "activation": activation}


def xor_spec(epochs: int | None = 100, **training) -> dict:
    return {"dataset": {"name": "xor"}, "model": {"layers": [dense(8)]},
            "training": {"epochs": epochs, **training}}


def circle_spec(epochs: int | None = 100, **training) -> dict:
    """TF Playground's default problem: circle, 2-4-2-1 tanh, batch 10, lr 0.03, SGD."""
    return {"dataset": {"name": "circle"}, "model": {"layers": [dense(4), dense(2)]},
            "training": {"epochs": epochs, "batch_size": 10,
                         "optimizer": {"name": "sgd", "learning_rate": 0.03}, **training}}


def digits_spec(epochs: int = 15) -> dict:
    return {"dataset": {"name": "digits", "train_fraction": 0.7},
            "model": {"layers": [{"type": "flatten"}, dense(64, "relu")]},
            "training": {"epochs": epochs, "batch_size": 32,
                         "optimizer": {"name": "adam", "learning_rate": 0.003}}}


def strict_json(response: httpx.Response):
    """The body parsed as strict JSON: NaN or Infinity fails the test."""
    def no_constants(name: str):
        raise AssertionError(f"{name} in a JSON response")

    return json.loads(response.text, parse_constant=no_constants)


def create(client: httpx.Client, spec: dict, status: int = 201, **kwargs) -> dict:
    r = client.post("/api/jobs", json=spec, **kwargs)
    assert r.status_code == status, r.text
    return strict_json(r)


def get(client: httpx.Client, job_id: str, **kwargs) -> dict:
    r = client.get(f"/api/jobs/{job_id}", **kwargs)
    assert r.status_code == 200, r.text
    return strict_json(r)


def control(client: httpx.Client, job_id: str, action: str, status: int = 200,
            **body) -> dict:
    r = client.post(f"/api/jobs/{job_id}/control", json={"action": action, **body})
    assert r.status_code == status, r.text
    return strict_json(r)


def history(client: httpx.Client, job_id: str) -> list[dict]:
    r = client.get(f"/api/jobs/{job_id}/metrics")
    assert r.status_code == 200, r.text
    return strict_json(r)["history"]


def wait_status(client: httpx.Client, job_id: str, statuses: tuple[str, ...] | str,
                timeout: float = 90.0) -> dict:
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(client, job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")


def wait_progress(client: httpx.Client, job_id: str, key: str, at_least: int,
                  timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get(client, job_id)
        if job["progress"][key] >= at_least:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {key} {at_least}: {job}")


def delete(client: httpx.Client, job_id: str) -> None:
    r = client.delete(f"/api/jobs/{job_id}")
    assert r.status_code in (204, 404), r.text
