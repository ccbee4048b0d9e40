"""With no coordinator configured the server starts a swarm of one and stops it on shutdown,
leaving no process behind."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import make_test_lsp_client

from tests.server_swarm.conftest import (
    SERVER_CMD,
    Editor,
    command,
    initialize,
    install_handlers,
    wait_for,
)
from tests.server_swarm.local_swarm import autostarted_server, children_of, local_swarm_ready

pytestmark = pytest.mark.slow


async def test_local_swarm_of_one_starts_and_stops_with_the_server(sample_project: Path) -> None:
    async with autostarted_server(sample_project) as server:
        editor = server.editor
        assert editor.statuses == [] or editor.statuses[0]["state"] == "starting"
        status = await wait_for(lambda: local_swarm_ready(editor), 120, "the local swarm")
        assert status["coordinator"].startswith("127.0.0.1:")
        assert {"local-refactor", "local-research", "local-test"} <= {
            m["id"] for m in status["machines"]
        }
        assert editor.statuses[0]["state"] == "starting"
        answer = await command(server.client, "swarm.status")
        assert answer["state"] == "ready"
        children = children_of(server.pid)
        assert len(children) >= 4, children  # coordinator and three workers
    deadline = time.monotonic() + 15
    while (left := children_of(server.pid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert left == [], f"orphans left behind: {left}"
    state_dirs = list(Path(os.environ["SWARM_LSP_CACHE"]).rglob("local-swarm/*"))
    assert state_dirs == [], "the local swarm's state folder is removed"


async def test_swarm_down_asks_and_answers_with_the_local_model(sample_project: Path) -> None:
    client = make_test_lsp_client()
    editor = Editor()
    editor.answer("Use fast local model")
    install_handlers(client, editor)
    await client.start_io(*SERVER_CMD)
    options: dict[str, Any] = {
        "models": {"chatMaxTokens": 16},
        "swarm": {"coordinator": "127.0.0.1:9", "autostart": False},  # nothing listens there
        "context": {"indexOnStart": False},
    }
    try:
        await initialize(client, sample_project, options, folder=True)
        down = await wait_for(
            lambda: [s for s in editor.statuses if s["state"] == "down"], 30, "a down status"
        )
        assert down[0]["coordinator"] == "127.0.0.1:9" or down[0]["message"]
        uri = (sample_project / "shapes/geometry.py").as_uri()
        span = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
        result = await command(client, "swarm.explain", uri, span, timeout=60)
        (question,) = editor.questions
        assert "not available" in question.message
        assert result["local"] is True and result["markdown"].strip()
        # Without a local answer to offer (a refactor), the failure is a clear error.
        with pytest.raises(Exception, match="not available"):
            await command(client, "swarm.refactor", uri, span, "Fix it.", timeout=60)
    finally:
        await asyncio.wait_for(client.shutdown_session(), timeout=60)
        await client.stop()
