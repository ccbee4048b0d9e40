"""Swarm features in the editor: code actions, diagnostics, status, the fallback question.

Registered by ``create_server``; filled in by the editor-integration work.
"""

from __future__ import annotations

from swarm_lsp.server.app import SwarmLanguageServer


def register(server: SwarmLanguageServer) -> None:
    """Nothing yet: the swarm bridge lands with the editor-integration issue."""
