"""Sweeps in the client: `Sweep` (sync) and `AsyncSweep`, one sweep on the server, and what
the command line needs to ask for one and show it.

    sweep = pg.sweep("examples/mlp-spiral.json",
                     [{"path": "training.optimizer.learning_rate", "values": [0.001, 0.01, 0.1]},
                      {"path": "model.layers.0.units", "range": [2, 16], "count": 4,
                       "scale": "log"}])
    final = sweep.wait()
    for v in ranked(final["variants"]):
        print(v["values"], v["metrics"]["test_loss"])

A sweep's jobs are ordinary jobs under the sweep's token (`sweep.jobs`: `Job` or `AsyncJob`).
`parse_axis` reads the command line's `--axis path=v1,v2` and `--axis path=lo:hi:count[:log]`;
`ranked` sorts variants by a test metric; `variant_table` prints them.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO
from urllib.parse import quote

from playground import rest
from playground.errors import JobFailed

ENDED = (*rest.TERMINAL, "deleted")  # a variant deleted on its own is over too
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse")


def sweep_path(sweep_id: str, suffix: str = "") -> str:
    return f"/api/sweeps/{quote(str(sweep_id), safe='')}{suffix}"


def sweep_body(base: dict, axes: list[dict], mode: str, count: int | None) -> dict:
    body: dict[str, Any] = {"base": base, "axes": list(axes), "mode": mode}
    if count is not None:
        body["count"] = count
    return body


def _failure(info: dict) -> JobFailed | None:
    bad = [v for v in info.get("variants", []) if v.get("status") in ("failed", "stopped")
           or v.get("stop_reason") == "diverged"]
    if not bad:
        return None
    return JobFailed(bad[0]["job"], bad[0]["status"],
                     f"{len(bad)} of {len(info['variants'])} variants of sweep {info['id']} "
                     "did not complete")


def _over(info: dict) -> bool:
    return all(v.get("status") in ENDED or rest.ended(v) for v in info.get("variants", []))


class SweepHandle:
    """What `Sweep` and `AsyncSweep` share: id, token, `jobs` (the variants' job handles, in
    order) and `info`, the last answer read about the sweep."""

    def __init__(self, pg: Any, sweep_id: str, token: str | None, job_ids: list[str],
                 job_class: type, info: dict | None = None) -> None:
        self.pg = pg
        self.id = str(sweep_id)
        self.token = token or pg.token
        self.jobs = [job_class(pg, job_id, self.token) for job_id in job_ids]
        self.info: dict = dict(info or {})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.id!r}, variants={len(self.jobs)}, "
                f"status={self.info.get('status')!r})")


class Sweep(SweepHandle):
    """One sweep (`pg.sweep(...)`, `pg.sweep_of(id)`). Control methods act on every variant
    and return the sweep's new state."""

    def _request(self, method: str, suffix: str = "", **kwargs: Any) -> Any:
        return self.pg.request(method, sweep_path(self.id, suffix), token=self.token, **kwargs)

    def refresh(self) -> dict:
        """GET /api/sweeps/{id}: base, axes, mode, status and every variant (job, values,
        status, epoch, epochs, latest metrics)."""
        self.info = self._request("GET")
        return self.info

    def status(self) -> str:
        """running, paused or finished (one request)."""
        return self.refresh()["status"]

    def variants(self) -> list[dict]:
        """Every variant as of now (one request): {"job", "values", "status", "epoch",
        "epochs", "metrics"}."""
        return self.refresh()["variants"]

    def wait(self, timeout: float | None = None, *, poll: float = 0.5,
             raise_on_failure: bool = False) -> dict:
        """Block until every variant has completed, stopped, failed or been deleted; the
        sweep's final state. TimeoutError after `timeout` s; JobFailed when a variant failed or
        was stopped and `raise_on_failure`."""
        info = rest.wait_until(self.refresh, _over, timeout, poll, f"Sweep {self.id}")
        if raise_on_failure and (failed := _failure(info)) is not None:
            raise failed
        return info

    def control(self, action: str) -> dict:
        self.info = self._request("POST", "/control", json={"action": action})
        return self.info

    def pause(self) -> dict:
        return self.control("pause")

    def resume(self) -> dict:
        return self.control("resume")

    def stop(self) -> dict:
        return self.control("stop")

    def delete(self) -> None:
        """Delete the sweep and every job of it."""
        self._request("DELETE")


class AsyncSweep(SweepHandle):
    """The async `Sweep`."""

    async def _request(self, method: str, suffix: str = "", **kwargs: Any) -> Any:
        return await self.pg.request(method, sweep_path(self.id, suffix), token=self.token,
                                     **kwargs)

    async def refresh(self) -> dict:
        self.info = await self._request("GET")
        return self.info

    async def status(self) -> str:
        return (await self.refresh())["status"]

    async def variants(self) -> list[dict]:
        return (await self.refresh())["variants"]

    async def wait(self, timeout: float | None = None, *, poll: float = 0.5,
                   raise_on_failure: bool = False) -> dict:
        info = await rest.wait_until_async(self.refresh, _over, timeout, poll,
                                           f"Sweep {self.id}")
        if raise_on_failure and (failed := _failure(info)) is not None:
            raise failed
        return info

    async def control(self, action: str) -> dict:
        self.info = await self._request("POST", "/control", json={"action": action})
        return self.info

    async def pause(self) -> dict:
        return await self.control("pause")

    async def resume(self) -> dict:
        return await self.control("resume")

    async def stop(self) -> dict:
        return await self.control("stop")

    async def delete(self) -> None:
        await self._request("DELETE")


# ---- the command line's part ------------------------------------------------------------------


def _value(text: str) -> Any:
    """A number, true/false/null or a JSON string as JSON reads it; anything else as text
    (`relu`, `adam`)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value


def parse_axis(text: str) -> dict:
    """`path=v1,v2,...` (values) or `path=low:high:count[:log|:linear]` (a range; a random
    sweep may leave out the count) as an axis; ValueError for anything else."""
    path, sep, spec = text.partition("=")
    path, spec = path.strip(), spec.strip()
    if not sep or not path or not spec:
        raise ValueError(f"--axis {text!r}: write PATH=V1,V2,... or PATH=LOW:HIGH:COUNT[:log], "
                         "e.g. training.optimizer.learning_rate=0.001,0.01,0.1")
    parts = spec.split(":")
    if "," not in spec and len(parts) >= 2 and all(_number(p) is not None for p in parts[:2]):
        axis: dict[str, Any] = {"path": path, "range": [float(parts[0]), float(parts[1])]}
        for extra in parts[2:]:
            if extra in ("log", "linear"):
                axis["scale"] = extra
            elif extra.isdigit() and "count" not in axis:
                axis["count"] = int(extra)
            else:
                raise ValueError(f"--axis {text!r}: after LOW:HIGH come a count and 'log' or "
                                 f"'linear'; got {extra!r}")
        return axis
    values = [_value(v.strip()) for v in spec.split(",") if v.strip()]
    if not values:
        raise ValueError(f"--axis {text!r} has no values")
    return {"path": path, "values": values}


def sort_metric(variants: list[dict]) -> str | None:
    """The test metric to rank by: test_accuracy when the variants report it, else
    test_loss, else the first test_ metric they report."""
    keys: list[str] = []
    for v in variants:
        for key, value in (v.get("metrics") or {}).items():
            if (key.startswith("test_") and isinstance(value, int | float)
                    and not isinstance(value, bool) and key not in keys):
                keys.append(key)
    for preferred in ("test_accuracy", "test_loss"):
        if preferred in keys:
            return preferred
    return keys[0] if keys else None


def ranked(variants: list[dict], metric: str | None = None) -> list[dict]:
    """The variants, best first by `metric` (default `sort_metric`): lower first for a loss or
    an error, higher first otherwise; variants without it last, in their order."""
    metric = metric or sort_metric(variants)
    if metric is None:
        return list(variants)
    lower = any(word in metric for word in LOWER_IS_BETTER)

    def key(v: dict) -> tuple:
        value = (v.get("metrics") or {}).get(metric)
        if not isinstance(value, int | float):
            return (1, 0.0)
        return (0, value if lower else -value)

    return sorted(variants, key=key)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.5g}"
    return "-" if value is None else str(value)


def variant_table(info: dict, metric: str | None = None, stream: TextIO | None = None) -> None:
    """Print the sweep's variants, best first: job, status, epoch, each axis, the metric."""
    stream = stream or sys.stdout
    variants = info.get("variants", [])
    metric = metric or sort_metric(variants)
    paths = [a["path"] for a in info.get("axes", [])]
    header = ["job", "status", "epoch", *paths, *([metric] if metric else [])]
    rows = [[v["job"], v["status"], _cell(v.get("epoch")),
             *(_cell(v["values"].get(p)) for p in paths),
             *([_cell((v.get("metrics") or {}).get(metric))] if metric else [])]
            for v in ranked(variants, metric)]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
              file=stream)
