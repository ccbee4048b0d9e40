"""The swarm features' state, held by the server (``ls.swarm``), never by handler closures."""

from __future__ import annotations

import dataclasses

from pygls.exceptions import JsonRpcServerError

from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.diagnostics import SwarmDiagnostics
from swarm_lsp.server.jobs import Jobs
from swarm_lsp.server.swarm_actions import SwarmActions
from swarm_lsp.server.swarm_bridge import SwarmBridge

NOT_SET_UP = -32001


@dataclasses.dataclass
class SwarmParts:
    bridge: SwarmBridge
    diagnostics: SwarmDiagnostics
    actions: SwarmActions
    jobs: Jobs

    @classmethod
    def create(cls, ls: SwarmLanguageServer) -> SwarmParts:
        bridge = SwarmBridge(ls)
        diagnostics = SwarmDiagnostics(ls, bridge)
        return cls(bridge, diagnostics, SwarmActions(ls, bridge, diagnostics), Jobs(ls))


def swarm_of(ls: SwarmLanguageServer) -> SwarmParts:
    """``ls.swarm``; a clear error if the swarm features were not registered."""
    parts = ls.swarm
    if parts is None:
        raise JsonRpcServerError("the swarm features are not set up in this server", NOT_SET_UP)
    return parts
