"""Swarm features in the editor: code actions, commands, diagnostics, status, the fallback question.

``register`` wires them into the server: the bridge connects (or starts a local swarm) when the
client is initialized and stops with the server; saves trigger debounced test runs.
"""

from __future__ import annotations

from swarm_lsp.config import Settings
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.codeactions import register_code_actions
from swarm_lsp.server.diagnostics import SwarmDiagnostics
from swarm_lsp.server.jobs import Jobs
from swarm_lsp.server.swarm_actions import SwarmActions
from swarm_lsp.server.swarm_bridge import SwarmBridge
from swarm_lsp.server.swarm_commands import register_commands


def register(server: SwarmLanguageServer) -> None:
    bridge = SwarmBridge(server)
    diagnostics = SwarmDiagnostics(server, bridge)
    actions = SwarmActions(server, bridge, diagnostics)
    jobs = Jobs(server)
    server.swarm_parts = {"bridge": bridge, "diagnostics": diagnostics, "jobs": jobs}
    register_commands(server, actions, jobs)
    register_code_actions(server, actions, jobs)

    async def start() -> None:
        await bridge.start()

    async def stop() -> None:
        await jobs.stop()  # their swarm tasks are cancelled while the connection still stands
        diagnostics.cancel()
        await bridge.stop()

    def settings_changed(settings: Settings) -> None:
        if bridge.wants_switch(settings):
            server.log("swarm: the swarm settings changed; reconnecting")
            server.spawn(bridge.switch())

    server.on_initialized.append(start)
    server.on_shutdown.append(stop)
    server.on_did_save.append(diagnostics.on_save)
    server.on_settings_changed.append(settings_changed)
