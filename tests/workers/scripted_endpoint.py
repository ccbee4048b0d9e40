"""A scripted OpenAI-compatible endpoint on 127.0.0.1 for tests.

The tiny default models cannot write a valid diff, so the refactor success path needs a
stand-in for the big model; this server answers ``/v1/chat/completions`` and
``/v1/completions`` with canned replies (streamed as server-sent events or as one JSON body)
and records every request, which exercises our real HTTP client end to end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ScriptedEndpoint:
    def __init__(
        self, replies: list[str], *, status: int = 200, chunk_size: int = 7, delay_s: float = 0.0
    ):
        self.replies = list(replies)
        self.status = status
        self.chunk_size = chunk_size
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    def next_reply(self) -> str:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def _handler(endpoint: ScriptedEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            body["_path"] = self.path
            endpoint.requests.append(body)
            if endpoint.status != 200:
                payload = json.dumps({"error": {"message": "scripted failure"}}).encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            reply = endpoint.next_reply()
            chat = self.path.endswith("/chat/completions")
            if not body.get("stream"):
                choice: dict[str, Any] = (
                    {"message": {"role": "assistant", "content": reply}}
                    if chat
                    else {"text": reply}
                )
                choice["finish_reason"] = "stop"
                payload = json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b": keep-alive comment\n\n")
            size = endpoint.chunk_size
            try:
                for start in range(0, len(reply), size):
                    piece = reply[start : start + size]
                    delta = {"delta": {"content": piece}} if chat else {"text": piece}
                    event = {"choices": [{**delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                    if endpoint.delay_s:
                        time.sleep(endpoint.delay_s)
                self.wfile.write(b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n')
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


@contextmanager
def serve(endpoint: ScriptedEndpoint) -> Iterator[ScriptedEndpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(endpoint))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
