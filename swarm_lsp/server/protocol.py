"""pygls' protocol, hardened: every frame and every request gets the answer JSON-RPC allows.

pygls 2 reads frames with a module-level loop that trusts Content-Length and answers nothing it
cannot parse. Here frames come from :mod:`swarm_lsp.server.framing` (a capped, resynchronising
reader) and each body passes :meth:`SwarmProtocol.receive` before pygls sees it:

- a body that is not JSON gets ParseError (-32700) with a null id; a frame that cannot be read
  (bad or missing Content-Length, over the cap) gets an error with a null id too;
- anything that is not a JSON-RPC 2.0 request, notification or response (a batch, an object id,
  no ``jsonrpc`` field, a non-string method) gets InvalidRequest (-32600), with its id when it
  has a usable one;
- before ``initialize`` requests get ServerNotInitialized (-32002) and notifications other than
  ``exit`` are dropped; a second ``initialize`` is refused; after ``shutdown`` requests get
  InvalidRequest;
- params that do not fit the method get InvalidParams naming the method and the cause;
- ``shutdown`` cancels the requests still in flight (each answers RequestCancelled) before it
  stops the server's work, then answers null.

A session that must authenticate (``serve --tcp``) starts with an ``initialize`` whose
``initializationOptions.swarmToken`` is the server's token; anything else is answered, and the
connection is closed (:class:`SessionRefused`).

A client's response that does not fit the result type pygls expects (eglot answers
``window/showDocument`` with ``null``) is handed over as it came, so the server-side request
that is waiting for it ends instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import JsonRPCResponseMessage, LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from swarm_lsp.server.framing import FrameError, FrameReader

log = logging.getLogger(__name__)

TOKEN_OPTION = "swarmToken"


class SessionRefused(Exception):
    """The client did not authenticate: the transport closes its connection."""


class _Ignored:
    """Stands in for a message that has already been answered with an error."""


IGNORED = _Ignored()


def _usable_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _is_result(data: Any) -> bool:
    """A response with a result (not an error) to one of our requests."""
    return (
        isinstance(data, dict)
        and "id" in data
        and "method" not in data
        and "error" not in data
        and "result" in data
    )


class SwarmProtocol(LanguageServerProtocol):
    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.required_token: str | None = None  # set by transports that must authenticate
        self.token_hint = ""  # where the user finds the token ("in <file>"), for refusals
        self.initialize_seen = False
        self.shutting_down = False

    # -- answers -------------------------------------------------------------------------------
    def reply_error(self, msg_id: Any, error: JsonRpcException) -> None:
        """An error response; ``msg_id`` None when the request's id could not be read.

        Sent as a plain object: pygls' converter drops a None id, and JSON-RPC needs ``null``.
        """
        body: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.data is not None:
            body["data"] = error.data
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": body})

    def refuse(self, msg_id: Any, reason: str) -> None:
        """Answer InvalidRequest and log one line."""
        log.warning("invalid message: %s", reason)
        self.reply_error(msg_id, JsonRpcInvalidRequest(f"Invalid Request: {reason}"))

    # -- frames --------------------------------------------------------------------------------
    async def serve_frames(self, frames: FrameReader) -> None:
        """Read and handle frames until the stream ends (SessionRefused ends it early)."""
        while (frame := await frames.next_frame()) is not None:
            if frames.skipped:
                log.warning("skipped %d stray bytes before an LSP header", frames.skipped)
                frames.skipped = 0
            if frame.error is not None:
                self.frame_refused(frame.error)
                continue
            try:
                self.receive(frame.body)
            except (SessionRefused, ConnectionError):
                raise  # the session is over (refused, or the client is gone)
            except Exception:  # a bug in a handler's dispatch must not end the session
                log.exception("could not handle a message")
            # Let what this message scheduled start before the next one is read from the buffer,
            # as when each message waited for its own read.
            await asyncio.sleep(0)

    def frame_refused(self, error: FrameError) -> None:
        log.warning("unreadable LSP frame: %s; skipping to the next header", error)
        if error.too_large:
            self.reply_error(None, JsonRpcInvalidRequest(f"Invalid Request: {error}"))
        else:
            self.reply_error(None, JsonRpcParseError(f"Parse Error: {error}"))
        if self._must_authenticate():
            raise SessionRefused(str(error))

    # -- messages ------------------------------------------------------------------------------
    def receive(self, body: bytes) -> None:
        """Check one message body and hand what is valid to pygls."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as err:
            log.warning("a message body that is not JSON: %s", err)
            self.reply_error(None, JsonRpcParseError(f"Parse Error: cannot parse message: {err}"))
            if self._must_authenticate():
                raise SessionRefused("the first message is not JSON") from None
            return
        if isinstance(data, list):
            self._refuse_batch(data)
        elif not isinstance(data, dict):
            self.refuse(None, f"a message must be a JSON object, not {type(data).__name__}")
        else:
            self._receive_object(data)
        if self._must_authenticate():  # anything but an authenticated initialize came first
            raise SessionRefused("the first message was not an initialize request")

    def _refuse_batch(self, batch: list[Any]) -> None:
        ids = [m["id"] for m in batch if isinstance(m, dict) and _usable_id(m.get("id"))]
        reason = "batch messages (JSON arrays) are not supported by LSP"
        log.warning("invalid message: %s (%d with ids)", reason, len(ids))
        for msg_id in ids or [None]:
            self.reply_error(msg_id, JsonRpcInvalidRequest(f"Invalid Request: {reason}"))

    def _receive_object(self, data: dict[str, Any]) -> None:
        has_id = "id" in data
        msg_id = data.get("id")
        if has_id and not _usable_id(msg_id):
            self.refuse(None, f"the id must be an integer or a string, not {msg_id!r:.40}")
            return
        method = data.get("method")
        if "method" in data and not isinstance(method, str):
            self.refuse(msg_id, "the method must be a string")
            return
        if data.get("jsonrpc") != "2.0":
            self.refuse(msg_id, 'the "jsonrpc" field must be "2.0"')
            return
        if self._must_authenticate() and not (method == types.INITIALIZE and has_id):
            what = method or "a response"
            self.refuse(msg_id, f"{what} before an authenticated initialize")
            return
        if method is None:
            if has_id and ("result" in data or "error" in data):
                self._dispatch(data)  # a response to one of our requests
            else:
                self.refuse(msg_id, "neither a request, a notification nor a response")
            return
        if self._admit(data, method, msg_id, has_id):
            self._dispatch(data)

    def _admit(self, data: dict[str, Any], method: str, msg_id: Any, has_id: bool) -> bool:
        """Whether the lifecycle lets ``method`` through now; answers it when not."""
        if method == types.INITIALIZE and has_id:
            if self.initialize_seen:
                self.refuse(msg_id, "the server is already initialized")
                return False
            self._authenticate(data, msg_id)
            self.initialize_seen = True
            return True
        if method == types.EXIT:
            return True
        if not self.initialize_seen:
            if has_id:
                log.warning("%s before initialize: ServerNotInitialized", method)
                self.reply_error(
                    msg_id,
                    JsonRpcServerNotInitialized(
                        f"ServerNotInitialized: {method} before initialize"
                    ),
                )
            return False
        if self.shutting_down:
            if has_id:
                self.refuse(msg_id, f"{method} after shutdown")
            return False
        return True

    def _authenticate(self, data: dict[str, Any], msg_id: Any) -> None:
        """Check (and remove) initializationOptions.swarmToken; refuse the session if wrong."""
        params = data.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        presented = options.pop(TOKEN_OPTION, None) if isinstance(options, dict) else None
        expected = self.required_token
        if expected is None or (
            isinstance(presented, str)
            and hmac.compare_digest(presented.encode(), expected.encode())
        ):
            return
        why = "no" if presented is None else "a wrong"
        message = (
            f"swarm-lsp refused the session: {why} initializationOptions.{TOKEN_OPTION} "
            f"(this server's token is {self.token_hint or 'set where it was started'})"
        )
        self.reply_error(msg_id, JsonRpcInvalidRequest(message))
        raise SessionRefused(f"{why} {TOKEN_OPTION} in initialize")

    def _must_authenticate(self) -> bool:
        return self.required_token is not None and not self.initialize_seen

    def _dispatch(self, data: dict[str, Any]) -> None:
        self.handle_message(self.structure_message(data))

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as err:
            if _is_result(data):
                log.warning("a response that does not fit its type, taken as it is: %s", data)
                return JsonRPCResponseMessage(
                    id=data["id"], jsonrpc=data.get("jsonrpc", "2.0"), result=data["result"]
                )
            method = data.get("method")
            if "id" in data and method:
                cause = err.__cause__ or err
                detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
                error = JsonRpcInvalidParams(f"invalid params for {method}: {detail}")
                log.warning("%s", error)
                self.reply_error(data["id"], error)
            else:
                log.warning("dropping a message that cannot be read: %s", err)
            return IGNORED

    def handle_message(self, message: Any) -> None:
        if message is IGNORED:
            return
        super().handle_message(message)

    # -- shutdown ------------------------------------------------------------------------------
    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """Cancel what is in flight, run the server's shutdown, answer null.

        pygls cancels in-flight requests while iterating its table of them, and a cancelled
        request removes itself from that table at once: "dictionary changed size during
        iteration" (-32603) instead of null. Cancelling from a copy, first, avoids it.
        """
        self.shutting_down = True
        cancelled = self.cancel_in_flight()
        if cancelled:
            log.info("shutdown: cancelled %d request(s) in flight", cancelled)
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        self._shutdown = True
        return None

    def cancel_in_flight(self) -> int:
        """Cancel every pending request but the current one; how many were cancelled."""
        current = self.msg_id
        # pygls keeps in-flight requests (both directions) in this table and has no public view
        # of it; iterate over a copy, as cancelling removes entries.
        pending = [
            future
            for msg_id, future in list(self._request_futures.items())
            if msg_id != current and not future.done()
        ]
        return sum(1 for future in pending if future.cancel())
