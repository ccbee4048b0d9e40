"""``shutdown`` while requests are in flight answers null, and ``exit`` then ends cleanly.

pygls cancelled in-flight requests while iterating its request table, and a cancelled
``workspace/executeCommand`` removes itself from that table at once: shutdown answered
-32603 "dictionary changed size during iteration" (issue 11).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from swarm_lsp.server.app import create_server
from swarm_lsp.server.protocol import SwarmProtocol
from tests.server.raw_client import RawServer


def test_shutdown_with_a_chat_and_a_command_in_flight(tmp_path: Path) -> None:
    raw = RawServer()
    try:
        raw.request(
            0,
            "initialize",
            {
                "processId": None,
                "rootUri": tmp_path.as_uri(),
                "capabilities": {"window": {"workDoneProgress": True}},
                "initializationOptions": {
                    "models": {"chatMaxTokens": 400},
                    "swarm": {"autostart": False},
                    "context": {"indexOnStart": False},
                },
            },
        )
        raw.response(0)
        raw.notify("initialized", {})
        raw.request(1, "swarm/chat", {"prompt": "Tell a very long story about a cat."})
        # Answers at once; its job waits for a progress token this client never creates.
        raw.request(2, "workspace/executeCommand", {"command": "swarm.runTests", "arguments": []})
        raw.request(3, "shutdown", None)
        assert raw.response(3, timeout=60) == {"jsonrpc": "2.0", "id": 3, "result": None}
        for msg_id in (1, 2):
            reply = raw.response(msg_id, timeout=60)
            assert "result" in reply or reply["error"]["code"] == -32800, reply
        raw.request(4, "textDocument/hover", {"textDocument": {"uri": "file:///x.py"}})
        assert raw.response(4)["error"]["code"] == -32600  # nothing is served after shutdown
        raw.notify("exit", None)
        assert raw.proc.wait(timeout=30) == 0
    finally:
        raw.close()


class _Sink:
    """The server's writer: collects what it sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


async def test_shutdown_cancels_a_command_that_holds_its_request() -> None:
    """The exact failing case, in-process: an executeCommand (a pygls generator whose future
    removes itself from the request table when cancelled) still running at shutdown.

    The real server and protocol; only the transport is a list, and the command that never
    finishes is registered by the test (the shipped commands all answer at once now).
    """
    server = create_server()
    release = asyncio.Event()

    @server.command("test.wait")
    async def wait(ls: Any, *args: Any) -> str:
        await release.wait()
        return "released"

    protocol = server.protocol
    assert isinstance(protocol, SwarmProtocol)
    sink = _Sink()
    protocol.set_writer(sink)

    def send(msg_id: int, method: str, params: Any) -> None:
        body = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        protocol.receive(json.dumps(body).encode())

    async def reply(msg_id: int) -> dict[str, Any]:
        for _ in range(500):
            if found := [m for m in sink.sent if m.get("id") == msg_id and "method" not in m]:
                return found[0]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no reply to {msg_id}: {sink.sent}")

    send(1, "initialize", {"capabilities": {}, "initializationOptions": {}})
    assert "result" in await reply(1)
    send(2, "workspace/executeCommand", {"command": "test.wait", "arguments": []})
    send(3, "shutdown", None)
    assert await reply(3) == {"jsonrpc": "2.0", "id": 3, "result": None}
    assert (await reply(2))["error"]["code"] == -32800
