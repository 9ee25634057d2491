"""GET /api/compare?ids=a,b,c: several jobs' metric histories aligned on one epoch axis, each
job's spec summary, and the spec fields that differ between them.

The alignment and the spec diff are plain functions (`align_histories`, `spec_differences`,
`spec_summary`) so they can be tested without a server; the route only reads jobs from the
store, with the same authorization as reading each job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from server.api.deps import SettingsDep, StoreDep, TokenDep, authorize_job
from server.api.errors import JOB_NOT_FOUND
from server.engine.engine import JobNotFound

router = APIRouter()

MAX_COMPARED = 10
# Labels and switches that say nothing about how a job learns.
NOT_COMPARED = ("name", "start")


def align_histories(histories: list[list[dict[str, Any]]]) -> tuple[list[int], list[dict]]:
    """The sorted union of epochs and, per job, `{metric: [value or None per epoch]}`.

    Each history is a list of per-epoch records (`{"epoch": 3, "train_loss": ..., ...}`); a job
    that has no record for an epoch (it is shorter, or started later) gets None there, and a
    metric a job never reported is absent from that job's dict.
    """
    epochs = sorted({int(r["epoch"]) for h in histories for r in h if r.get("epoch") is not None})
    index = {e: i for i, e in enumerate(epochs)}
    aligned: list[dict] = []
    for history in histories:
        series: dict[str, list] = {}
        for record in history:
            if record.get("epoch") is None:
                continue
            i = index[int(record["epoch"])]
            for name, value in record.items():
                if name == "epoch" or not isinstance(value, int | float | type(None)):
                    continue
                series.setdefault(name, [None] * len(epochs))[i] = value
        aligned.append(series)
    return epochs, aligned


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": [1, {"c": 2}]}}` -> `{"a.b.0": 1, "a.b.1.c": 2}`; empty containers kept."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: value}


def spec_differences(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fields (dotted paths such as `training.optimizer.learning_rate` or
    `model.layers.1.units`) whose values are not the same in every spec, with the value per spec
    (None where a spec has no such field, e.g. a layer the other network lacks)."""
    flat = [{k: v for k, v in _flatten(s).items() if k.split(".")[0] not in NOT_COMPARED}
            for s in specs]
    fields: list[str] = []
    for f in flat:
        fields.extend(k for k in f if k not in fields)
    sentinel = object()
    out = []
    for name in fields:
        values = [f.get(name, sentinel) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out.append({"field": name, "values": [None if v is sentinel else v for v in values]})
    return out


def _layer_text(layer: dict[str, Any]) -> str:
    detail = [str(layer[k]) for k in ("units", "filters", "hidden", "heads", "rate", "kernel_size")
              if k in layer and layer[k] is not None]
    if layer.get("activation") not in (None, "none", "linear"):
        detail.append(str(layer["activation"]))
    return " ".join([str(layer.get("type", "?")), *detail])


def spec_summary(spec: dict[str, Any]) -> dict[str, Any]:
    """The few settings a comparison table shows for one job."""
    dataset = spec.get("dataset", {})
    model = spec.get("model", {})
    training = spec.get("training", {})
    optimizer = training.get("optimizer", {})
    regularization = training.get("regularization", {}) or {}
    return {
        "name": spec.get("name", ""),
        "dataset": dataset.get("name"),
        "features": dataset.get("features"),
        "layers": [_layer_text(layer) for layer in model.get("layers", [])],
        "optimizer": optimizer.get("name"),
        "learning_rate": optimizer.get("learning_rate"),
        "batch_size": training.get("batch_size"),
        "regularization": regularization.get("kind"),
        "regularization_rate": regularization.get("rate"),
        "epochs": training.get("epochs"),
    }


def compare_jobs(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison of jobs given as `{"id", "status", "spec", "history"}` dicts."""
    epochs, aligned = align_histories([job["history"] for job in jobs])
    metrics: list[str] = []
    for series in aligned:
        metrics.extend(name for name in series if name not in metrics)
    return {
        "epochs": epochs,
        "metrics": metrics,
        "jobs": [
            {"id": job["id"], "status": job.get("status"), "summary": spec_summary(job["spec"]),
             "spec": job["spec"], "metrics": series}
            for job, series in zip(jobs, aligned, strict=True)
        ],
        "differences": spec_differences([job["spec"] for job in jobs]),
    }


def parse_ids(ids: str) -> list[str]:
    """The job ids of `?ids=a,b,c`: at least two, at most MAX_COMPARED, no repeats."""
    parsed = [i.strip() for i in ids.split(",") if i.strip()]
    if len(parsed) < 2:
        raise HTTPException(422, "Give at least two job ids to compare, e.g. ?ids=a,b")
    if len(parsed) > MAX_COMPARED:
        raise HTTPException(422, f"Compare at most {MAX_COMPARED} jobs at once; got {len(parsed)}")
    if len(set(parsed)) != len(parsed):
        raise HTTPException(422, "A job id is repeated in ids; give each job once")
    return parsed


@router.get("/compare")
def compare(store: StoreDep, settings: SettingsDep, token: TokenDep,
            ids: str = Query(..., description="Two or more job ids, comma-separated.")) -> dict:
    """Aligned metric histories, spec summaries and spec differences of several jobs. The
    caller must be allowed to read every one of them (its token, the teacher's, or an open
    server)."""
    jobs = []
    for job_id in parse_ids(ids):
        try:
            row = authorize_job(store, settings, job_id, token)
        except JobNotFound:
            raise HTTPException(404, f"{JOB_NOT_FOUND}: {job_id}") from None
        jobs.append({"id": row["id"], "status": row.get("status"), "spec": row["spec"],
                     "history": store.history(job_id)})
    return compare_jobs(jobs)
