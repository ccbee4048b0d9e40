"""Hostile frames and messages against the real ``swarm-lsp serve`` over stdio (issue 9).

Each attack gets the answer JSON-RPC allows and exactly one log line, and the next completion
request is served by the real tiny model: the server is neither dead nor deaf. One server (and
one model load) serves the whole module; the lifecycle tests start their own.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp import paths
from tests.server.raw_client import RawServer

LIMIT = 1024 * 1024  # --max-message-bytes for this module's server
OPTIONS = {
    # A generous timeout: an empty answer must mean a deaf server, not a busy machine.
    "models": {"completionMaxTokens": 8, "completionTimeoutMs": 60_000},
    "swarm": {"autostart": False},
    "context": {"indexOnStart": False},
}
URI = "file:///tmp/swarm-attacks/example.py"
SOURCE = "def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return "
ids = itertools.count(100)


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


class Attacked:
    def __init__(self, raw: RawServer, log: Path) -> None:
        self.raw = raw
        self.log = log
        self.log_seen = 0

    def new_log_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        lines = text[self.log_seen :].splitlines()
        self.log_seen = len(text)
        return lines

    def open_doc(self, uri: str, text: str) -> None:
        doc = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        self.raw.notify("textDocument/didOpen", {"textDocument": doc})

    def completion(self, uri: str = URI) -> list[dict[str, Any]]:
        msg_id = next(ids)
        position = {"line": 5, "character": 11}
        self.raw.request(
            msg_id, "textDocument/completion", {"textDocument": {"uri": uri}, "position": position}
        )
        reply = self.raw.response(msg_id, timeout=120)
        return list(reply["result"]["items"])

    def still_completes(self) -> None:
        """A completion the model must compute (a new document each time: no cached answer)."""
        n = next(ids)
        uri = URI.replace("example", f"example{n}")
        self.open_doc(uri, SOURCE.replace("subtract", f"subtract_{n}"))
        items = self.completion(uri)
        assert items and items[0]["textEdit"]["newText"].strip(), items

    def error_reply(self) -> dict[str, Any]:
        return self.raw.wait_for(lambda m: "error" in m and "method" not in m)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacked]:
    log = tmp_path_factory.mktemp("attacks") / "server.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SWARM_LSP_MODELS", str(paths.models_dir()))
        env.setenv("SWARM_LSP_CACHE", str(tmp_path_factory.mktemp("cache")))
        raw = RawServer("--max-message-bytes", str(LIMIT), "--log-file", str(log))
    try:
        raw.initialize(OPTIONS)
        server = Attacked(raw, log)
        server.open_doc(URI, SOURCE)
        assert server.completion()  # the model is loaded and the document is open
        server.new_log_lines()
        yield server
    finally:
        raw.close()


SHUTDOWN = message(jsonrpc="2.0", id=7, method="shutdown")

FRAME_ATTACKS = {
    "huge Content-Length": (b"Content-Length: 1000000000000\r\n\r\n{}", -32600),
    "negative Content-Length": (b"Content-Length: -5\r\n\r\n{}", -32700),
    "non-numeric Content-Length": (b"Content-Length: twelve\r\n\r\n{}", -32700),
    "empty Content-Length": (b"Content-Length: \r\n\r\n{}", -32700),
    "missing Content-Length": (b"Content-Type: application/json\r\n\r\n" + SHUTDOWN, -32700),
    "garbled header": (b"\x00\xffContent-Lengt 12\r\n\r\n" + SHUTDOWN, -32700),
    "header line without end": (b"X" * 10_000 + b"\r\n\r\n", -32700),
    "body over the cap": (
        frame(
            message(
                jsonrpc="2.0",
                method="textDocument/didOpen",
                params={"textDocument": {"uri": URI, "text": "x" * LIMIT}},
            )
        ),
        -32600,
    ),
}


@pytest.mark.parametrize("attack", FRAME_ATTACKS)
def test_frame_attack_is_answered_and_the_server_serves_on(attacked: Attacked, attack: str) -> None:
    data, code = FRAME_ATTACKS[attack]
    attacked.raw.send_bytes(data)
    reply = attacked.error_reply()
    assert reply["id"] is None and reply["error"]["code"] == code, reply
    attacked.still_completes()
    assert attacked.completion()  # the first document is still open, unchanged
    lines = attacked.new_log_lines()
    warnings = [line for line in lines if "unreadable LSP frame" in line]
    assert len(warnings) == 1, lines
    assert not any("Traceback" in line for line in lines), lines


def test_body_shorter_than_its_content_length(attacked: Attacked) -> None:
    body = message(jsonrpc="2.0", id=501, method="shutdown")
    attacked.raw.send_bytes(b"Content-Length: 12\r\n\r\n" + body)
    reply = attacked.error_reply()
    assert reply["id"] is None and reply["error"]["code"] == -32700
    attacked.still_completes()  # the cut-off shutdown was not run


MESSAGE_ATTACKS = {
    "batch": (
        [
            {"jsonrpc": "2.0", "id": 301, "method": "shutdown"},
            {"jsonrpc": "2.0", "method": "exit"},
        ],
        301,
    ),
    "object id": ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "shutdown"}, None),
    "no jsonrpc field": ({"id": 303, "method": "shutdown"}, 303),
    "jsonrpc 1.0": ({"jsonrpc": "1.0", "id": 304, "method": "shutdown"}, 304),
    "method not a string": ({"jsonrpc": "2.0", "id": 305, "method": 5}, 305),
    "not an object": ("shutdown", None),
    "neither request nor response": ({"jsonrpc": "2.0", "id": 307}, 307),
    "second initialize": (
        {"jsonrpc": "2.0", "id": 308, "method": "initialize", "params": {"capabilities": {}}},
        308,
    ),
}


@pytest.mark.parametrize("attack", MESSAGE_ATTACKS)
def test_invalid_message_is_invalid_request(attacked: Attacked, attack: str) -> None:
    data, expected_id = MESSAGE_ATTACKS[attack]
    attacked.raw.send_bytes(frame(json.dumps(data).encode()))
    reply = attacked.error_reply()
    assert reply["id"] == expected_id and reply["error"]["code"] == -32600, reply
    # Nothing in it ran (no shutdown, no exit, no re-initialize): completion works and the
    # first document is still open.
    attacked.still_completes()
    assert attacked.completion()


def test_requests_before_initialize_and_exit(tmp_path: Path) -> None:
    raw = RawServer()
    try:
        raw.request(1, "textDocument/completion", {"textDocument": {"uri": URI}})
        reply = raw.response(1)
        assert reply["error"]["code"] == -32002, reply
        raw.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": SOURCE}},
        )
        raw.initialize(OPTIONS)
        server = Attacked(raw, tmp_path / "unused.log")
        assert server.completion() == []  # the didOpen before initialize was dropped
        server.open_doc(URI, SOURCE)
        server.still_completes()
    finally:
        raw.close()
    early = RawServer()
    early.notify("exit", None)
    assert early.proc.wait(timeout=30) == 1  # exit without shutdown: code 1, as LSP says
