"""pygls' protocol, hardened: a request whose params cannot be read still gets an answer.

Stock pygls logs a request it cannot deserialise and never answers it, so the client waits
forever; a body that is not JSON is dropped without a word. Here the first gets an
InvalidParams error naming the method and the cause, the second a ParseError (id null), as
JSON-RPC 2.0 asks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)


class _Ignored:
    """Stands in for a message that has already been answered with an error."""


IGNORED = _Ignored()


class SwarmProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as err:
            method = data.get("method") if isinstance(data, dict) else None
            if isinstance(data, dict) and "id" in data and method:
                cause = err.__cause__ or err
                detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
                error = JsonRpcInvalidParams(f"invalid params for {method}: {detail}")
                self._send_response(data["id"], error=error.to_response_error())
            else:
                log.warning("dropping a message that cannot be read: %s", err)
            return IGNORED

    def handle_message(self, message: Any) -> None:
        if message is IGNORED or not hasattr(message, "jsonrpc"):
            if message is not IGNORED:
                log.warning("ignoring a message that is not JSON-RPC: %r", message)
            return
        super().handle_message(message)

    def report_unreadable_body(self, error: Exception) -> None:
        """A body that is not JSON at all: answer ParseError with a null id."""
        if isinstance(error, json.JSONDecodeError):
            message = f"{JsonRpcParseError.MESSAGE}: cannot parse message: {error}"
            self._send_data(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": JsonRpcParseError.CODE, "message": message},
                }
            )
