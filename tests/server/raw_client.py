"""A bare JSON-RPC client over the server's stdio, for messages no proper client would send."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from queue import Empty, Queue
from typing import Any


class RawServer:
    """``swarm-lsp serve`` as a subprocess; send raw bytes or objects, read parsed messages."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swarm_lsp.cli", "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: Queue[dict[str, Any]] = Queue()
        self.early: dict[Any, dict[str, Any]] = {}
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers: dict[str, str] = {}
            while True:
                line = out.readline()
                if not line:
                    return
                text = line.decode().strip()
                if not text:
                    break
                key, _, value = text.partition(":")
                headers[key.lower()] = value.strip()
            body = out.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, msg_id: int, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def response(self, msg_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """The response to ``msg_id``, skipping notifications and server requests.

        Responses to other requests read on the way are kept for their own ``response`` call.
        """
        if msg_id in self.early:
            return self.early.pop(msg_id)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to request {msg_id}")
            try:
                message = self.messages.get(timeout=left)
            except Empty:
                continue
            if "method" in message or "id" not in message:
                continue
            if message["id"] == msg_id:
                return message
            self.early[message["id"]] = message

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first message (from now on) for which ``predicate`` is true."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except Empty:
                break
            if predicate(message):
                return message
        raise TimeoutError("no such message")

    def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        self.request(
            0,
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": {},
                "initializationOptions": options,
            },
        )
        result = self.response(0)
        self.notify("initialized", {})
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request(999_999, "shutdown", None)
                self.response(999_999, timeout=10)
                self.notify("exit", None)
                self.proc.wait(timeout=10)
            except (TimeoutError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
