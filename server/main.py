"""create_app(): the FastAPI application, its lifespan (data sets, store, engine, stream hub),
its routers and the static front end. `server.main:app` is the ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server import __version__, disk
from server.api import (
    catalog,
    compare,
    datasets,
    errors,
    imports,
    inspect,
    jobs,
    models,
    pages,
    prometheus,
    stream,
    streams,
)
from server.api import sweeps as sweeps_api
from server.api import timeline as timeline_api
from server.api.classroom import wiring as classroom
from server.challenges import progress as challenge_progress
from server.config import Settings, get_settings
from server.data.registry import DataRegistry
from server.engine.engine import Engine
from server.store import Store
from server.stream.hub import Hub
from server.sweeps_store import SweepStore

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.datasets = DataRegistry(settings.data_dir / "uploads", settings)
        # The catalogue reads scikit-learn's bundled files once; pay that before the first page.
        await asyncio.to_thread(app.state.datasets.catalog)
        app.state.store = Store(settings.data_dir / "playground.sqlite3")
        app.state.sweeps = SweepStore(app.state.store)  # issue 14: sweeps beside the jobs
        app.state.hub = Hub(settings)
        app.state.engine = make_engine(settings, app.state.store, app.state.datasets)
        # Challenge runs are checked against their goal as their metrics come (server/challenges/).
        on_event = challenge_progress.listener(app, app.state.hub.on_event)
        app.state.engine.start(asyncio.get_running_loop(), on_event)
        sweeper = asyncio.create_task(classroom.sweep(app))  # banner, idle jobs
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(BaseException):
                await sweeper
            await app.state.hub.close()
            app.state.engine.stop()
            app.state.store.close()

    app = FastAPI(
        title="Neural network playground",
        version=__version__,
        description="Build a network, train it with PyTorch, watch it learn.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    disk.install(app)  # a write refused for want of space: 507, not 500 (H5)
    for module in (catalog, datasets, models, jobs, stream, streams, classroom, imports,
                   compare, inspect):
        app.include_router(module.router, prefix="/api")
    app.include_router(sweeps_api.router, prefix="/api")  # issue 14
    app.include_router(timeline_api.router, prefix="/api")  # issue 16: the timeline
    app.include_router(pages.router)
    app.include_router(classroom.pages)  # /teacher
    app.include_router(prometheus.router)  # /metrics, no /api prefix
    classroom.install(app)  # Host/Origin checks and limits, outermost (server/api/classroom/)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    return app


def make_engine(settings: Settings, store: Store, datasets: DataRegistry):
    """The engine in this process, or on the Ray cluster at settings.ray_address (issue 15,
    server/cluster/: the same methods, training on engine actors)."""
    if settings.ray_address:
        from server.cluster.engine import ClusterEngine

        return ClusterEngine(settings, store, datasets)
    return Engine(settings, store, datasets)


def __getattr__(name: str):
    # `server.main:app` for uvicorn, built on first use so that importing this module is cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
