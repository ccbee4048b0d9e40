"""initialize / initialized / configuration changes / shutdown."""

from __future__ import annotations

import os
import sys
from typing import Any

from lsprotocol import types

from swarm_lsp import config
from swarm_lsp.server.app import SwarmLanguageServer


def _section(raw: Any) -> Any:
    """didChangeConfiguration may carry ``{"swarm": {...}}`` or the settings object itself."""
    if isinstance(raw, dict) and set(raw) == {"swarm"} and isinstance(raw["swarm"], dict):
        inner = raw["swarm"]
        if set(inner) & {"models", "context", "swarm", "research"}:
            return inner
    return raw


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
        ls.spawn(ls.models.warm_up())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: SwarmLanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        raw = _section(params.settings)
        if raw is None:
            return
        if not isinstance(raw, dict):
            ls.notify_user(
                f"swarm-lsp settings: expected an object, got {raw!r}; keeping the current settings",
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
        await ls.stop_everything()

    @server.feature(types.EXIT)
    def exit_(ls: SwarmLanguageServer, params: None) -> None:
        # pygls would wait for its stdin reader thread, which blocks until the client closes
        # the pipe, and for any model thread mid-generation: leave at once instead.
        code = 0 if ls.protocol._shutdown else 1
        ls.models.close()
        sys.stdout.flush()
        os._exit(code)
