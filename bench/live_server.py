"""A playground server for a benchmark: `python -m server` in a subprocess on a free loopback
port with its own data directory and extra environment, its log in `<data dir>/server.log`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def start_server(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """(process, base URL) once `/api/health` answers; exits the benchmark if it never does."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "server", "--host", "127.0.0.1", "--port",
                             str(port), "--data-dir", str(data_dir), "--device", "cpu"],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start; see " + str(data_dir / "server.log"))
