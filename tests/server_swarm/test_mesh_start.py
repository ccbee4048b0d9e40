"""The server's start with several peers listed uses the first one, whichever joins first.

``swarm.coordinator`` = ``[a, b]``, two real coordinators on loopback, the server's real
``SwarmBridge`` and ``MeshPeers``, real gRPC. ``b`` joins the view first; ``a`` joins within
the start's grace for the first listed peer, so the start connects to ``a``. A reconnect set
off by ``b``'s join used to race the start: on a loaded machine (the mesh CI run) it
connected to ``b`` *after* the start had connected to ``a`` and replaced it, so the server
talked to ``b`` although ``a`` was live (tests/mesh/test_lsp_mesh.py then failed at its first
step).

Two stand-ins, because the order cannot be set from outside otherwise: ``a`` is reached
through a TCP relay that holds its connections until released (``a`` joins when the test
says), and connecting to ``b`` takes 1 s (a slow handshake on a loaded machine; the real
connect runs after the pause). The server is a stand-in with what the bridge uses (settings,
log lines): a real LSP server cannot be stopped inside this window from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.config import Settings, merge
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.server import swarm_bridge
from swarm_lsp.server.swarm_bridge import SwarmBridge
from tests.dispatch.conftest import wait_until
from tests.server_swarm.test_owner_lost import _Peer

SLOW_CONNECT_S = 1.0


class _HeldRelay:
    """Forwards TCP connections to ``target`` once ``release`` is set (held until then)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.release = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.release.wait()
        host, port = self.target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (pipe(reader, up_writer), pipe(up_reader, writer)):
            self.tasks.add(asyncio.ensure_future(task))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.server is not None:
            self.server.close()


@dataclasses.dataclass
class _Server:
    settings: Settings
    lines: list[str] = dataclasses.field(default_factory=list)

    def log(self, text: str, *_: object) -> None:
        self.lines.append(text)

    def notify_user(self, text: str, *_: object) -> None:
        self.lines.append(text)


async def test_the_start_keeps_the_first_listed_peer_when_another_joins_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _Peer(tmp_path / "a"), _Peer(tmp_path / "b")
    await a.start()
    await b.start()
    relay = _HeldRelay(a.address)
    via_relay = await relay.start()
    real_connect = DispatchClient.connect

    async def connect(settings: Settings, address: str, **kwargs: Any) -> DispatchClient:
        if address == b.address:
            await asyncio.sleep(SLOW_CONNECT_S)
        return await real_connect(settings, address, **kwargs)

    monkeypatch.setattr(swarm_bridge.DispatchClient, "connect", staticmethod(connect))
    settings = merge(Settings(), {"swarm": {"coordinator": [via_relay, b.address]}})
    bridge = SwarmBridge(_Server(settings))  # type: ignore[arg-type]
    try:
        start = asyncio.ensure_future(bridge.start())
        await wait_until(lambda: bridge.mesh is not None and bridge.mesh.in_view(b.address), 10)
        relay.release.set()  # a joins now, within the start's grace for the first peer
        await asyncio.wait_for(start, 15)
        assert bridge.address == via_relay
        await asyncio.sleep(SLOW_CONNECT_S + 0.5)  # a reconnect to b would be done by now
        assert bridge.address == via_relay, bridge.ls.lines  # type: ignore[attr-defined]
    finally:
        await bridge.stop()
        await relay.stop()
        await a.stop()
        await b.stop()
