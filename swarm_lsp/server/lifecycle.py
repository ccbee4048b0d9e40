"""initialize / initialized / configuration changes / shutdown."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from lsprotocol import types

from swarm_lsp import config
from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream


def _section(raw: Any) -> Any:
    """didChangeConfiguration may carry ``{"swarm": {...}}`` or the settings object itself."""
    if isinstance(raw, dict) and set(raw) == {"swarm"} and isinstance(raw["swarm"], dict):
        inner = raw["swarm"]
        if set(inner) & {"models", "context", "swarm", "research"}:
            return inner
    return raw


async def index_workspace(ls: SwarmLanguageServer) -> None:
    """Build the symbol index in a worker thread, with work-done progress."""
    engine = ls.context
    if engine is None or engine.root is None:
        return
    progress = await ProgressStream.open(ls, None, "Swarm: indexing workspace")
    last = [0.0]

    def report(done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or done == total:  # at most five reports a second
            last[0] = now
            pct = int(done * 100 / total) if total else 100
            progress.loop.call_soon_threadsafe(progress.report, f"{done}/{total} {message}", pct)

    try:
        stats = await asyncio.to_thread(engine.index_workspace, report)
    except SwarmError as err:
        progress.loop.call_soon(progress.end, f"indexing failed: {err}")
        ls.log(f"indexing failed: {err}", types.MessageType.Error)
        return
    progress.loop.call_soon(progress.end, f"{stats.files_total} files indexed")
    ls.log(f"index: {stats}")


def register(server: SwarmLanguageServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: SwarmLanguageServer, params: types.InitializeParams) -> None:
        ls.workspace_root = ls.root_from_params(params)
        ls.load_settings(params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SwarmLanguageServer, params: types.InitializedParams) -> None:
        ls.log(
            f"swarm-lsp ready (workspace: {ls.workspace_root or 'none'}, "
            f"coordinator: {ls.settings.swarm.coordinator or 'local swarm of one'})"
        )
        ls.start_context()
        ls.spawn(ls.models.warm_up())
        if ls.settings.context.index_on_start:
            ls.spawn(index_workspace(ls))
        for hook in ls.on_initialized:
            ls.spawn(hook())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: SwarmLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        raw = _section(params.settings)
        if raw is None:
            return
        if not isinstance(raw, dict):
            ls.notify_user(
                f"swarm-lsp settings: expected an object, got {raw!r}; "
                "keeping the current settings",
                types.MessageType.Warning,
            )
            return
        merged = config.merge(
            config.Settings(
                models=ls.settings.models,
                context=ls.settings.context,
                swarm=ls.settings.swarm,
                research=ls.settings.research,
            ),
            raw,
        )
        ls.apply_settings(merged)
        ls.log("settings updated")

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SwarmLanguageServer, params: None) -> None:
        ls.shutdown_requested = True
        await ls.stop_everything()

    @server.feature(types.EXIT)
    def exit_(ls: SwarmLanguageServer, params: None) -> None:
        # pygls would wait for its stdin reader thread, which blocks until the client closes
        # the pipe, and for any model thread mid-generation: leave at once instead.
        code = 0 if ls.shutdown_requested else 1
        ls.models.close()
        sys.stdout.flush()
        os._exit(code)
