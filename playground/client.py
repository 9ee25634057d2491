"""The Python client: `Playground` (a server), `Job` (one job on it), `Datasets`.

    from playground import Playground
    pg = Playground("http://127.0.0.1:8000")          # or PLAYGROUND_URL / PLAYGROUND_TOKEN
    job = pg.submit("examples/mlp-spiral.json")       # or a dict
    job.wait()
    print(job.metrics()[-1]["test_accuracy"])
    job.download("onnx", "spiral.onnx")

Every call is one REST request (shared/API.md); errors raise `playground.errors.ApiError`
subclasses carrying the server's status, sentence and, for a bad spec, the field's location.
`job.stream()` follows the job over its websocket (playground.stream). Needs httpx and
websockets only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from playground import events, rest
from playground.errors import JobFailed, PlaygroundError
from playground.stream import follow
from playground.sweeps import Sweep, sweep_body


class Playground:
    """A playground server. `url` defaults to $PLAYGROUND_URL, else http://127.0.0.1:8000;
    `token` to $PLAYGROUND_TOKEN. Without a token, the first submitted job's token is kept
    and sent from then on, so that all the jobs of this client share one token."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0) -> None:
        self.url = rest.base_url(url)
        self.token = rest.token_of(token)
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self.datasets = Datasets(self)

    def __repr__(self) -> str:
        return f"Playground({self.url!r})"

    def __enter__(self) -> Playground:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, token: str | None = None,
                raw: bool = False, **kwargs: Any) -> Any:
        """One request: the JSON answer (the response itself when `raw`), or an ApiError."""
        try:
            response = self._http.request(method, path, headers=rest.headers(
                token or self.token), **kwargs)
        except httpx.TransportError as exc:
            raise rest.unreachable(self.url, exc) from None
        if raw and response.is_success:
            return response
        return rest.check(response)

    def health(self) -> dict:
        """{"status": "ok", "device": ..., "version": ...}"""
        return self.request("GET", "/api/health")

    def catalog(self) -> dict:
        return self.request("GET", "/api/catalog")

    def submit(self, spec: dict | str | os.PathLike, *, name: str | None = None,
               start: bool | None = None) -> Job:
        """Create a job from a spec (a dict or a JSON file's path); `name` and `start`
        override the spec's. Raises BadRequest (422, with `locations`) for a bad spec."""
        body = dict(rest.spec_of(spec))
        if name is not None:
            body["name"] = name
        if start is not None:
            body["start"] = start
        info = self.request("POST", "/api/jobs", json=body)
        if self.token is None:
            self.token = info.get("token")
        return Job(self, info["id"], info.get("token"), info)

    def jobs(self) -> list[Job]:
        """The caller's jobs (every job on an open server)."""
        return [Job(self, j["id"], None, j) for j in self.request("GET", "/api/jobs")["jobs"]]

    def job(self, job_id: str, token: str | None = None) -> Job:
        """The job `job_id` (NotFound if there is none, Forbidden if it is not yours)."""
        job = Job(self, job_id, token)
        job.refresh()
        return job

    def sweep(self, base: dict | str | os.PathLike, axes: list[dict], mode: str = "grid",
              count: int | None = None) -> Sweep:
        """Create a sweep: one job per variant of `base` (a dict or a JSON file's path) along
        `axes` ({"path", "values"} or {"path", "range": [lo, hi], "count", "scale"}); `mode`
        "grid" (every combination) or "random" (`count` draws). BadRequest names a bad axis."""
        body = sweep_body(rest.spec_of(base), axes, mode, count)
        info = self.request("POST", "/api/sweeps", json=body)
        if self.token is None:
            self.token = info.get("token")
        return Sweep(self, info["id"], info.get("token"), info["jobs"], Job, info)

    def sweeps(self) -> list[Sweep]:
        """The caller's sweeps (every sweep on an open server), as of now."""
        return [Sweep(self, s["id"], None, s["jobs"], Job, s)
                for s in self.request("GET", "/api/sweeps")["sweeps"]]

    def open_sweep(self, sweep_id: str, token: str | None = None) -> Sweep:
        """The sweep `sweep_id` (NotFound if there is none, Forbidden if it is not yours)."""
        sweep = Sweep(self, sweep_id, token, [], Job)
        info = sweep.refresh()
        sweep.jobs = [Job(self, job_id, sweep.token) for job_id in info["jobs"]]
        return sweep

    def import_tfp(self, url: str) -> dict:
        """A TensorFlow Playground link as {"spec", "unmapped", "ignored", "notes"};
        submit the spec to train it."""
        return self.request("POST", "/api/import/tfplayground", json={"url": url})

    def compare(self, jobs: list[Job | str]) -> dict:
        """GET /api/compare: aligned histories, summaries and spec differences of jobs."""
        ids = ",".join(j.id if isinstance(j, Job) else str(j) for j in jobs)
        return self.request("GET", "/api/compare", params={"ids": ids})


class Datasets:
    """`pg.datasets`: the data sets the server offers, and CSV uploads."""

    def __init__(self, pg: Playground) -> None:
        self._pg = pg

    def list(self) -> list[dict]:
        """Every data set's entry (name, task, kind, input shape, params with defaults)."""
        answer = self._pg.request("GET", "/api/datasets")
        return answer["datasets"] if isinstance(answer, dict) else answer

    def get(self, name: str) -> dict:
        return self._pg.request("GET", f"/api/datasets/{_quote(name)}")

    def upload(self, path: str | os.PathLike, target: str, *, name: str | None = None,
               task: str | None = None) -> dict:
        """Upload a CSV; `target` names the column to predict. Returns the new entry: use its
        `name` as the spec's `dataset.name`."""
        path = Path(path)
        data = {"target": target}
        if name:
            data["name"] = name
        if task:
            data["task"] = task
        with path.open("rb") as fh:
            return self._pg.request("POST", "/api/datasets", data=data,
                                    files={"file": (path.name, fh, "text/csv")})

    def delete(self, name: str) -> None:
        self._pg.request("DELETE", f"/api/datasets/{_quote(name)}")


class Job(rest.JobHandle):
    """One job. `info` is the last answer read (status, progress, metrics, spec, ...);
    `refresh()` reads it again. Control methods return the job's new state."""

    pg: Playground

    def _request(self, method: str, suffix: str = "", **kwargs: Any) -> Any:
        return self.pg.request(method, rest.job_path(self.id, suffix), token=self.token, **kwargs)

    def _update(self, info: Any) -> dict:
        if isinstance(info, dict):
            token = self.info.get("token")
            self.info = {**info, **({"token": token} if token else {})}
        return self.info

    def refresh(self) -> dict:
        """GET /api/jobs/{id}: status, progress, latest metrics, spec, error."""
        return self._update(self._request("GET"))

    @property
    def status(self) -> str:
        """The status as of now (one request)."""
        return self.refresh()["status"]

    @property
    def name(self) -> str:
        return self.info.get("name") or ""

    def wait(self, timeout: float | None = None, *, poll: float = 0.5,
             raise_on_failure: bool = False) -> dict:
        """Block until the job completes, stops or fails, or pauses because it diverged; its
        final state. TimeoutError after
        `timeout` seconds; JobFailed for a failed or stopped job when `raise_on_failure`."""
        info = rest.wait_until(self.refresh, rest.ended, timeout, poll, f"Job {self.id}")
        if raise_on_failure and info["status"] != "completed":
            raise JobFailed(self.id, info["status"], info.get("error") or info.get("stop_reason"))
        return info

    def metrics(self, *, since: int | None = None, as_frame: bool = False) -> Any:
        """The per-epoch history as a list of records (all pages); a pandas DataFrame indexed
        by epoch when `as_frame` (needs pandas)."""
        records: list[dict] = []
        cursor = since
        while True:
            params = {"limit": 100_000, **({"since": cursor} if cursor is not None else {})}
            page = self._request("GET", "/metrics", params=params)
            records.extend(page["history"])
            cursor = page.get("next_since")
            if cursor is None:
                break
        return to_frame(records) if as_frame else records

    def dataframe(self) -> Any:
        """`metrics(as_frame=True)`."""
        return self.metrics(as_frame=True)

    def control(self, action: str, unit: str | None = None) -> dict:
        body = {"action": action, **({"unit": unit} if unit else {})}
        return self._update(self._request("POST", "/control", json=body))

    def pause(self) -> dict:
        return self.control("pause")

    def resume(self) -> dict:
        return self.control("resume")

    def stop(self) -> dict:
        return self.control("stop")

    def reset(self) -> dict:
        return self.control("reset")

    def step(self, unit: str | None = None) -> dict:
        """One batch, or `unit="epoch"`: to the end of the epoch; the job stays paused."""
        return self.control("step", unit)

    def patch(self, body: dict | None = None, **settings: Any) -> dict:
        """Change settings while it trains: learning_rate, momentum, batch_size, epochs,
        regularization ({"kind", "rate"}), name; or a raw PATCH `body`."""
        return self._update(self._request("PATCH", json=rest.patch_body(body, **settings)))

    def delete(self) -> None:
        """Stop the job and delete it with its files."""
        self._request("DELETE")

    def download(self, format: str = "safetensors", path: str | os.PathLike | None = None) -> Path:
        """Save the trained model (`safetensors`, `onnx`, `torchscript`, `python`) to `path`
        (a file, or a folder for the server's file name; default: the current folder)."""
        response = self._request("GET", "/model", params={"format": format}, raw=True)
        fallback = f"job-{self.id}.{format}"
        target = Path(path) if path is not None else Path.cwd()
        if target.is_dir():
            target = target / rest.filename_of(response, fallback)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(response.content)
        partial.replace(target)
        return target

    def stream(self, *, snapshots: bool = True, hz: float | None = None,
               timeout: float | None = None, until_done: bool = True) -> Iterator[events.Event]:
        """Follow the job live: `Hello`, then `Metrics`, `Status` and `Snapshot` events
        (numpy arrays; acknowledged when you take the next event). Ends once the job has
        ended (`until_done`) or after `timeout` seconds."""
        return follow(rest.ws_url(self.pg.url, self.id, self.token), self.id,
                      snapshots=snapshots, hz=hz, timeout=timeout, until_done=until_done)

    @property
    def view_url(self) -> str:
        """The page's live view of this one job (embeddable; the token in the fragment)."""
        return rest.view_url(self.pg.url, self.id, self.token)

    def show(self, *, height: int = 560, width: str = "100%") -> Any:
        """In Jupyter: an IFrame of the job's live view (network, boundary, curves). In a
        terminal: a progress bar until the job ends, then its final state."""
        from playground.notebook import show

        return show(self, height=height, width=width)


def to_frame(records: list[dict]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise PlaygroundError("metrics(as_frame=True) needs pandas: pip install pandas") from None
    frame = pd.DataFrame.from_records(records)
    return frame.set_index("epoch") if "epoch" in frame.columns else frame


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
