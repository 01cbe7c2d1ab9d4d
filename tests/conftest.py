"""Shared pytest configuration.

The library caches prepared graphs, features and matrices on disk under ``PLANNER_CACHE_DIR``.
Tests use one fresh cache per session so they never read a developer's cache and never write to
the home directory; set ``PLANNER_TEST_CACHE_DIR`` to reuse a cache between local runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    cache = os.environ.get("PLANNER_TEST_CACHE_DIR") or tempfile.mkdtemp(prefix="planner-cache-")
    os.environ["PLANNER_CACHE_DIR"] = cache


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def offline_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The app never touches the network (it checks whether the OSM tile server answers) and
    saves scenarios in the test's own workspace (AppTests: ``pytestmark``)."""
    monkeypatch.setenv("PLANNER_OFFLINE", "1")
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "workspace"))
