"""``swarm.coordinator`` listing peers that can never be used: the editor is told which and why.

The real LSP server (its own process) with a list of peers the mesh's membership refuses
before probing them (no address, an address this machine does not own): the swarm is down at
once, and the message names each entry and its problem (it used to wait 10 s and say only
that none of them answered).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from swarm_lsp.config import Settings, merge
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server
from swarm_lsp.errors import DispatchError
from swarm_lsp.server.swarm_mesh import MeshPeers

from .conftest import SERVER_CMD, Editor, capabilities, install_handlers, wait_for

BAD_PEERS = "not-an-address, 8.8.8.8:7700, 8.8.8.8:7700"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD))
async def bad_peers(lsp_client: LanguageClient, sample_project: Path) -> AsyncIterator[Any]:
    editor = Editor()
    install_handlers(lsp_client, editor)
    lsp_client.editor = editor  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=sample_project.as_uri(),
            initialization_options={
                "swarm": {"coordinator": BAD_PEERS, "autostart": False},
                "context": {"indexOnStart": False},
            },
        )
    )
    # Measured from the end of initialize: the server's own start under a loaded CI machine is
    # not what this test is about (it took 15-17 s at load 10), the refusal without a probe is.
    lsp_client.started = time.monotonic()  # type: ignore[attr-defined]
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_unusable_peers_are_named_with_their_problem_at_once(bad_peers: Any) -> None:
    editor: Editor = bad_peers.editor

    def down() -> dict[str, Any] | None:
        return next((s for s in editor.statuses if s.get("state") == "down"), None)

    status = await wait_for(down, timeout=30.0, what="a down swarm/status")
    # Well inside the 10 s a probe of the peers used to wait before saying they were down.
    assert time.monotonic() - bad_peers.started < 5.0
    message = status["message"]
    assert "not-an-address: not an address" in message, message
    assert "8.8.8.8:7700: not an address you own" in message, message
    assert message.count("8.8.8.8:7700") == 1, message  # listed twice, named once


def test_a_peer_listed_twice_is_one_peer() -> None:
    settings = merge(Settings(), {"swarm": {"coordinator": "10.0.0.1:1, 10.0.0.1:1"}})
    assert settings.swarm.coordinators == ("10.0.0.1:1",)  # a star, not a mesh of two
    listed = merge(
        Settings(), {"swarm": {"coordinator": ["10.0.0.2:1", "10.0.0.1:1", "10.0.0.2:1"]}}
    )
    assert listed.swarm.coordinators == ("10.0.0.2:1", "10.0.0.1:1")


async def test_a_stopped_mesh_makes_no_client(tmp_path: Path) -> None:
    """The server's mesh stops (its settings changed, or it shuts down): nothing makes a client
    afterwards (a cancel of superseded copies still retrying used to connect again, and that
    client was never closed). A real coordinator on loopback is the peer."""
    coordinator = Coordinator(
        CoordinatorConfig(state_dir=tmp_path / "peer", routing=routing.load(), local_fallback=False)
    )
    server, port = await create_server(coordinator, "127.0.0.1:0")
    await coordinator.start()
    await server.start()
    address = f"127.0.0.1:{port}"
    mesh = MeshPeers(Settings(), [address], discover=False, on_change=lambda *_: None)
    try:
        await mesh.start()
        assert await mesh.wait_for_peer(10.0)
        assert (await mesh.client(address)).target == address
        await mesh.stop()
        assert mesh.clients == {}
        with pytest.raises(DispatchError, match="the mesh is stopped"):
            await mesh.client(address)
        assert mesh.clients == {}
    finally:
        await mesh.stop()
        await server.stop(None)
        await coordinator.stop()
