"""A real ``swarm-lsp serve`` that starts (or attaches to) the project's local swarm of one,
and what the tests of that swarm look for in ``/proc``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pytest_lsp import LanguageClient, make_test_lsp_client

from tests.server_swarm.conftest import SERVER_CMD, Editor, initialize, install_handlers

AUTOSTART_OPTIONS: dict[str, Any] = {
    "models": {"chatMaxTokens": 16},
    "swarm": {"autostart": True},
    "context": {"indexOnStart": False},
}


@dataclasses.dataclass
class LocalServer:
    client: LanguageClient
    editor: Editor
    pid: int
    killed: bool = False

    def kill(self) -> None:
        """SIGKILL the server (no shutdown: what a crashed editor leaves)."""
        os.kill(self.pid, signal.SIGKILL)
        self.killed = True


@contextlib.asynccontextmanager
async def autostarted_server(project: Path) -> AsyncIterator[LocalServer]:
    """An initialized server on ``project`` with ``swarm.autostart`` and no coordinator; shut
    down (and its process stopped) on the way out."""
    client = make_test_lsp_client()
    editor = Editor()
    install_handlers(client, editor)
    await client.start_io(*SERVER_CMD)
    server = client._server
    assert server is not None
    started = LocalServer(client, editor, server.pid)
    try:
        await initialize(client, project, AUTOSTART_OPTIONS, folder=True)
        yield started
    finally:
        if not started.killed:
            await asyncio.wait_for(client.shutdown_session(), timeout=60)
        await client.stop()


def local_swarm_ready(editor: Editor) -> dict[str, Any] | None:
    """The first ``ready`` status with the local swarm's three workers, if one came."""
    for status in editor.statuses:
        if status["state"] == "ready" and len(status["machines"]) >= 3:
            return status
    return None


def children_of(server_pid: int) -> list[int]:
    """Live processes started for this server's local swarm (they carry its pid)."""
    marker = f"SWARM_LSP_PARENT_PID={server_pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found
