"""Sweeps from the client (issue 18): `pg.sweep`, the `Sweep` handle and its async twin, and
`playground sweep` through subprocess (exit codes, --json, the ranked table)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import httpx
import pytest

from playground import BadRequest, Forbidden, Job, NotFound, Playground, Sweep
from playground.aio import AsyncJob, AsyncPlayground
from playground.sweeps import parse_axis, ranked
from tests.client.conftest import SPEC, spec
from tests.client.test_cli import COMMAND, ROOT, run, run_json

LR = "training.optimizer.learning_rate"
UNITS = "model.layers.0.units"


def test_sweep_wait_variants_and_delete(pg: Playground) -> None:
    sweep = pg.sweep(spec(epochs=4), [{"path": LR, "values": [0.05, 0.5]},
                                      {"path": UNITS, "range": [2, 8], "count": 2}])
    assert isinstance(sweep, Sweep) and len(sweep.jobs) == 4
    assert all(isinstance(j, Job) and j.token == sweep.token for j in sweep.jobs)
    assert pg.token == sweep.token  # the client keeps the first token it is given
    final = sweep.wait(timeout=120, raise_on_failure=True)
    assert final["status"] == "finished" and sweep.status() == "finished"
    variants = sweep.variants()
    assert [v["values"] for v in variants] == [{LR: 0.05, UNITS: 2}, {LR: 0.05, UNITS: 8},
                                               {LR: 0.5, UNITS: 2}, {LR: 0.5, UNITS: 8}]
    assert all(v["status"] == "completed" and v["metrics"]["epoch"] == 4 for v in variants)
    assert sweep.jobs[2].refresh()["spec"]["training"]["optimizer"]["learning_rate"] == 0.5
    assert len(sweep.jobs[0].metrics()) == 4
    best = ranked(variants)  # test_accuracy, higher first
    accuracies = [v["metrics"]["test_accuracy"] for v in best]
    assert accuracies == sorted(accuracies, reverse=True)
    again = pg.open_sweep(sweep.id)
    assert [j.id for j in again.jobs] == [j.id for j in sweep.jobs]
    assert sweep.id in {s.id for s in pg.sweeps()}
    sweep.delete()
    with pytest.raises(NotFound):
        sweep.refresh()
    with pytest.raises(NotFound):
        sweep.jobs[0].refresh()


def test_controls_and_a_bad_axis(pg: Playground, spec_file) -> None:
    sweep = pg.sweep(str(spec_file(spec(epochs=None))), [{"path": UNITS, "values": [2, 3]}])
    assert {v["status"] for v in sweep.pause()["variants"]} == {"paused"}
    assert {v["status"] for v in sweep.resume()["variants"]} <= {"queued", "running"}
    stopped = sweep.stop()
    assert stopped["status"] == "finished"
    with pytest.raises(Exception) as failed:
        sweep.wait(timeout=30, raise_on_failure=True)
    assert f"variants of sweep {sweep.id} did not complete" in str(failed.value)
    sweep.delete()
    with pytest.raises(BadRequest) as bad:
        pg.sweep(SPEC, [{"path": "model.layers.0.unit", "values": [2]}])
    assert bad.value.status == 422
    assert bad.value.locations == [["body", "axes", 0, "path"]]
    assert "it can vary: " in bad.value.message and UNITS in bad.value.message


def test_the_async_twin(server) -> None:
    async def main():
        async with AsyncPlayground(server.url) as pg:
            sweep = await pg.sweep(spec(epochs=3), [
                {"path": "training.optimizer.name", "values": ["sgd", "adam"]}])
            final = await sweep.wait(timeout=120)
            variants = await sweep.variants()
            opened = await pg.open_sweep(sweep.id)
            history = await sweep.jobs[1].metrics()
            await sweep.delete()
            return sweep, final, variants, opened, history

    sweep, final, variants, opened, history = asyncio.run(main())
    assert all(isinstance(j, AsyncJob) for j in sweep.jobs)
    assert final["status"] == "finished"
    assert [v["values"] for v in variants] == [{"training.optimizer.name": "sgd"},
                                               {"training.optimizer.name": "adam"}]
    assert [j.id for j in opened.jobs] == [j.id for j in sweep.jobs]
    assert len(history) == 3


def test_another_token_is_refused(class_server) -> None:
    ana, ben = class_server.join("Ana sweeps"), class_server.join("Ben sweeps")
    with Playground(class_server.url, token=ana) as mine:
        sweep = mine.sweep({**SPEC, "start": False}, [{"path": LR, "values": [0.1, 0.2]}])
        assert sweep.token == ana
    with Playground(class_server.url, token=ben) as theirs:
        with pytest.raises(Forbidden) as refused:
            theirs.open_sweep(sweep.id)
        assert refused.value.message == "This sweep belongs to someone else"
        with pytest.raises(NotFound):
            theirs.open_sweep("no-such-sweep")
        assert theirs.sweeps() == []
    with Playground(class_server.url, token=ana) as mine:
        mine.open_sweep(sweep.id).delete()
        assert mine.sweeps() == [] and mine.jobs() == []


def test_parse_axis() -> None:
    assert parse_axis("training.optimizer.learning_rate=0.001,0.01,0.1") == {
        "path": LR, "values": [0.001, 0.01, 0.1]}
    assert parse_axis("model.layers.0.activation=relu,tanh") == {
        "path": "model.layers.0.activation", "values": ["relu", "tanh"]}
    assert parse_axis("model.layers.0.bias=true,false") == {
        "path": "model.layers.0.bias", "values": [True, False]}
    assert parse_axis("training.optimizer.learning_rate=0.001:1:4:log") == {
        "path": LR, "range": [0.001, 1.0], "count": 4, "scale": "log"}
    assert parse_axis("model.layers.0.units=2:16:3") == {
        "path": UNITS, "range": [2.0, 16.0], "count": 3}
    assert parse_axis("training.seed=0:100") == {"path": "training.seed", "range": [0.0, 100.0]}
    assert parse_axis("training.batch_size=16") == {"path": "training.batch_size",
                                                    "values": [16]}
    for bad in ("learning_rate", "=1,2", "x=", "x=1:2:three"):
        with pytest.raises(ValueError):
            parse_axis(bad)


# ---- the command line -------------------------------------------------------------------------


def test_cli_sweep_follow_ranks_the_variants(server, spec_file) -> None:
    path = str(spec_file(spec(epochs=3)))
    done = run("sweep", path, "--axis", f"{LR}=0.01,1", "--axis", f"{UNITS}=2:8:2",
               "--follow", url=server.url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("sweep ") and "4/4 done" in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["job", "status", "epoch", LR, UNITS, "test_accuracy"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 4 and {r[1] for r in rows} == {"completed"}
    accuracies = [float(r[-1]) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert {(float(r[3]), int(r[4])) for r in rows} == {(0.01, 2), (0.01, 8), (1, 2), (1, 8)}
    followed = done.stderr.split()[1]
    final = run_json("sweep", path, "--axis", f"{LR}=0.01,0.1", "--follow", "--sort",
                     "test_loss", url=server.url)
    assert final["sorted_by"] == "test_loss" and final["status"] == "finished"
    losses = [v["metrics"]["test_loss"] for v in final["variants"]]
    assert losses == sorted(losses)
    made = run_json("sweep", path, "--axis", "training.seed=0:1000", "--mode", "random",
                    "--count", "3", url=server.url)
    assert set(made) == {"id", "token", "jobs"} and len(made["jobs"]) == 3
    plain = run("sweep", path, "--axis", f"{LR}=0.2", url=server.url)
    assert plain.returncode == 0, plain.stderr
    first, job_id = plain.stdout.splitlines()
    assert first.startswith("sweep ") and " 1 jobs  token " in first
    assert httpx.get(f"{server.url}/api/jobs/{job_id}").status_code == 200
    for sweep_id in (followed, final["id"], made["id"], first.split()[1]):
        assert httpx.delete(f"{server.url}/api/sweeps/{sweep_id}").status_code == 204


def test_cli_sweep_bad_input_exits_2(server, spec_file) -> None:
    path = str(spec_file(SPEC))
    error = run_json("sweep", path, "--axis", "training.optimizer.lr=0.1", url=server.url, code=2)
    assert error["status"] == 422 and error["locations"] == [["body", "axes", 0, "path"]]
    error = run_json("sweep", path, "--axis", f"{UNITS}=2,many", url=server.url, code=2)
    assert error["locations"] == [["body", "axes", 0, "values", 1]]
    assert "value \"many\"" in error["message"]
    error = run_json("sweep", path, "--axis", "learning_rate", url=server.url, code=2)
    assert error["error"] == "input" and "PATH=V1,V2" in error["message"]
    error = run_json("sweep", path, url=server.url, code=2)
    assert "at least one --axis" in error["message"]
    error = run_json("sweep", path, "--axis", f"{LR}=0.1", "--mode", "random", url=server.url,
                     code=2)
    assert "--count" in error["message"]
    error = run_json("sweep", str(spec_file("{", "broken.json")), "--axis", f"{LR}=0.1",
                     url=server.url, code=2)
    assert "not valid JSON" in error["message"]


def test_cli_sweep_with_a_stopped_variant_exits_1(server, spec_file) -> None:
    env = {**os.environ, "PLAYGROUND_URL": server.url}
    env.pop("PLAYGROUND_TOKEN", None)
    proc = subprocess.Popen(
        [*COMMAND, "sweep", str(spec_file(spec(epochs=None))), "--axis", f"{UNITS}=2,3",
         "--follow"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT)
    first = proc.stderr.readline()  # "sweep <id>  2 jobs  token <token>"
    assert first.startswith("sweep "), first
    sweep_id = first.split()[1]
    deadline = time.monotonic() + 30
    while min(v["epoch"] for v in httpx.get(
            f"{server.url}/api/sweeps/{sweep_id}").json()["variants"]) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    httpx.post(f"{server.url}/api/sweeps/{sweep_id}/control",
               json={"action": "stop"}).raise_for_status()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["stopped", "stopped"]
    assert httpx.delete(f"{server.url}/api/sweeps/{sweep_id}").status_code == 204
