"""Settings: every knob of the server, read from PLAYGROUND_* environment variables.

`get_settings()` is the one cached getter; tests build a `Settings(...)` and pass it to
`create_app`. A wrong value stops start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "PLAYGROUND_"


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
    checkpoint_seconds: float = Field(10.0, gt=0, description="Checkpoint a running job this often.")

    # Stream.
    snapshot_hz: float = Field(10.0, gt=0, le=60, description="Most snapshots a second per job.")
    max_snapshot_hz: float = Field(30.0, gt=0, le=60, description="Most a client may subscribe to.")
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
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
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
            problems.append(f"{ENV_PREFIX}{field.upper()}={values.get(field)!r}: {err['msg']}")
        raise SettingsError("bad setting: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
