"""The demo's swarm steps: refactor code action, research answer, test diagnostics."""

from __future__ import annotations

from typing import Any


async def run(session: Any, out: Any) -> None:
    out.section("4. Swarm")
    out.line("  (the swarm steps arrive with the editor-integration work)")
