"""Bad input gets a clear error or an empty answer, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.raw_client import RawServer

OPTIONS = {
    "models": {"completionMaxTokens": 16},
    "swarm": {"autostart": False},
    "context": {"indexOnStart": False},
}
URI = "file:///tmp/swarm-robust/example.py"


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    server.initialize(OPTIONS)
    yield server
    server.close()


def still_serves(raw: RawServer, msg_id: int) -> None:
    raw.request(msg_id, "swarm/chat", {"prompt": "hi"})
    reply = raw.response(msg_id, timeout=120)
    assert "result" in reply and reply["result"]["text"] is not None


def open_doc(raw: RawServer, text: str, uri: str = URI) -> None:
    raw.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )


def test_malformed_json_body_then_valid_request(raw: RawServer) -> None:
    body = b'{"jsonrpc": "2.0", "id": 5, "method": '
    raw.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    reply = raw.wait_for(lambda m: "error" in m)
    assert reply["id"] is None and reply["error"]["code"] == -32700
    still_serves(raw, 6)


def test_message_that_is_not_jsonrpc(raw: RawServer) -> None:
    raw.send({"hello": "world"})
    raw.send({"jsonrpc": "1.0", "id": 3, "method": "initialize"})
    still_serves(raw, 4)


def test_unknown_method_is_method_not_found(raw: RawServer) -> None:
    raw.request(7, "swarm/doesNotExist", {})
    reply = raw.response(7)
    assert reply["error"]["code"] == -32601
    raw.notify("swarm/unknownNotification", {"x": 1})
    still_serves(raw, 8)


def test_wrongly_typed_params_are_invalid_params(raw: RawServer) -> None:
    raw.request(
        9,
        "textDocument/completion",
        {"textDocument": {"uri": URI}, "position": {"line": "one", "character": None}},
    )
    reply = raw.response(9)
    assert reply["error"]["code"] in (-32602, -32603)
    still_serves(raw, 10)


@pytest.mark.parametrize(
    "position",
    [
        {"line": 10_000, "character": 0},
        {"line": 0, "character": 99_999},
        {"line": -1, "character": 0},
    ],
)
def test_out_of_range_positions(raw: RawServer, position: dict[str, int]) -> None:
    open_doc(raw, "x = 1\n")
    for msg_id, method in ((11, "textDocument/completion"), (12, "textDocument/inlineCompletion")):
        params = {"textDocument": {"uri": URI}, "position": position, "context": {"triggerKind": 1}}
        raw.request(msg_id, method, params)
        reply = raw.response(msg_id)
        if "error" in reply:  # negative numbers are not valid uintegers: a params error
            assert position["line"] < 0, reply
            assert reply["error"]["code"] == -32602
            assert method in reply["error"]["message"]
        elif position["line"] > 1:
            assert reply["result"]["items"] == []
    still_serves(raw, 13)


def test_completion_for_a_document_never_opened(raw: RawServer) -> None:
    raw.request(
        14,
        "textDocument/completion",
        {
            "textDocument": {"uri": "file:///nowhere/ghost.py"},
            "position": {"line": 0, "character": 0},
        },
    )
    assert raw.response(14)["result"]["items"] == []


def test_five_megabyte_document(raw: RawServer) -> None:
    line = "value_{0} = compute(value_{0}, 'some text to make the line longer')\n"
    text = "".join(line.format(i) for i in range(75_000))
    assert len(text.encode()) > 5_000_000
    open_doc(raw, text + "def tail():\n    return ")
    raw.request(
        15,
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": URI},
            "position": {"line": 75_001, "character": 11},
            "context": {"triggerKind": 1},
        },
    )
    reply = raw.response(15, timeout=120)
    assert "result" in reply
    raw.request(16, "textDocument/documentSymbol", {"textDocument": {"uri": URI}})
    assert "result" in raw.response(16, timeout=120)
    still_serves(raw, 17)


def test_document_closed_mid_request(raw: RawServer) -> None:
    open_doc(raw, "def area(r):\n    return ")
    raw.request(
        18,
        "textDocument/completion",
        {"textDocument": {"uri": URI}, "position": {"line": 1, "character": 11}},
    )
    raw.notify("textDocument/didClose", {"textDocument": {"uri": URI}})
    reply = raw.response(18, timeout=120)
    assert "result" in reply and isinstance(reply["result"]["items"], list)
    # Changes to a closed document are ignored, not a crash.
    raw.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": URI, "version": 3},
            "contentChanges": [
                {
                    "range": {
                        "start": {"line": 0, "character": 0},
                        "end": {"line": 0, "character": 0},
                    },
                    "text": "x",
                }
            ],
        },
    )
    still_serves(raw, 19)


def test_no_message_lost_while_models_load() -> None:
    """llama.cpp silences fd 1 while a model loads; the protocol must not be on it then."""
    server = RawServer()
    try:
        server.request(0, "initialize", {"capabilities": {}, "initializationOptions": OPTIONS})
        server.response(0)
        server.notify("initialized", {})  # both models start loading now
        for msg_id in range(1, 301):
            server.request(msg_id, "textDocument/documentSymbol", {"textDocument": {"uri": URI}})
        answered = {server.response(msg_id, timeout=120)["id"] for msg_id in range(1, 301)}
        assert answered == set(range(1, 301))
    finally:
        server.close()
