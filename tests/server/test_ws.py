"""``swarm-lsp serve --ws``: the LSP over WebSocket, driven by a real WebSocket client.

A real server process on loopback with the real tiny models; the client is the ``websockets``
library, as a browser editor's language client would be (one JSON-RPC body per message).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.server.conftest import FAST_OPTIONS

SERVE = [sys.executable, "-m", "swarm_lsp.cli", "serve"]
TOKEN = "ws-test-token-" + "x" * 20
PAGE = "http://127.0.0.1:8123"  # an editor page the server is told to trust
LIMIT = 256 * 1024  # --max-message-bytes: bigger messages end the connection (close 1009)
SOURCE = "def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lsp:
    """A bare LSP client over one WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.seen: list[dict[str, Any]] = []

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))

    async def request(self, method: str, params: Any) -> int:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    async def read(self) -> dict[str, Any]:
        msg = json.loads(await asyncio.wait_for(self.ws.recv(), 120))
        if msg.get("method") == "window/workDoneProgress/create" and "id" in msg:
            await self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
        self.seen.append(msg)
        return dict(msg)

    async def reply(self, msg_id: int) -> dict[str, Any]:
        while True:
            msg = await self.read()
            if msg.get("id") == msg_id and "method" not in msg:
                return msg

    async def call(self, method: str, params: Any) -> Any:
        answer = await self.reply(await self.request(method, params))
        assert "error" not in answer, answer
        return answer["result"]

    def progress(self, token: str) -> list[dict[str, Any]]:
        return [
            m["params"]["value"]
            for m in self.seen
            if m.get("method") == "$/progress" and m["params"]["token"] == token
        ]


def _initialize(root: Path, token: str | None) -> dict[str, Any]:
    options: dict[str, Any] = dict(FAST_OPTIONS)
    if token is not None:
        options["swarmToken"] = token
    return {
        "processId": None,
        "rootUri": root.as_uri(),
        "capabilities": {
            "window": {"workDoneProgress": True},
            "textDocument": {"inlineCompletion": {}},
        },
        "initializationOptions": options,
    }


@pytest.fixture
def ws_server(sample_project: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = {**os.environ, "SWARM_LSP_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [*SERVE, "--ws", str(port), "--allow-origin", PAGE, "--max-message-bytes", str(LIMIT)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, "the server ended early"
        assert time.monotonic() < deadline, "the server did not start listening"
        time.sleep(0.1)
    try:
        yield f"ws://127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
async def lsp(
    ws_server: tuple[str, subprocess.Popen[bytes]], sample_project: Path
) -> AsyncIterator[Lsp]:
    url, _ = ws_server
    async with connect(url, origin=PAGE, max_size=None) as ws:  # type: ignore[arg-type]
        yield Lsp(ws)


async def _refused_handshake(url: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=origin):  # type: ignore[arg-type]
            pass
    return int(refused.value.response.status_code)


async def test_ws_refuses_foreign_origins_and_wrong_tokens(
    ws_server: tuple[str, subprocess.Popen[bytes]], sample_project: Path
) -> None:
    url, proc = ws_server
    # A page the user visits elsewhere: HTTP 403 before the upgrade, whatever it would send.
    assert await _refused_handshake(url, "http://evil.example") == 403
    assert await _refused_handshake(url, "http://127.0.0.1:9999") == 403

    # No Origin (not a browser), a wrong token: an InvalidRequest naming the option, then closed.
    for token in ("w" * 40, None):
        async with connect(url) as ws:
            client = Lsp(ws)
            params = _initialize(sample_project, token)
            answer = await client.reply(await client.request("initialize", params))
            assert answer["error"]["code"] == -32600
            assert "swarmToken" in answer["error"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                await client.read()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    # Anything but initialize first is refused too; the server is still waiting.
    async with connect(url) as ws:
        client = Lsp(ws)
        answer = await client.reply(await client.request("shutdown", None))
        assert answer["error"]["code"] in (-32600, -32002)
    assert proc.poll() is None

    # The right token from the allowed page: a session; a second client meanwhile gets 503.
    async with connect(url, origin=PAGE) as ws:  # type: ignore[arg-type]
        client = Lsp(ws)
        result = await client.call("initialize", _initialize(sample_project, TOKEN))
        assert result["serverInfo"]["name"] == "swarm-lsp"
        assert await _refused_handshake(url, PAGE) == 503
        # An invalid body gets its JSON-RPC answer and the session goes on.
        await ws.send("{not json")
        assert (await client.read())["error"]["code"] == -32700
        assert await client.call("shutdown", None) is None
        # A message over the cap: the library refuses it from its frame header (close 1009).
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "x", "params": "y" * LIMIT}))
        with pytest.raises(ConnectionClosed) as closed:
            await client.read()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert proc.wait(timeout=30) == 0  # the session is over, and so is the server


@pytest.mark.slow
async def test_ws_serves_completion_inline_completion_and_chat(
    lsp: Lsp, sample_project: Path
) -> None:
    result = await lsp.call("initialize", _initialize(sample_project, TOKEN))
    assert result["capabilities"]["inlineCompletionProvider"] is not None
    await lsp.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    uri = (sample_project / "scratch.py").as_uri()
    await lsp.send(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}
            },
        }
    )
    where = {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 11}}

    completion = await lsp.call("textDocument/completion", where)
    assert completion["items"][0]["textEdit"]["newText"].strip()

    inline = await lsp.call(
        "textDocument/inlineCompletion", {**where, "context": {"triggerKind": 1}}
    )
    items = inline["items"] if isinstance(inline, dict) else inline
    assert items and items[0]["insertText"].strip()

    chat = await lsp.call(
        "swarm/chat", {"prompt": "What does a Python list do?", "workDoneToken": "chat-ws"}
    )
    reports = lsp.progress("chat-ws")
    assert reports[0]["kind"] == "begin" and reports[-1]["kind"] == "end"
    deltas = [r.get("message") or "" for r in reports if r["kind"] == "report"]
    assert len(deltas) > 1, "tokens should stream as separate WebSocket messages"
    assert "".join(deltas) == chat["text"] and chat["text"].strip()

    assert await lsp.call("shutdown", None) is None
