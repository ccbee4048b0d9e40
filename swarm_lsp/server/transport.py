"""The doors of ``swarm-lsp serve``: stdio, TCP (token required) and a 0600 Unix socket.

Every door reads frames with :class:`~swarm_lsp.server.framing.FrameReader` and hands them to
:meth:`SwarmProtocol.serve_frames`; pygls' own read loops (which trust Content-Length) are not
used. TCP and Unix doors serve one client session: connections that are refused (no token, a
wrong token, another session already running) are closed and the door stays open for the right
client; when the session ends, the server ends, as with stdio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from pygls.io_ import StdoutWriter

from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.framing import FrameReader
from swarm_lsp.server.protocol import SessionRefused, SwarmProtocol

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0  # an unauthenticated connection holds the door at most this long


def _protocol(server: SwarmLanguageServer) -> SwarmProtocol:
    protocol = server.protocol
    assert isinstance(protocol, SwarmProtocol)
    return protocol


def serve_stdio(
    server: SwarmLanguageServer, stdin: BinaryIO, stdout: BinaryIO, max_bytes: int
) -> None:
    """Serve one session on stdin/stdout."""
    protocol = _protocol(server)
    protocol.set_writer(StdoutWriter(stdout))
    # read1 returns what has arrived (up to n) instead of waiting for n bytes.
    read1 = getattr(stdin, "read1", stdin.read)
    # Its own thread: model work fills the default executor, and reading must never wait on it.
    reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsp-stdin")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def chunk(n: int) -> Awaitable[bytes]:
            return loop.run_in_executor(reader_thread, read1, n)

        await protocol.serve_frames(FrameReader(chunk, max_bytes))

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("the client closed the connection; shutting down")
    finally:
        reader_thread.shutdown(wait=False)
        server.shutdown()


class _Door:
    """One session at a time over a stream server; refused connections leave it open."""

    def __init__(self, server: SwarmLanguageServer, where: str, max_bytes: int) -> None:
        self.server = server
        self.max_bytes = max_bytes
        self.protocol = _protocol(server)
        self.where = where
        self.busy = False
        self.done = asyncio.Event()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        refusal = self.refusal(writer)
        if refusal or self.busy:
            reason = refusal or "another client is connected"
            log.warning("%s: refused a connection from %s: %s", self.where, peer, reason)
            _write_error(writer, f"swarm-lsp refused the connection: {reason}")
            await _close(writer)
            return
        self.busy = True
        self.protocol.set_writer(writer)  # type: ignore[arg-type]
        log.info("%s: client connected from %s", self.where, peer)
        try:
            frames = FrameReader(self._reads(reader), self.max_bytes)
            await self.protocol.serve_frames(frames)
        except SessionRefused as err:
            log.warning("%s: refused the session from %s: %s", self.where, peer, err)
            self.busy = False
            await _close(writer)
            return
        except (ConnectionError, OSError) as err:
            log.warning("%s: connection from %s lost: %s", self.where, peer, err)
        log.info("%s: session from %s ended", self.where, peer)
        await _close(writer)
        self.done.set()

    def refusal(self, writer: asyncio.StreamWriter) -> str:
        """Why this connection may not even try (empty: it may)."""
        return ""

    def _reads(self, reader: asyncio.StreamReader) -> Callable[[int], Awaitable[bytes]]:
        """Chunk reads, bounded in time until the client has authenticated."""
        deadline = time.monotonic() + AUTH_TIMEOUT_S
        protocol = self.protocol

        async def chunk(n: int) -> bytes:
            if protocol.required_token is None or protocol.initialize_seen:
                return await reader.read(n)
            try:
                return await asyncio.wait_for(reader.read(n), deadline - time.monotonic())
            except TimeoutError:
                raise SessionRefused(f"no initialize within {AUTH_TIMEOUT_S:.0f} s") from None

        return chunk


class _UnixDoor(_Door):
    def refusal(self, writer: asyncio.StreamWriter) -> str:
        sock = writer.get_extra_info("socket")
        if sock is None or not hasattr(socket, "SO_PEERCRED"):
            return ""
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        if uid not in (os.getuid(), 0):
            return f"uid {uid} is not the server's user"
        return ""


def serve_tcp(
    server: SwarmLanguageServer, host: str, port: int, max_bytes: int, token: str, hint: str
) -> None:
    """Serve one authenticated session on ``host:port``; clients present ``token``."""
    protocol = _protocol(server)
    protocol.required_token = token
    protocol.token_hint = hint
    where = f"tcp {host}:{port}"

    async def main() -> None:
        door = _Door(server, where, max_bytes)
        try:
            listener = await asyncio.start_server(door.connection, host, port)
        except OSError as err:
            raise SwarmError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        log.info(
            "swarm-lsp serving LSP on %s; clients must send initializationOptions.swarmToken "
            "(the token is %s)",
            where,
            hint,
        )
        async with listener:
            await door.done.wait()

    _run(server, main())


def serve_unix(server: SwarmLanguageServer, path: Path, max_bytes: int) -> None:
    """Serve one session on a Unix socket that only this user can open (mode 0600)."""
    where = f"unix socket {path}"

    async def main() -> None:
        door = _UnixDoor(server, where, max_bytes)
        with _private_socket_path(path):
            try:
                with _umask(0o177):  # the socket is born 0600: no window where others can connect
                    listener = await asyncio.start_unix_server(door.connection, str(path))
            except OSError as err:
                raise SwarmError(f"cannot listen on {path}: {err.strerror or err}") from None
            os.chmod(path, 0o600)
            log.info("swarm-lsp serving LSP on %s (mode 0600)", where)
            async with listener:
                await door.done.wait()

    _run(server, main())


def _run(server: SwarmLanguageServer, main: Awaitable[None]) -> None:
    async def wrapped() -> None:
        await main

    try:
        asyncio.run(wrapped())
    finally:
        server.shutdown()


@contextlib.contextmanager
def _private_socket_path(path: Path) -> Iterator[None]:
    """Remove a stale socket at ``path`` (never another kind of file), and ours afterwards."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            raise SwarmError(f"{path} exists and is not a socket; choose another --socket path")
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(str(path)) == 0:
                raise SwarmError(f"{path}: another server is listening there")
        path.unlink()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "a local client")


def _write_error(writer: asyncio.StreamWriter, message: str) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    ).encode()
    with contextlib.suppress(OSError):
        writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        writer.close()
        await writer.wait_closed()
