"""One long-lived stream that many callers share (submits, or results being followed).

Opened on first use; when it ends (the coordinator's error, a closed client) every caller
waiting on it is told, and the next use opens a new one.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc

from swarm_lsp.dispatch.client.types import RpcFailure

log = logging.getLogger(__name__)

Request = TypeVar("Request")


async def read_stream(call: Any, deliver: Callable[[Any], None], what: str) -> BaseException:
    """Hands each reply of a long-lived stream ``call`` to ``deliver``; returns what ended it."""
    try:
        async for reply in call:
            deliver(reply)
        return RpcFailure(f"the {what} stream ended", "UNAVAILABLE")
    except grpc.aio.AioRpcError as err:
        return err
    except asyncio.CancelledError:
        return RpcFailure("the client was closed", "CANCELLED")
    except Exception as err:  # anything else (gRPC hands up None for a bad message)
        log.warning("the %s stream failed: %r; the next use opens a new one", what, err)
        call.cancel()
        return RpcFailure(f"the {what} stream failed: {err!r}", "UNAVAILABLE")


class SharedStream(abc.ABC, Generic[Request]):
    """A request queue feeding the stream and the task reading its replies."""

    def __init__(self) -> None:
        self._out: asyncio.Queue[Request | None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    @abc.abstractmethod
    def _tell_waiters(self, error: BaseException) -> None:
        """Every caller waiting on the stream gets ``error``."""

    def close(self) -> None:
        self._closed = True
        if self._out is not None:
            self._out.put_nowait(None)
            self._out = None
        if self._reader is not None:
            # Told here, not only by the reader: cancelled before its first step, a task
            # never runs its body (and the stream may have opened in this very pass).
            self._reader.cancel()
            self._tell_waiters(RpcFailure("the client was closed", "CANCELLED"))

    async def _read_until_ended(
        self,
        call: Any,
        out: asyncio.Queue[Request | None],
        deliver: Callable[[Any], None],
        what: str,
    ) -> None:
        """Deliver the replies of ``call`` (fed by ``out``) until it ends; then tell the waiters."""
        error = await read_stream(call, deliver, what)
        if self._out is out:
            self._out = None
        out.put_nowait(None)
        self._tell_waiters(error)
