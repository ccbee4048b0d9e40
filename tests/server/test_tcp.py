"""The network doors of ``swarm-lsp serve``: TCP needs the token, the Unix socket is 0600.

Real server processes on loopback / a socket in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.dispatch.locality import check_peer

SERVE = [sys.executable, "-m", "swarm_lsp.cli", "serve"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(ready: Callable[[], Any], proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            if value := ready():
                return value
        except OSError:
            pass
        assert proc.poll() is None, "the server ended early"
        assert time.monotonic() < deadline, "the server did not start listening"
        time.sleep(0.1)


class Session:
    """A bare LSP connection on a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(30)
        self.buffer = b""

    def send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def initialize(self, msg_id: int, options: dict[str, Any] | None) -> None:
        params = {"capabilities": {}, "initializationOptions": options}
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": params})

    def _more(self) -> bytes:
        data = self.sock.recv(65536)
        self.buffer += data
        return data

    def read(self) -> dict[str, Any] | None:
        """The next message, or None when the server closed the connection."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._more():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            if not self._more():
                return None
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        return dict(json.loads(rest[:length]))

    def reply(self, msg_id: Any) -> dict[str, Any]:
        while (msg := self.read()) is not None:
            if msg.get("id") == msg_id and "method" not in msg:
                return msg
        raise AssertionError(f"connection closed before the reply to {msg_id}")

    def closed_by_server(self) -> bool:
        while self.read() is not None:
            pass
        return True


def test_tcp_session_needs_the_token(isolated_cache: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([*SERVE, "--tcp", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:

        def connect() -> Session:
            return Session(socket.create_connection(("127.0.0.1", port), timeout=5))

        first = _wait_until(connect, proc)
        token_file = isolated_cache / "serve-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()

        # No token: a clear error, then the connection is closed.
        first.initialize(1, {"swarm": {"autostart": False}})
        refused = first.reply(1)
        assert refused["error"]["code"] == -32600
        assert "swarmToken" in refused["error"]["message"]
        assert str(token_file) in refused["error"]["message"]
        assert first.closed_by_server()

        # A wrong token, a request other than initialize, an exit: refused the same way.
        for attempt in (
            {"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
                "capabilities": {}, "initializationOptions": {"swarmToken": "x" * 43}}},
            {"jsonrpc": "2.0", "id": 3, "method": "workspace/executeCommand",
             "params": {"command": "swarm.runTests"}},
            {"jsonrpc": "2.0", "method": "exit"},
        ):  # fmt: skip
            session = connect()
            session.send(attempt)
            if "id" in attempt:
                assert session.reply(attempt["id"])["error"]["code"] in (-32600, -32002)
            assert session.closed_by_server()
        assert proc.poll() is None  # the refused exit did not end the server

        # The token: served; a second client meanwhile is turned away.
        good = connect()
        good.initialize(5, {"swarmToken": token, "swarm": {"autostart": False}})
        assert good.reply(5)["result"]["serverInfo"]["name"] == "swarm-lsp"
        intruder = connect()
        assert "another client" in str(intruder.read())
        assert intruder.closed_by_server()
        good.send({"jsonrpc": "2.0", "id": 6, "method": "shutdown"})
        assert good.reply(6)["result"] is None
        good.send({"jsonrpc": "2.0", "method": "exit"})
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


_CONNECT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
try:
    sock.connect(sys.argv[1])
except OSError as err:
    sys.exit(print(type(err).__name__))
data = b""
while chunk := sock.recv(4096):
    data += chunk
print(data.decode())
"""


SYSTEM_PYTHON = Path("/usr/bin/python3")  # one another user may run (the venv's is under /root)


def _connect_as_nobody(path: Path) -> str:
    other = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", _CONNECT, str(path)],
        user=65534,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return other.stdout.strip()


def test_unix_socket_is_private_and_serves() -> None:
    folder = Path(tempfile.mkdtemp(prefix="swarm-lsp-sock-"))  # under /tmp, open to all
    folder.chmod(0o755)
    path = folder / "lsp.sock"
    proc = subprocess.Popen([*SERVE, "--socket", str(path)], stderr=subprocess.DEVNULL)
    try:

        def connect() -> Session:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(path))
            return Session(sock)

        session = _wait_until(connect, proc)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        if os.getuid() == 0 and SYSTEM_PYTHON.exists():  # CI runs as root
            # Another user can reach the folder; only the socket's mode keeps them out.
            assert _connect_as_nobody(path) == "PermissionError"
            # With the mode opened up, the server still turns another uid away (SO_PEERCRED).
            path.chmod(0o666)
            assert "uid 65534 is not the server's user" in _connect_as_nobody(path)
            path.chmod(0o600)
        session.initialize(1, {"swarm": {"autostart": False}})
        assert session.reply(1)["result"]["serverInfo"]["name"] == "swarm-lsp"
        session.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        assert session.reply(2)["result"] is None
        session.send({"jsonrpc": "2.0", "method": "exit"})
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _serve_fails(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )
    assert out.returncode == 1, out
    return out.stderr


def test_tcp_refuses_a_public_listen_address() -> None:
    assert "not an address you own" in _serve_fails("--tcp", "--host", "8.8.8.8", "--port", "1")
    check_peer("127.0.0.1:1")


def test_tcp_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a" * 40)
    token_file.chmod(0o644)
    args = ("--tcp", "--port", str(_free_port()), "--token-file", str(token_file))
    assert "chmod 600" in _serve_fails(*args)
    short = {**os.environ, "SWARM_LSP_SERVE_TOKEN": "short"}
    assert "under 16 characters" in _serve_fails(*args, env=short)


@pytest.mark.parametrize("where", ["file", "listening"])
def test_socket_path_that_is_taken(tmp_path: Path, where: str) -> None:
    path = tmp_path / "taken"
    if where == "file":
        path.write_text("not a socket")
        assert "is not a socket" in _serve_fails("--socket", str(path))
        assert path.read_text() == "not a socket"
        return
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen()
        assert "another server is listening" in _serve_fails("--socket", str(path))
