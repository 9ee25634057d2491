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
    # Disks (H5, issue 12): quotas on what is stored (0: no limit) and the free-space guard.
    max_concurrent_uploads: int = Field(
        2, ge=1, description="CSV files parsed at once; more wait up to upload_wait_seconds."
    )
    upload_wait_seconds: float = Field(
        10.0, ge=0, description="How long an upload waits for a parse slot before a 503."
    )
    max_upload_storage_per_student: int = Field(
        50 * 1024 * 1024, ge=0,
        description="Bytes of uploaded data one student may keep (stored size; 413 past it).",
    )
    max_upload_storage_total: int = Field(
        2 * 1024**3, ge=0, description="Bytes of uploaded data the server keeps (507 past it)."
    )
    max_checkpoint_storage_per_student: int = Field(
        1024**3, ge=0,
        description="Bytes of checkpoints one student's jobs may keep (413 past it).",
    )
    max_checkpoint_storage_total: int = Field(
        20 * 1024**3, ge=0,
        description="Bytes of checkpoints all jobs may keep (507 past it).",
    )
    min_free_disk_mb: int = Field(
        200, ge=0,
        description="Below this much free space in the data directory, new jobs and uploads "
        "get 507 and running jobs are paused; 0: no guard.",
    )

    # Engine.
    max_running_jobs: int = Field(
        64, ge=1, description="Jobs trained at once; more wait as queued."
    )
    max_jobs_total: int = Field(1000, ge=1, description="Most jobs kept (running or not).")
    max_active_jobs_per_client: int = Field(
        10, ge=1, description="Most running or queued jobs one caller may have."
    )
    max_sweep_variants: int = Field(
        64, ge=1, le=10_000, description="Most variants (jobs) one sweep may have (422 past it)."
    )
    time_slice_ms: float = Field(20.0, gt=0, description="How long one job runs before the next.")
    families: bool = Field(
        True, description="Train jobs whose models can run as one tensor program together "
        "(a family); false: every job alone, in its own time slices."
    )
    family_kernel: Literal["auto", "off"] = Field(
        "auto", description="auto: on the CPU a family's steps run in C kernels built with the "
        "machine's C compiler (cached); off: the torch path (what a machine without one gets)."
    )
    family_threads: int | None = Field(
        None, ge=1, le=16, description="Threads the C kernels split a family between; null: "
        "the cores but one (at most 4), leaving one for the event loop and a browser."
    )
    kernel_cache: Path | None = Field(
        None, description="Where the built C kernels are kept; null: "
        "~/.cache/nn-playground/kernels."
    )
    checkpoint_seconds: float = Field(
        10.0, gt=0, description="Checkpoint a running job this often."
    )
    # Cluster (issue 15, docs/CLUSTER.md): train on a Ray cluster instead of this process.
    ray_address: str | None = Field(
        None, description="host:port of a Ray cluster's head (GCS) to train on, as engine "
        "actors on its nodes; unset: train in this process. Needs the cluster extra.",
    )
    cluster_cpus_per_actor: float = Field(
        1.0, gt=0, description="On a node without GPUs, one engine actor per this many cores "
        "(a node with GPUs gets one per GPU).",
    )
    cluster_fault_limit: int = Field(
        3, ge=1, description="A job running on this many engine actors that died fails.",
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
    # Stream limits (H3, issue 12; docs/STREAM.md "Limits").
    stream_max_message_bytes: int = Field(
        65536, ge=1024, le=16 * 1024 * 1024,
        description="Largest message a client may send on a stream; larger: closed with 1009.",
    )
    stream_messages_per_second: float = Field(
        50.0, ge=0, description="Messages a second one stream may send (token bucket; 0: no "
        "limit); past it a message is refused with an error frame.",
    )
    stream_message_burst: int = Field(
        100, ge=1, description="Messages one stream may send at once before the rate applies."
    )
    stream_connects_per_second: float = Field(
        5.0, ge=0, description="New streams a second one client (token, else address) may "
        "open (token bucket; 0: no limit); past it a stream is closed with 4429 after a pause.",
    )
    stream_connect_burst: int = Field(
        30, ge=1, description="New streams one client may open at once before the rate applies."
    )
    stream_max_violations: int = Field(
        50, ge=1, description="Refused messages (too fast or not understood) a stream may send "
        "(one is forgiven a second) before it is closed with 1008.",
    )
    stream_max_queued_messages: int = Field(
        256, ge=8, description="Text messages waiting for one slow client; past it replies and "
        "errors are dropped (counted in one notice) and statuses coalesce.",
    )
    hello_max_points: int = Field(
        1000, ge=2, le=100_000, description="Most history points a stream's hello carries (evenly "
        "spaced, the last always included); the rest is paged from GET .../metrics.",
    )
    history_detail_epochs: int = Field(
        1000, ge=0, description="Epochs whose stored history keeps every field; past it the "
        "confusion matrices are kept only every history_detail_every-th epoch.",
    )
    history_detail_every: int = Field(
        10, ge=1,
        description="Past history_detail_epochs, store confusion matrices every Nth epoch.",
    )
    history_full_epochs: int = Field(
        10_000, ge=0, description="Epochs of a run whose every record is stored; past them one "
        "epoch in 10 is stored, past 10 times as many one in 100, and so on (a class's fast "
        "runs would otherwise write gigabytes an hour). 0: every epoch, always.",
    )
    max_concurrent_exports: int = Field(
        2, ge=1, le=16, description="Model downloads converted at once (in worker processes)."
    )
    max_queued_exports: int = Field(
        4, ge=0, description="Downloads that may wait for a converter; more get 503."
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
    max_jobs_per_student_total: int = Field(
        30,
        ge=1,
        description="Most jobs one student may keep in class mode, whatever their state "
        "(429 past it: delete old runs first).",
    )
    quota_key: Literal["token", "address", "token+address"] = Field(
        "token+address",
        description="Who a class limit counts: the student's token, their network address, or "
        "both (joining again under another name then gives no fresh quota). Use 'token' when "
        "students share one address (one NAT, or a proxy not in trusted_proxies).",
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (comma-separated); empty: none, the peer is the client.",
    )
    metrics_access: Literal["auto", "open", "teacher", "off"] = Field(
        "auto",
        description="Who may read /metrics: auto: anyone on an open server, the teacher in "
        "class mode; open; teacher; off.",
    )
    api_docs: Literal["auto", "on", "off"] = Field(
        "auto",
        description="/docs, /redoc and /openapi.json: auto: on an open server only; on; off.",
    )

    # Connections (python -m server passes these to uvicorn; docs/TEACHERS.md, Limits).
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request's headers must arrive within this (408, closed)."
    )
    body_timeout_seconds: float = Field(
        120.0, gt=0, description="A request's body must arrive within this (408, closed)."
    )
    keep_alive_seconds: float = Field(
        5.0, gt=0, description="An idle kept-alive connection is closed after this."
    )
    max_connections: int = Field(
        1000,
        ge=10,
        description="Most connections (websockets included) served at once; more get 503.",
    )
    max_header_bytes: int = Field(
        16384, ge=4096,
        description="Most bytes of a request line and headers not yet complete (400 past it).",
    )

    @field_validator("allowed_hosts", "allowed_origins", "trusted_proxies", mode="before")
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

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network like "
                                 "10.0.0.1 or 10.0.0.0/24") from None
        return value

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
