"""The Python client (playground.client) against a live server: every method, and its errors
carrying the server's status, sentence and location."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from playground import (
    BadRequest,
    Conflict,
    Forbidden,
    Hello,
    JobFailed,
    Metrics,
    NotFound,
    Playground,
    Snapshot,
    Status,
    Unreachable,
)
from server.engine.samples import BOUNDARY
from tests.client.conftest import SPEC, spec


def test_submit_a_file_wait_and_read_the_history(pg: Playground, spec_file) -> None:
    job = pg.submit(spec_file(SPEC))
    assert job.info["status"] in ("queued", "running")
    assert job.token and pg.token == job.token  # the first job's token is kept for the next
    final = job.wait(timeout=60)
    assert final["status"] == "completed"
    assert final["progress"]["epoch"] == 20
    records = job.metrics()
    assert [r["epoch"] for r in records] == list(range(1, 21))
    assert {"train_loss", "test_loss", "test_accuracy", "learning_rate"} <= set(records[-1])
    assert job.metrics(since=15) == records[15:]
    frame = job.dataframe()
    assert list(frame.index) == list(range(1, 21))
    assert frame.loc[20, "test_loss"] == pytest.approx(records[-1]["test_loss"])
    assert job.id in {j.id for j in pg.jobs()}
    assert pg.job(job.id).info["status"] == "completed"


def test_download_formats(pg: Playground, tmp_path) -> None:
    job = pg.submit(SPEC)
    job.wait(timeout=60)
    onnx_path = job.download("onnx", tmp_path / "model.onnx")
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(onnx_path))
    assert model.graph.input[0].name
    into_folder = job.download("python", tmp_path)
    assert into_folder.parent == tmp_path and into_folder.name == f"job-{job.id}.py"
    assert "import torch" in into_folder.read_text()
    with pytest.raises(BadRequest) as caught:
        job.download("pickle", tmp_path / "x")
    assert caught.value.status == 422
    assert caught.value.locations == [["query", "format"]]
    assert "offered formats" in caught.value.message
    assert not (tmp_path / "x").exists()


def test_control_and_patch(pg: Playground) -> None:
    job = pg.submit(spec(epochs=None), start=False, name="controlled")
    assert job.info["status"] == "paused" and job.name == "controlled"
    stepped = job.step()
    assert stepped["progress"]["step"] == 1
    assert job.step("epoch")["progress"]["epoch"] == 1
    assert job.resume()["status"] in ("running", "queued")
    patched = job.patch(learning_rate=0.01, batch_size=20)
    assert patched["spec"]["training"]["optimizer"]["learning_rate"] == 0.01
    assert patched["spec"]["training"]["batch_size"] == 20
    assert job.patch({"name": "renamed"})["name"] == "renamed"
    assert job.pause()["status"] == "paused"
    assert job.stop()["status"] == "stopped"
    with pytest.raises(Conflict) as caught:
        job.resume()
    assert caught.value.status == 409 and "stopped" in caught.value.message
    with pytest.raises(TypeError, match="unknown setting 'lr'"):
        job.patch(lr=0.1)
    job.delete()
    with pytest.raises(NotFound) as gone:
        pg.job(job.id)
    assert gone.value.status == 404 and gone.value.message == "Job not found"


def test_a_bad_patch_names_the_field(pg: Playground) -> None:
    job = pg.submit(spec(epochs=None), start=False)
    with pytest.raises(BadRequest) as caught:
        job.patch(learning_rate=-1)
    assert caught.value.status == 422
    assert ["body", "training", "optimizer", "learning_rate"] in caught.value.locations


def test_stream_yields_metrics_and_decoded_snapshots(pg: Playground) -> None:
    # Started once the stream is open: 60 small epochs take milliseconds, a job started at
    # once could end before the socket opens (its hello would then hold every epoch).
    job = pg.submit(spec(epochs=60, batch_size=50), start=False)
    seen: list = []
    snapshots: list[Snapshot] = []
    for event in job.stream(hz=30, timeout=60):
        seen.append(event)
        if isinstance(event, Hello):
            job.resume()
        if isinstance(event, Snapshot):
            snapshots.append(event)
    assert isinstance(seen[0], Hello) and seen[0].spec["dataset"]["name"] == "xor"
    epochs = [p["epoch"] for e in seen if isinstance(e, Metrics) for p in e.points]
    epochs = [p["epoch"] for p in seen[0].metrics] + epochs
    assert epochs == list(range(1, 61))  # every epoch once, in order
    statuses = [e.status for e in seen if isinstance(e, Status)]
    assert statuses[-1] == "completed"
    # Several frames came: each was acknowledged (the server sends the next only after an ack).
    assert len(snapshots) >= 2
    first, last = snapshots[0], snapshots[-1]
    boundary = last["output.boundary"]
    assert boundary.shape == (1, BOUNDARY, BOUNDARY) and boundary.dtype == np.float32
    assert 0.0 <= boundary.min() <= boundary.max() <= 1.0
    assert last.arrays["output.boundary"].dtype == np.uint8
    assert last["layer0.heatmap"].shape == (4, 20, 20)
    assert last["layer0.weight"].shape == (4, 2)
    assert last.epoch > first.epoch
    assert not np.allclose(first["output.boundary"], boundary)  # the boundary moved


def test_stream_of_a_finished_job_ends(pg: Playground) -> None:
    job = pg.submit(SPEC)
    job.wait(timeout=60)
    events = list(job.stream(timeout=20))
    assert isinstance(events[0], Hello) and events[0].status["status"] == "completed"
    assert len(events[0].metrics) == 20


def test_wait_and_stream_end_when_the_job_diverges(pg: Playground) -> None:
    """A diverging job pauses at its last good state (it is not failed): for a script that
    waits or follows it, it has ended, and `raise_on_failure` says why."""
    job = pg.submit({"dataset": {"name": "plane"},
                     "model": {"layers": [{"type": "dense", "units": 8, "activation": "relu"}]},
                     "training": {"epochs": 50, "batch_size": 10, "loss": "mse",
                                  "optimizer": {"name": "sgd", "learning_rate": 100}}})
    info = job.wait(timeout=60)
    assert (info["status"], info["stop_reason"]) == ("paused", "diverged")
    assert info["error"].startswith("diverged: loss became")
    with pytest.raises(JobFailed, match="diverged: loss became"):
        job.wait(timeout=10, raise_on_failure=True)
    events = list(job.stream(timeout=20))  # ends by itself: the hello says it diverged
    assert isinstance(events[0], Hello) and events[0].status["stop_reason"] == "diverged"


def test_bad_spec_raises_with_message_and_location(pg: Playground, spec_file) -> None:
    bad = {**SPEC, "model": {"layers": [{"type": "dense", "units": 0}]}}
    with pytest.raises(BadRequest) as caught:
        pg.submit(bad)
    err = caught.value
    assert err.status == 422
    assert ["body", "model", "layers", 0, "dense", "units"] in err.locations
    assert "greater than or equal to 1" in err.message
    assert str(err).startswith("422 (POST /api/jobs): model.layers.0.dense.units:")
    with pytest.raises(BadRequest) as unknown:
        pg.submit({**SPEC, "dataset": {"name": "no-such-set"}})
    assert unknown.value.locations[0][:3] == ["body", "dataset", "name"]
    with pytest.raises(ValueError, match="is not valid JSON"):
        pg.submit(spec_file("{not json"))
    with pytest.raises(FileNotFoundError):
        pg.submit("/nonexistent/spec.json")


def test_unknown_job(pg: Playground) -> None:
    with pytest.raises(NotFound) as caught:
        pg.job("0123456789abcdef")
    assert caught.value.status == 404 and caught.value.message == "Job not found"
    with pytest.raises(NotFound) as streamed:
        list(_job(pg, "0123456789abcdef").stream(timeout=10))
    assert streamed.value.status == 4404


def _job(pg: Playground, job_id: str):
    from playground import Job

    return Job(pg, job_id)


def test_wrong_or_missing_token_is_refused(class_server) -> None:
    student = class_server.join("Ana")
    with Playground(class_server.url, token=student) as ana:
        job = ana.submit(spec(epochs=None), start=False)
        assert job.token == student
        assert [j.id for j in ana.jobs()] == [job.id]
    with Playground(class_server.url, token="not-a-token-of-this-server") as stranger:
        with pytest.raises(Forbidden) as wrong:
            stranger.job(job.id)
        assert wrong.value.status == 403
        assert wrong.value.message == "This job belongs to someone else"
        with pytest.raises(Forbidden) as streamed:
            list(_job(stranger, job.id).stream(timeout=10))
        assert streamed.value.status == 4403
    with Playground(class_server.url) as nobody:
        with pytest.raises(Forbidden) as missing:
            nobody.job(job.id)
        assert missing.value.status == 403 and "token" in missing.value.message


def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Playground(f"http://127.0.0.1:{port}") as pg, pytest.raises(Unreachable) as caught:
        pg.health()
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_url_and_token_from_the_environment(server, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_URL", server.url + "/")
    monkeypatch.setenv("PLAYGROUND_TOKEN", "tok")
    with Playground() as pg:
        assert pg.url == server.url and pg.token == "tok"
        assert pg.health()["status"] == "ok"
    with pytest.raises(ValueError, match="must start with http"):
        Playground("127.0.0.1:8000")


def test_datasets_list_upload_and_train(pg: Playground, tmp_path) -> None:
    names = {d["name"] for d in pg.datasets.list()}
    assert {"xor", "spiral", "circle"} <= names
    csv = tmp_path / "grades.csv"
    rows = ["hours,sleep,passed"] + [f"{h},{s},{int(h + s > 10)}"
                                      for h in range(8) for s in range(4, 9)]
    csv.write_text("\n".join(rows) + "\n")
    entry = pg.datasets.upload(csv, target="passed", name="client-grades")
    try:
        assert entry["name"] == "client-grades" and entry["rows"] == 40
        assert pg.datasets.get("client-grades")["task"] == "classification"
        job = pg.submit({"dataset": {"name": "client-grades"},
                         "model": {"layers": [{"type": "dense", "units": 4}]},
                         "training": {"epochs": 3}})
        assert job.wait(timeout=60)["status"] == "completed"
        job.delete()
        with pytest.raises(BadRequest) as no_target:
            pg.datasets.upload(csv, target="nope", name="client-grades-2")
        assert "nope" in no_target.value.message
    finally:
        pg.datasets.delete("client-grades")
    with pytest.raises(NotFound):
        pg.datasets.get("client-grades")


def test_import_a_tf_playground_link(pg: Playground) -> None:
    report = pg.import_tfp("https://playground.tensorflow.org/#activation=tanh&dataset=xor"
                           "&networkShape=4,2&learningRate=0.03")
    assert report["spec"]["dataset"]["name"] == "xor"
    assert [layer["units"] for layer in report["spec"]["model"]["layers"]] == [4, 2]
    with pytest.raises(BadRequest) as caught:
        pg.import_tfp("x=false&y=false")
    assert caught.value.locations == [["body", "url"]]
