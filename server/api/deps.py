"""Shared dependencies as Annotated aliases: settings and the objects the lifespan made."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.config import Settings
from server.data.registry import DataRegistry
from server.engine.engine import Engine
from server.store import Store
from server.stream.hub import Hub


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _datasets(request: Request) -> DataRegistry:
    return request.app.state.datasets


def _store(request: Request) -> Store:
    return request.app.state.store


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _hub(request: Request) -> Hub:
    return request.app.state.hub


SettingsDep = Annotated[Settings, Depends(_settings)]
DatasetsDep = Annotated[DataRegistry, Depends(_datasets)]
StoreDep = Annotated[Store, Depends(_store)]
EngineDep = Annotated[Engine, Depends(_engine)]
HubDep = Annotated[Hub, Depends(_hub)]
