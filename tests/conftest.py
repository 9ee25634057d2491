"""Shared fixtures: a real uvicorn server on a loopback port with its own data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A `python -m server` process on loopback. `url` is `http://127.0.0.1:<port>`."""

    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def start_server(
    data_dir: Path,
    env: dict[str, str] | None = None,
    port: int | None = None,
    timeout: float = 60.0,
    device: str = "cpu",
) -> LiveServer:
    """Start `python -m server` on a free loopback port and wait for /api/health."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    # Every epoch's record is stored, so that tests may count them however fast training runs;
    # tests/engine/test_history_thinning.py sets its own threshold.
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PLAYGROUND_HISTORY_FULL_EPOCHS": "0",
                **(env or {})}
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--device",
            device,
        ],
        cwd=ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return LiveServer(url, port, data_dir, process, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer /api/health in {timeout}s:\n{log_path.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.kill(signal.SIGTERM)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server shared by the tests that do not need a fresh one (they create their own jobs)."""
    live = start_server(tmp_path_factory.mktemp("server-data"))
    yield live
    stop_server(live)


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of its own with an empty data directory."""
    live = start_server(tmp_path / "data")
    yield live
    stop_server(live)
