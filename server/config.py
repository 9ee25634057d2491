"""Settings: every knob of the server, read from PLAYGROUND_* environment variables.

`get_settings()` is the one cached getter; tests build a `Settings(...)` and pass it to
`create_app`. A wrong value stops start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "PLAYGROUND_"
# Read by the install and start scripts (scripts/), not by the server; allowed beside settings.
SCRIPT_VARIABLES = frozenset({"PLAYGROUND_VENV", "PLAYGROUND_TORCH_INDEX"})
# Never echoed in an error message (it would land in the logs).
SECRET_FIELDS = frozenset({"teacher_password", "teacher_token"})


class Settings(BaseModel):
    """Server settings. Each field can be set as PLAYGROUND_<FIELD NAME IN CAPITALS>."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    data_dir: Path = Field(Path("data"), description="Where jobs, checkpoints and uploads live.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when available, else the CPU."
    )

    # Model limits, checked before any tensor is allocated.
    max_layers: int = Field(64, ge=1, description="Most layers in one model.")
    max_units: int = Field(4096, ge=1, description="Most units, filters or width in one layer.")
    max_parameters: int = Field(10_000_000, ge=1, description="Most trainable parameters.")
    max_memory_bytes: int = Field(
        1 << 30, ge=1 << 20, description="Most estimated training memory for one job."
    )
    max_epochs: int = Field(100_000, ge=1, description="Most epochs one job may ask for.")
    max_batch_size: int = Field(4096, ge=1, description="Largest batch size.")

    # Data limits.
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest CSV upload.")
    max_upload_rows: int = Field(100_000, ge=10, description="Most rows in an uploaded CSV.")
    max_upload_columns: int = Field(1000, ge=2, description="Most columns in an uploaded CSV.")
    max_samples: int = Field(20_000, ge=10, description="Most samples a generated set may have.")

    # Engine.
    max_running_jobs: int = Field(
        64, ge=1, description="Jobs trained at once; more wait as queued."
    )
    max_jobs_total: int = Field(1000, ge=1, description="Most jobs kept (running or not).")
    max_active_jobs_per_client: int = Field(
        10, ge=1, description="Most running or queued jobs one caller may have."
    )
    time_slice_ms: float = Field(20.0, gt=0, description="How long one job runs before the next.")
    checkpoint_seconds: float = Field(
        10.0, gt=0, description="Checkpoint a running job this often."
    )

    # Stream.
    snapshot_hz: float = Field(10.0, gt=0, le=60, description="Most snapshots a second per job.")
    max_snapshot_hz: float = Field(30.0, gt=0, le=60, description="Most a client may subscribe to.")
    unwatched_job_seconds: float = Field(
        300.0,
        ge=0,
        description="A job that trains until stopped (epochs null) and whose last watcher left "
        "this long ago is paused, so a closed browser does not train forever; 0: never.",
    )
    client_timeout_seconds: float = Field(
        60.0, gt=0, description="A client that acknowledges nothing for this long is disconnected."
    )

    # Access.
    open_mode: Literal["auto", "true", "false"] = Field(
        "auto", description="true: no tokens needed; auto: open when listening on loopback only."
    )
    teacher_token: str | None = Field(
        None, description="A token that sees and controls every job (the teacher's)."
    )

    # Classroom (docs/TEACHERS.md). Class mode = the server is not open (see is_open).
    teacher_password: str | None = Field(
        None,
        min_length=6,
        description="The teacher's password for /teacher; generated (and logged) when unset.",
    )
    class_code: str | None = Field(
        None,
        min_length=4,
        max_length=32,
        pattern=r"^[A-Za-z0-9-]+$",
        description="The code students join with; generated (and logged) when unset.",
    )
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names the server answers to (comma-separated; '*' for any). "
        "Empty: loopback names, this machine's names and any IP address.",
    )
    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Other web origins (scheme://host:port, comma-separated) whose pages "
        "may call the API and open streams; the server's own origin is always allowed.",
    )
    max_active_jobs: int = Field(
        200, ge=1, description="Most running or queued jobs on the whole server (429 past it)."
    )
    max_sockets_per_client: int = Field(
        8, ge=1, description="Most live streams one student (token or address) may hold open."
    )
    rate_limit_per_second: float = Field(
        20.0,
        ge=0,
        description="Requests a second one client may make in class mode "
        "(token bucket; 0: no limit).",
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="Requests one client may make at once before the rate applies."
    )
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="Largest JSON request body (uploads: max_upload_bytes)."
    )
    idle_job_seconds: float = Field(
        3600.0,
        ge=0,
        description="In class mode a job paused this long is stopped (its "
        "history and model are kept, its memory freed); 0: never.",
    )
    idle_socket_seconds: float = Field(
        1800.0,
        ge=0,
        description="A stream whose client sent nothing this long is closed (4408); 0: never.",
    )

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin like http://host:port")
        return tuple(o.lower() for o in value)

    @property
    def is_open(self) -> bool:
        if self.open_mode != "auto":
            return self.open_mode == "true"
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(RuntimeError):
    """A PLAYGROUND_* variable has a value the server cannot use."""


def settings_from_env(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from PLAYGROUND_* variables, then `overrides` (command-line options)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    known = set(Settings.model_fields)
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in SCRIPT_VARIABLES:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in known:
            raise SettingsError(
                f"{key} is not a setting; known: "
                + ", ".join(ENV_PREFIX + k.upper() for k in sorted(known))
            )
        values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            shown = "(hidden)" if field in SECRET_FIELDS else repr(values.get(field))
            problems.append(f"{ENV_PREFIX}{field.upper()}={shown}: {err['msg']}")
        raise SettingsError("bad setting: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
