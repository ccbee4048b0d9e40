"""The dashboard's door: its page and assets over HTTP, live snapshots over a WebSocket.

Everything the page loads is served from here (``static/``: no CDN, works offline). Plain
requests must name this server in ``Host`` (a page on a rebound DNS name is refused) and get
the assets only; the data flows on ``/ws``, whose handshake must come from the dashboard's own
page (``Origin``) and whose first message must carry the dashboard's token, which the page
reads from its URL fragment (never sent in a request line or a log).

Messages to the page: ``{"type": "history", "samples": [...]}`` once, then one
``{"type": "status", ...}`` per poll, and ``{"type": "cancelled", "taskId", "error"}`` for a
cancel the page asked for. From the page: ``{"token"}`` first, then ``{"cancel": taskId}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from http import HTTPStatus
from importlib import resources
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from swarm_lsp.dashboard.board import Board
from swarm_lsp.errors import SwarmError
from swarm_lsp.webdoor import OriginPolicy

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 5.0
MAX_MESSAGE_BYTES = 64 * 1024  # the page sends tokens and task ids only
MAX_QUEUED = 32  # snapshots a slow page may fall behind before older ones are dropped
CLOSE_POLICY = 1008
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/favicon.ico": ("favicon.svg", "image/svg+xml"),
}
# The page may load nothing but its own assets and talk to nothing but this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _asset(name: str) -> bytes:
    return resources.files("swarm_lsp.dashboard").joinpath("static", name).read_bytes()


class DashboardDoor:
    def __init__(self, board: Board, token: str, origins: OriginPolicy) -> None:
        self.board = board
        self.token = token.encode()
        self.origins = origins
        self.hosts = origins.hosts()

    def _response(self, status: HTTPStatus, body: bytes, content_type: str) -> Response:
        headers = Headers(
            {"Content-Type": content_type, "Content-Length": str(len(body)), **SECURITY_HEADERS}
        )
        return Response(status.value, status.phrase, headers, body)

    def _text(self, status: HTTPStatus, text: str) -> Response:
        return self._response(status, f"swarm-lsp dashboard: {text}\n".encode(), "text/plain")

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        host = (request.headers.get("Host") or "").lower()
        if host not in self.hosts:
            log.warning("dashboard: refused a request for host %r", host[:100])
            return self._text(HTTPStatus.FORBIDDEN, f"host {host[:100]!r} is not this dashboard")
        path = request.path.split("?", 1)[0]
        if path == "/ws":
            refusal = self.origins.refusal(request.headers.get("Origin"))
            if refusal:
                log.warning("dashboard: refused a WebSocket handshake: %s", refusal)
                return self._text(HTTPStatus.FORBIDDEN, refusal)
            if "upgrade" not in (request.headers.get("Connection") or "").lower():
                return self._text(HTTPStatus.BAD_REQUEST, "/ws is a WebSocket")
            return None
        if path in ASSETS:
            name, content_type = ASSETS[path]
            return self._response(HTTPStatus.OK, _asset(name), content_type)
        return self._text(HTTPStatus.NOT_FOUND, f"no page {path[:100]!r}")

    async def handler(self, ws: ServerConnection) -> None:
        try:
            first = await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT_S)
            token = json.loads(first).get("token", "") if first else ""
        except (TimeoutError, ValueError, AttributeError, ConnectionClosed):
            token = ""
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token):
            log.warning("dashboard: refused a page without the right token")
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "refused", "error": "wrong or missing token"}))
            await ws.close(CLOSE_POLICY, "wrong or missing token")
            return
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def listener(snapshot: dict[str, Any]) -> None:
            if outbox.qsize() >= MAX_QUEUED:
                with contextlib.suppress(asyncio.QueueEmpty):
                    outbox.get_nowait()
            outbox.put_nowait(snapshot)

        await ws.send(json.dumps({"type": "history", "samples": list(self.board.history)}))
        outbox.put_nowait(self.board.snapshot)
        self.board.listeners.add(listener)
        sender = asyncio.ensure_future(self._send(ws, outbox))
        try:
            async for message in ws:
                await self._command(message, outbox)
        except ConnectionClosed:
            pass
        finally:
            self.board.listeners.discard(listener)
            sender.cancel()

    async def _send(self, ws: ServerConnection, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(json.dumps(await outbox.get()))

    async def _command(self, message: str | bytes, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            command = json.loads(message)
            task_id = command["cancel"]
            if not isinstance(task_id, str) or not 0 < len(task_id) <= 200:
                raise ValueError("a task id")
        except (ValueError, KeyError, TypeError):
            outbox.put_nowait({"type": "error", "error": "unknown command"})
            return
        error = await self.board.cancel(task_id)
        if error:
            log.warning("dashboard: cancelling %s failed: %s", task_id, error)
        outbox.put_nowait({"type": "cancelled", "taskId": task_id, "error": error})


async def listen(door: DashboardDoor, host: str, port: int) -> Server:
    try:
        return await serve(
            door.handler,
            host,
            port,
            process_request=door.process_request,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
        )
    except OSError as err:
        raise SwarmError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
