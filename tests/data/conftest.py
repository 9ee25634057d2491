"""Fixtures for the data tests: a registry with its own empty upload folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.data.registry import DataRegistry


@pytest.fixture()
def registry(tmp_path: Path) -> DataRegistry:
    return DataRegistry(tmp_path / "uploads", Settings(data_dir=tmp_path))


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> DataRegistry:
    path = tmp_path_factory.mktemp("data")
    return DataRegistry(path / "uploads", Settings(data_dir=path))
