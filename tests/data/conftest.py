"""Fixtures for the data tests: a registry with its own empty upload folder, and one torch
thread for the tests that train (so their times are comparable on a shared machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from server.config import Settings
from server.data.registry import DataRegistry


@pytest.fixture()
def registry(tmp_path: Path) -> DataRegistry:
    return DataRegistry(tmp_path / "uploads", Settings(data_dir=tmp_path))


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> DataRegistry:
    path = tmp_path_factory.mktemp("data")
    return DataRegistry(path / "uploads", Settings(data_dir=path))


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
