"""Swarm features in the editor: code actions, commands, diagnostics, status, the fallback question.

``register`` wires them into the server: the bridge connects (or starts a local swarm) when the
client is initialized and stops with the server; saves trigger debounced test runs.
"""

from __future__ import annotations

from swarm_lsp.config import Settings
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.codeactions import register_code_actions
from swarm_lsp.server.swarm_commands import register_commands
from swarm_lsp.server.swarm_parts import SwarmParts, swarm_of


def register(server: SwarmLanguageServer) -> None:
    server.swarm = SwarmParts.create(server)
    register_commands(server)
    register_code_actions(server)
    server.on_initialized.append(lambda: start(server))
    server.on_shutdown.append(lambda: stop(server))
    server.on_did_save.append(lambda uri: swarm_of(server).diagnostics.on_save(uri))
    server.on_settings_changed.append(lambda settings: settings_changed(server, settings))


async def start(ls: SwarmLanguageServer) -> None:
    await swarm_of(ls).bridge.start()


async def stop(ls: SwarmLanguageServer) -> None:
    parts = swarm_of(ls)
    await parts.jobs.stop()  # their swarm tasks are cancelled while the connection still stands
    parts.diagnostics.cancel()
    await parts.bridge.stop()


def settings_changed(ls: SwarmLanguageServer, settings: Settings) -> None:
    bridge = swarm_of(ls).bridge
    if bridge.wants_switch(settings):
        ls.log("swarm: the swarm settings changed; reconnecting")
        ls.spawn(bridge.switch())
