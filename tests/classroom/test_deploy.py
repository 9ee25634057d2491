"""The deployment files hold together (no Docker engine needed).

The images must install and start with the same scripts as `./play` (scripts/install.sh,
scripts/start.sh): the Dockerfiles are parsed and their RUN and CMD lines checked, then
scripts/start.sh is run here with the Dockerfile's environment (bound to 127.0.0.1) and must
answer /api/health, as the image's HEALTHCHECK asks. compose.yaml and deploy/nginx.conf are read
and checked against the settings the server really has; docs/TEACHERS.md names every setting.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from server.config import ENV_PREFIX, SCRIPT_VARIABLES, Settings, settings_from_env
from tests.conftest import ROOT, free_port

DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]
SETTING_NAMES = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            word, _, rest = current.partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def env_of(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions(path):
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_runs_the_scripts(name):
    steps = instructions(ROOT / name)
    runs = [rest for word, rest in steps if word == "RUN"]
    installs = [r for r in runs if "scripts/install.sh" in r]
    assert len(installs) == 1, runs
    assert not any(re.search(r"\bpip\b", r) for r in runs), "install only through install.sh"
    cmd = [json.loads(rest) for word, rest in steps if word == "CMD"]
    assert cmd == [["scripts/start.sh"]]
    assert ("COPY", "scripts ./scripts") in steps
    user = [rest for word, rest in steps if word == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert [json.loads(rest) for word, rest in steps if word == "VOLUME"] == [["/data"]]
    env = env_of(ROOT / name)
    assert env["PLAYGROUND_DATA_DIR"] == "/data" and env["PLAYGROUND_HOST"] == "0.0.0.0"
    assert [rest for word, rest in steps if word == "EXPOSE"] == [env["PLAYGROUND_PORT"]]
    unknown = {k for k in env if k.startswith(ENV_PREFIX)} - SETTING_NAMES - SCRIPT_VARIABLES
    assert not unknown, f"{name} sets variables the server does not know: {unknown}"
    settings_from_env(env)  # and their values are good
    health = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/api/health" in health[0] and "PLAYGROUND_PORT" in health[0]


def test_scripts_are_executable():
    for script in ("scripts/install.sh", "scripts/start.sh"):
        assert os.access(ROOT / script, os.X_OK), script


def test_start_script_serves_health_with_the_image_environment(tmp_path):
    """scripts/start.sh (the CMD) with the Dockerfile's ENV, on loopback, and its HEALTHCHECK."""
    image_env = env_of(ROOT / "Dockerfile")
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}, **image_env,
           "PLAYGROUND_VENV": str(Path(sys.executable).parent.parent),
           "PLAYGROUND_HOST": "127.0.0.1", "PLAYGROUND_PORT": str(port),
           "PLAYGROUND_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(["scripts/start.sh"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert r.json()["status"] == "ok"
        assert (tmp_path / "data" / "playground.sqlite3").exists()  # PLAYGROUND_DATA_DIR used
        health = next(json.loads(rest.split("CMD", 1)[1])
                      for word, rest in instructions(ROOT / "Dockerfile") if word == "HEALTHCHECK")
        health[0] = sys.executable
        assert subprocess.run(health, env=env, timeout=20).returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_start_script_names_a_bad_setting(tmp_path):
    env = {**os.environ, "PLAYGROUND_VENV": str(Path(sys.executable).parent.parent),
           "PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_MAX_EPOCHS": "lots"}
    done = subprocess.run(["scripts/start.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "PLAYGROUND_MAX_EPOCHS='lots'" in done.stderr


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _interpolated(value: str) -> str:
    """A compose value with ${VAR...} replaced as a filled-in .env would (a valid password)."""
    return re.sub(r"\$\{[^}]*\}", "a-good-password", str(value))


def test_compose_validates():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"playground", "playground-gpu"}
    image_env = env_of(ROOT / "Dockerfile")
    for name, service in services.items():
        dockerfile = service["build"]["dockerfile"]
        assert (ROOT / service["build"].get("context", ".") / dockerfile).exists()
        port = image_env["PLAYGROUND_PORT"]
        assert service["ports"] == [f"{port}:{port}"]
        volume, _, target = service["volumes"][0].partition(":")
        assert target == "/data" and volume in doc["volumes"]
        env = {k: _interpolated(v) for k, v in service["environment"].items()}
        unknown = set(env) - SETTING_NAMES
        assert not unknown, f"{name}: not settings: {unknown}"
        settings = settings_from_env({**env_of(ROOT / dockerfile), **env})
        assert not settings.is_open  # a classroom
        assert settings.max_active_jobs_per_client <= settings.max_active_jobs
        assert service["restart"] == "unless-stopped"
    assert services["playground"]["build"]["dockerfile"] == "Dockerfile"
    gpu = services["playground-gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.cuda" and gpu["profiles"] == ["gpu"]
    assert gpu["environment"]["PLAYGROUND_DEVICE"] == "cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_nginx_passes_websockets():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for line in ("proxy_set_header Upgrade $http_upgrade;",
                 "proxy_set_header Connection $connection_upgrade;",
                 "proxy_set_header Host $host;", "proxy_http_version 1.1;",
                 "map $http_upgrade $connection_upgrade"):
        assert line in conf, line
    assert conf.count("{") == conf.count("}")


def test_teachers_guide_names_every_setting():
    guide = (ROOT / "docs" / "TEACHERS.md").read_text()
    missing = sorted(n for n in SETTING_NAMES if n not in guide)
    assert not missing, f"docs/TEACHERS.md does not mention {missing}"
    for needed in ("sqlite3", ".backup", "checkpoints", "deploy/nginx.conf", "compose",
                   "./play --host 0.0.0.0", "/teacher"):
        assert needed in guide, needed


@pytest.mark.parametrize("name, value", [
    ("PLAYGROUND_ALLOWED_ORIGINS", "school.example/page"),
    ("PLAYGROUND_CLASS_CODE", "has space"),
    ("PLAYGROUND_TEACHER_PASSWORD", "123"),
    ("PLAYGROUND_MAX_SOCKETS_PER_CLIENT", "0"),
    ("PLAYGROUND_RATE_LIMIT_PER_SECOND", "fast"),
    ("PLAYGROUND_IDLE_JOB_SECONDS", "-1"),
])
def test_bad_classroom_settings_are_named(name, value):
    from server.config import SettingsError

    with pytest.raises(SettingsError, match=name):
        settings_from_env({name: value})


def test_lists_from_the_environment():
    settings = settings_from_env({"PLAYGROUND_ALLOWED_HOSTS": "a.example, b.example",
                                  "PLAYGROUND_ALLOWED_ORIGINS": "https://A.example"})
    assert settings.allowed_hosts == ("a.example", "b.example")
    assert settings.allowed_origins == ("https://a.example",)


def test_a_bad_password_is_not_echoed():
    from server.config import SettingsError

    with pytest.raises(SettingsError) as error:
        settings_from_env({"PLAYGROUND_TEACHER_PASSWORD": "abc"})
    assert "PLAYGROUND_TEACHER_PASSWORD=(hidden)" in str(error.value)
    assert "abc" not in str(error.value)
