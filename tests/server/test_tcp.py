"""`swarm-lsp serve --tcp` speaks the same protocol on a loopback socket."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from swarm_lsp.dispatch.locality import check_peer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read(sock: socket.socket) -> dict:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(1)
    length = int(data.split(b"Content-Length:")[1].split(b"\r\n")[0])
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return json.loads(body)


def test_serve_over_tcp_on_loopback() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm_lsp.cli", "serve", "--tcp", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with sock:
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "capabilities": {},
                        "initializationOptions": {"swarm": {"autostart": False}},
                    },
                }
            ).encode()
            sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            while (reply := _read(sock)).get("id") != 1:
                pass
            assert reply["result"]["serverInfo"]["name"] == "swarm-lsp"
    finally:
        proc.kill()
        proc.wait()


def test_tcp_refuses_a_public_listen_address() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "swarm_lsp.cli",
            "serve",
            "--tcp",
            "--host",
            "8.8.8.8",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "not an address you own" in out.stderr
    check_peer("127.0.0.1:1")
