"""The `playground` command line through subprocess: exit codes and --json output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import SPEC, spec
from tests.conftest import free_port

SCRIPT = Path(sys.executable).parent / "playground"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "playground.cli"]
ROOT = Path(__file__).resolve().parent.parent.parent


def run(*args: str, url: str | None = None, timeout: float = 120, **env: str):
    full_env = {**os.environ, **env}
    full_env.pop("PLAYGROUND_TOKEN", None)
    if url:
        full_env["PLAYGROUND_URL"] = url
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, stdin=subprocess.DEVNULL, cwd=ROOT)


def run_json(*args: str, url: str, code: int = 0):
    done = run(*args, "--json", url=url)
    assert done.returncode == code, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_the_console_script_is_installed() -> None:
    assert SCRIPT.exists(), "pip install -e . installs the `playground` console script"


def test_submit_follow_completes_with_exit_0(server, spec_file) -> None:
    path = spec_file(SPEC)
    done = run("submit", str(path), "--follow", url=server.url)
    assert done.returncode == 0, done.stderr
    assert "epoch 20/20" in done.stderr  # the progress line (plain: stderr is not a terminal)
    table = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert table["status"].strip() == "completed"
    assert table["epoch"].strip() == "20"
    assert float(table["test_loss"]) > 0
    job = run_json("submit", str(path), "--follow", url=server.url)
    assert job["status"] == "completed" and job["progress"]["epoch"] == 20
    listed = run_json("jobs", url=server.url)
    assert job["id"] in {j["id"] for j in listed}
    status = run_json("status", job["id"], url=server.url)
    assert status["status"] == "completed" and status["metrics"]["epoch"] == 20
    history = run_json("metrics", job["id"], "--since", "18", url=server.url)
    assert [r["epoch"] for r in history] == [19, 20]
    assert run("delete", job["id"], url=server.url).returncode == 0


def test_control_commands_and_a_stopped_job_exits_1(server, spec_file) -> None:
    job = run_json("submit", str(spec_file(spec(epochs=None))), "--paused", url=server.url)
    assert job["status"] == "paused"
    ident = job["id"]
    assert run_json("step", ident, url=server.url)["progress"]["step"] == 1
    assert run_json("resume", ident, url=server.url)["status"] in ("running", "queued")
    patched = run_json("patch", ident, "--learning-rate", "0.01", url=server.url)
    assert patched["spec"]["training"]["optimizer"]["learning_rate"] == 0.01
    assert run_json("pause", ident, url=server.url)["status"] == "paused"
    assert run_json("stop", ident, url=server.url)["status"] == "stopped"
    assert run("status", ident, url=server.url).returncode == 1
    watched = run("watch", ident, "--json", url=server.url)
    assert watched.returncode == 1 and json.loads(watched.stdout)["status"] == "stopped"
    refused = run_json("resume", ident, url=server.url, code=2)
    assert refused["status"] == 409
    assert run_json("delete", ident, url=server.url) == {"id": ident, "deleted": True}
    gone = run_json("status", ident, url=server.url, code=2)
    assert gone["status"] == 404 and gone["message"] == "Job not found"


def test_bad_input_exits_2(server, spec_file) -> None:
    bad = run_json("submit", str(spec_file({**SPEC, "training": {"epochs": 0}})),
                   url=server.url, code=2)
    assert bad["status"] == 422
    assert ["body", "training", "epochs"] in bad["locations"]
    plain = run("submit", str(spec_file({**SPEC, "training": {"epochs": 0}})), url=server.url)
    assert plain.returncode == 2 and "training.epochs" in plain.stderr
    missing = run_json("submit", "/nonexistent.json", url=server.url, code=2)
    assert missing["error"] == "input" and "nonexistent.json" in missing["message"]
    not_json = run_json("submit", str(spec_file("[1, 2")), url=server.url, code=2)
    assert "is not valid JSON" in not_json["message"]
    usage = run_json("download", url=server.url, code=2)
    assert usage["error"] == "usage" and "required: id" in usage["message"]
    assert run("no-such-command", url=server.url).returncode == 2


def test_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = run("jobs", "--json", url=url)
    assert done.returncode == 3
    assert json.loads(done.stdout)["error"] == "unreachable"
    assert "cannot be reached" in done.stderr
    assert run("--url", url, "status", "abc").returncode == 3  # --url before the command


def test_download_and_import(server, tmp_path) -> None:
    job = run_json("submit", str(ROOT / "examples" / "logistic-gauss.json"), "--follow",
                   url=server.url)
    try:
        saved = run_json("download", job["id"], "--format", "onnx", "-o",
                         str(tmp_path / "m.onnx"), url=server.url)
        assert saved["path"] == str(tmp_path / "m.onnx")
        assert saved["bytes"] == (tmp_path / "m.onnx").stat().st_size > 0
        plain = run("download", job["id"], "--format", "python", "-o", str(tmp_path),
                    url=server.url)
        assert plain.returncode == 0
        assert Path(plain.stdout.strip()).read_text().count("import torch") == 1
        wrong = run_json("download", job["id"], "--format", "zip", url=server.url, code=2)
        assert wrong["locations"] == [["query", "format"]]
    finally:
        run("delete", job["id"], url=server.url)
    link = "https://playground.tensorflow.org/#activation=relu&dataset=circle&networkShape=3"
    report = run_json("import-tfp", link, url=server.url)
    assert report["spec"]["dataset"]["name"] == "circle"
    out = tmp_path / "imported.json"
    created = run_json("import-tfp", link, "--submit", "-o", str(out), url=server.url)
    assert json.loads(out.read_text()) == report["spec"]
    assert created["job"]["status"] in ("queued", "running")
    run("delete", created["job"]["id"], url=server.url)
    assert run_json("import-tfp", "x=false&y=false", url=server.url, code=2)["status"] == 422


def test_ctrl_c_pauses_the_followed_job_without_a_terminal(server, spec_file) -> None:
    env = {**os.environ, "PLAYGROUND_URL": server.url}
    proc = subprocess.Popen([*COMMAND, "submit", str(spec_file(spec(epochs=None))), "--follow"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    first = proc.stderr.readline()  # "job <id>  token <token>"
    assert first.startswith("job "), first
    ident = first.split()[1]
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/api/jobs/{ident}").json()["progress"]["epoch"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"job {ident} is paused; resume it with: playground resume {ident}" in err
    assert httpx.get(f"{server.url}/api/jobs/{ident}").json()["status"] == "paused"
    httpx.delete(f"{server.url}/api/jobs/{ident}")


def test_serve_runs_the_server(tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([*COMMAND, "serve", "--port", str(port), "--data-dir",
                             str(tmp_path / "data"), "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "playground serve exited"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "no answer from playground serve"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert (tmp_path / "data" / "playground.sqlite3").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("command", ["jobs", "datasets"])
def test_list_commands_print_text(server, command) -> None:
    done = run(command, url=server.url)
    assert done.returncode == 0
    if command == "datasets":
        assert any(line.split()[0] == "xor" for line in done.stdout.splitlines())


class _EndlessJob:
    """A stand-in for a followed job: a hello, then a metrics event after another."""

    id = "0123456789abcdef"

    def stream(self, **_options):
        from playground.events import Hello, Metrics

        yield Hello({"spec": {"training": {"epochs": None}}, "status": {"status": "running"},
                     "metrics": []})
        epoch = 0
        while True:
            epoch += 1
            yield Metrics([{"epoch": epoch, "train_loss": 1.0 / epoch}])

    def refresh(self) -> dict:
        return {"status": "running", "metrics": None}


def test_a_remembered_ctrl_c_stops_the_watch_at_the_next_event() -> None:
    """A Ctrl-C whose KeyboardInterrupt Python dropped (raised inside a finalizer) still ends
    `watch`: `remembered_interrupts` keeps it, and the watch raises after the next event."""
    from playground.cli import remembered_interrupts
    from playground.progress import watch

    seen = []

    def interrupted() -> bool:
        seen.append(len(seen))
        return len(seen) >= 3

    with pytest.raises(KeyboardInterrupt):
        watch(_EndlessJob(), quiet=True, interrupted=interrupted)
    assert len(seen) == 3
    before = signal.getsignal(signal.SIGINT)
    with remembered_interrupts() as came:
        assert came() is False
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises here at the latest
        assert came() is True
    assert signal.getsignal(signal.SIGINT) is before
