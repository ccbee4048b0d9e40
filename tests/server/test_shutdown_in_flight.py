"""``shutdown`` while requests are in flight answers null, and ``exit`` then ends cleanly.

pygls cancelled in-flight requests while iterating its request table, and a cancelled
``workspace/executeCommand`` removes itself from that table at once: shutdown answered
-32603 "dictionary changed size during iteration" (issue 11). Real server, real model.
"""

from __future__ import annotations

from pathlib import Path

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
        # Its work-done progress waits for a client that never answers: it stays in flight.
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
