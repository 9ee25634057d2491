"""The classroom's background work, from the app's start-up to its shutdown (main.py's
lifespan starts `sweep`): the start-up banner (where students go, the class code, the teacher
password), then now and then stopping the jobs paused for longer than
settings.idle_job_seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from fastapi import FastAPI

from server.api.classroom import tokens
from server.api.classroom.origins import lan_addresses
from server.config import Settings

log = logging.getLogger("playground.classroom")

IDLE_STOPPED = "stopped: paused for longer than the class allows; its model and curves are kept"


def banner(settings: Settings) -> str:
    """What the log says at start in class mode: where students go, the code, the password."""
    hosts = lan_addresses() if settings.host in ("0.0.0.0", "::") else [settings.host]
    urls = ", ".join(f"http://{h}:{settings.port}/" for h in hosts)
    if Path("/.dockerenv").exists() or not urls:  # a container's own address is no use
        urls = "http://<this computer's address>:<published port>/"
    password = ("set by PLAYGROUND_TEACHER_PASSWORD" if settings.teacher_password
                else f"{tokens.teacher_password(settings)} (generated; set "
                "PLAYGROUND_TEACHER_PASSWORD to choose one)")
    return (f"Class mode. Students open {urls} and join with the class code "
            f"{tokens.class_code(settings)}. Teacher page: /teacher, password {password}.")


def stop_idle_jobs(app: FastAPI, now: float | None = None) -> list[str]:
    """Stop the jobs paused for longer than settings.idle_job_seconds; their ids."""
    settings: Settings = app.state.settings
    if settings.is_open or settings.idle_job_seconds <= 0:
        return []
    now = time.time() if now is None else now
    store, engine = app.state.store, app.state.engine
    stopped = []
    for row in store.list_jobs():
        if row["status"] == "paused" and now - row["updated_at"] > settings.idle_job_seconds:
            try:
                engine.control(row["id"], "stop").result(timeout=30)
            except Exception as exc:  # deleted meanwhile, engine busy: the next sweep retries
                log.info("idle job %s not stopped: %s", row["id"], exc)
                continue
            store.update_job(row["id"], stop_reason=IDLE_STOPPED)
            stopped.append(row["id"])
    return stopped


async def sweep(app: FastAPI) -> None:
    """From start-up to shutdown: print the class banner, then stop idle jobs now and then."""
    settings: Settings = app.state.settings
    if not settings.is_open:
        print(banner(settings), flush=True)
    interval = min(30.0, max(0.5, settings.idle_job_seconds / 4 or 30.0))
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(stop_idle_jobs, app)
        except Exception:
            log.exception("the idle-job sweep failed")
