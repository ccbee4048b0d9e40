"""The shared local swarm's bookkeeping and the project root search (plain modules)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from swarm_lsp import paths
from swarm_lsp.dispatch.shared_swarm import SharedSwarmState, any_client_alive, live_clients
from swarm_lsp.errors import DispatchError


def test_project_root_is_found_by_markers_upwards(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "tests" / "unit").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    assert paths.project_root(project / "tests" / "unit") == project.resolve()
    assert paths.project_root(project) == project.resolve()
    bare = tmp_path / "bare" / "sub"
    bare.mkdir(parents=True)
    assert paths.project_root(bare) == bare.resolve()  # no marker anywhere: kept
    (project / "tests" / "unit" / ".git").mkdir()
    assert paths.project_root(project / "tests" / "unit") == (project / "tests" / "unit").resolve()


def test_clients_are_counted_and_dead_ones_dropped(tmp_path: Path) -> None:
    state = SharedSwarmState(tmp_path)
    state.clients.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state.register(os.getpid())
    state.register(dead.pid)
    assert live_clients(state.clients) == [os.getpid()]
    assert not (state.clients / str(dead.pid)).exists()
    assert state.unregister(os.getpid()) == []
    assert not any_client_alive(state.clients)


async def test_record_is_private_and_needs_a_live_coordinator(tmp_path: Path) -> None:
    state = SharedSwarmState(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text("secret")
    async with state.locked():
        assert state.read() is None
        state.write("127.0.0.1:5", token_file, [os.getpid()], state.run_dir(os.getpid()))
        assert stat.S_IMODE(state.record.stat().st_mode) == 0o600
        record = state.read()
        assert record is not None and record["address"] == "127.0.0.1:5"
        assert record["token"] == "secret"
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        state.write("127.0.0.1:6", token_file, [gone.pid], state.run_dir(gone.pid))
        assert state.read() is None and not state.record.exists()
        state.remove()
    assert not state.folder.exists() and state.lock.exists()


async def test_the_lock_is_exclusive_and_bounded(tmp_path: Path) -> None:
    state = SharedSwarmState(tmp_path)
    order: list[str] = []

    async def holder() -> None:
        async with state.locked():
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    task = asyncio.ensure_future(holder())
    await asyncio.sleep(0.05)
    with pytest.raises(DispatchError, match="holds"):
        async with state.locked(timeout=0.1):
            pass
    async with state.locked(timeout=5):
        order.append("second in")
    await task
    assert order == ["first in", "first out", "second in"]
