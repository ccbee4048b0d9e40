"""Shared fixtures: a fresh copy of the sample project and an isolated cache per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "swarm_lsp" / "demo" / "sample_project"


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample project."""
    dest = tmp_path / "sample_project"
    shutil.copytree(SAMPLE_PROJECT, dest)
    return dest


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Keep each test's workspace caches out of the user's real cache.

    Default models stay where ``swarm-lsp setup-models`` put them: ``SWARM_LSP_MODELS`` names
    that folder so tests find them without re-assembling.
    """
    from swarm_lsp import paths

    models = paths.models_dir()
    cache = tmp_path_factory.mktemp("swarm-cache")
    monkeypatch.setenv("SWARM_LSP_CACHE", str(cache))
    monkeypatch.setenv("SWARM_LSP_MODELS", str(models))
    return cache
