"""Work-done progress that can be fed from any thread (model tokens arrive on a worker thread)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from lsprotocol import types

from swarm_lsp.server.app import SwarmLanguageServer


def client_supports_progress(ls: SwarmLanguageServer) -> bool:
    window = ls.client_capabilities.window
    return bool(window and window.work_done_progress)


class ProgressStream:
    """begin → report(delta)… → end on one token; ``report_threadsafe`` is safe off the loop."""

    def __init__(self, ls: SwarmLanguageServer, token: Any) -> None:
        self.ls = ls
        self.token = token
        self.loop = asyncio.get_running_loop()
        self.active = token is not None

    @classmethod
    async def open(
        cls, ls: SwarmLanguageServer, token: Any, title: str, *, cancellable: bool = False
    ) -> ProgressStream:
        """Use the client's token, or create one when the client supports progress."""
        if token is None and client_supports_progress(ls):
            token = await _created(ls, f"swarm-{uuid.uuid4().hex[:12]}")
        return cls._begun(ls, token, title, cancellable)

    @classmethod
    async def create(cls, ls: SwarmLanguageServer, token: Any, title: str) -> ProgressStream:
        """A server-created, cancellable progress on ``token`` (None: no progress at all)."""
        if token is not None:
            token = await _created(ls, token)
        return cls._begun(ls, token, title, True)

    @classmethod
    def _begun(
        cls, ls: SwarmLanguageServer, token: Any, title: str, cancellable: bool
    ) -> ProgressStream:
        stream = cls(ls, token)
        if stream.active:
            ls.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title=title, cancellable=cancellable)
            )
        return stream

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.active:
            self.ls.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def report_threadsafe(self, message: str) -> None:
        if self.active:
            self.loop.call_soon_threadsafe(self.report, message)

    def end(self, message: str | None = None) -> None:
        if self.active:
            self.active = False
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


async def _created(ls: SwarmLanguageServer, token: Any) -> Any:
    """``token`` once the client accepted it (``window/workDoneProgress/create``); None when it
    refuses or does not answer within a few seconds: no progress then, the work goes on."""
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), timeout=5)
    except (TimeoutError, Exception):
        return None
    return token
