"""``swarm-lsp serve --ws``: the same LSP over WebSocket, for browser-based editors.

One WebSocket message is one JSON-RPC body (no ``Content-Length`` framing), sent as a text
message. The rules of ``serve --tcp`` hold: loopback unless told otherwise, one session at a
time, the first message must be an ``initialize`` carrying ``initializationOptions.swarmToken``
(within 10 s), and every message goes through :meth:`SwarmProtocol.receive`, so invalid bodies
get the same JSON-RPC answers as on stdio. Before the upgrade, a browser ``Origin`` that was
not allowed (``--allow-origin``) gets HTTP 403, so a web page the user visits cannot talk to
the server. A message over the size cap ends the connection with close code 1009 (the
WebSocket library refuses it from its frame header, before reading it).

pygls has a WebSocket loop of its own (``pygls[ws]``, on the same ``websockets`` package), but
it hands bodies to pygls unchecked; this door feeds our protocol instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.protocol import SessionRefused, SwarmProtocol
from swarm_lsp.server.transport import AUTH_TIMEOUT_S
from swarm_lsp.webdoor import OriginPolicy, authority

log = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # RFC 6455: policy violation (refused session)
MAX_PENDING_FACTOR = 4  # unsent bytes beyond this many max messages: the client is not reading


class WebSocketWriter:
    """pygls' writer interface over a WebSocket: messages go out in order, one sender task."""

    def __init__(self, ws: ServerConnection, max_pending_bytes: int) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending = 0
        self._max_pending = max_pending_bytes
        self._closing = False
        self._sender = asyncio.ensure_future(self._send_all())

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._pending + len(data) > self._max_pending:
            log.warning("websocket: the client does not read its messages; closing")
            self._closing = True
            self._queue.put_nowait(None)
            return
        self._pending += len(data)
        self._queue.put_nowait(data.decode("utf-8"))

    async def _send_all(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                self._queue.task_done()
                break
            try:
                await self._ws.send(text)
            except ConnectionClosed:
                break
            finally:
                self._pending -= len(text)
                self._queue.task_done()
        self._closing = True
        while not self._queue.empty():  # nothing more goes out: what waits is dropped
            self._queue.get_nowait()
            self._queue.task_done()
        await self._ws.close()

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until what was written has been sent (bounded)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    def close(self) -> None:
        self._sender.cancel()


class WebSocketDoor:
    """One authenticated session at a time; refused handshakes and sessions leave it open."""

    def __init__(
        self, server: SwarmLanguageServer, where: str, max_bytes: int, origins: OriginPolicy
    ) -> None:
        protocol = server.protocol
        assert isinstance(protocol, SwarmProtocol)
        self.protocol = protocol
        self.where = where
        self.max_bytes = max_bytes
        self.origins = origins
        self.busy = False
        self.done = asyncio.Event()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse before the upgrade: a foreign Origin (403), a second client (503)."""
        peer = _peer(connection)
        refusal = self.origins.refusal(request.headers.get("Origin"))
        if refusal:
            log.warning("%s: refused a handshake from %s: %s", self.where, peer, refusal)
            return connection.respond(HTTPStatus.FORBIDDEN, f"swarm-lsp: {refusal}\n")
        if self.busy:
            log.warning("%s: refused %s: another client is connected", self.where, peer)
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "swarm-lsp: another client is connected\n"
            )
        return None

    async def handler(self, ws: ServerConnection) -> None:
        peer = _peer(ws)
        if self.busy:  # two handshakes raced past process_request
            await ws.close(CLOSE_POLICY, "another client is connected")
            return
        self.busy = True
        writer = WebSocketWriter(ws, MAX_PENDING_FACTOR * self.max_bytes)
        self.protocol.set_writer(writer, include_headers=False)  # type: ignore[arg-type]
        log.info("%s: client connected from %s", self.where, peer)
        try:
            await self._serve(ws)
        except SessionRefused as err:
            log.warning("%s: refused the session from %s: %s", self.where, peer, err)
            await writer.drain()
            await ws.close(CLOSE_POLICY, str(err)[:120])
            writer.close()
            self.busy = False
            return
        except ConnectionClosed as err:
            log.warning("%s: connection from %s lost: %s", self.where, peer, err)
        log.info("%s: session from %s ended", self.where, peer)
        await writer.drain()
        writer.close()
        self.done.set()

    async def _serve(self, ws: ServerConnection) -> None:
        deadline = time.monotonic() + AUTH_TIMEOUT_S
        protocol = self.protocol
        while True:
            if protocol.required_token is not None and not protocol.initialize_seen:
                try:
                    message = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                except TimeoutError:
                    raise SessionRefused(f"no initialize within {AUTH_TIMEOUT_S:.0f} s") from None
            else:
                message = await ws.recv()
            body = message.encode("utf-8") if isinstance(message, str) else message
            try:
                protocol.receive(body)
            except (SessionRefused, ConnectionError):
                raise
            except Exception:  # a bug in a handler's dispatch must not end the session
                log.exception("could not handle a message")
            await asyncio.sleep(0)


def _peer(connection: ServerConnection) -> str:
    address: Any = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address or "a local client")


async def listen(door: WebSocketDoor, host: str, port: int) -> Server:
    try:
        return await serve(
            door.handler,
            host,
            port,
            process_request=door.process_request,
            max_size=door.max_bytes,
            compression=None,
            ping_interval=20,
            ping_timeout=60,
        )
    except OSError as err:
        raise SwarmError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def serve_websocket(
    server: SwarmLanguageServer,
    host: str,
    port: int,
    max_bytes: int,
    token: str,
    hint: str,
    origins: OriginPolicy,
) -> None:
    """Serve one authenticated LSP session over WebSocket on ``host:port``."""
    protocol = server.protocol
    assert isinstance(protocol, SwarmProtocol)
    protocol.required_token = token
    protocol.token_hint = hint
    where = f"websocket ws://{authority(host, port)}"

    async def main() -> None:
        door = WebSocketDoor(server, where, max_bytes, origins)
        listener = await listen(door, host, port)
        allowed = ", ".join(sorted(origins.allowed)) or "none (only clients without an Origin)"
        log.info(
            "swarm-lsp serving LSP on %s; clients must send initializationOptions.swarmToken "
            "(the token is %s); browser origins allowed: %s",
            where,
            hint,
            allowed,
        )
        async with listener:
            await door.done.wait()

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
