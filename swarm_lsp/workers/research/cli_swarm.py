"""``swarm-lsp ask`` through a running swarm: the long-lived research worker answers.

When a swarm runs on this machine (``swarm-lsp up``, or the one an editor's server started),
its research worker already has the index open and the models loaded: the question goes there
as a ``research`` task with the folder's path (the worker reads it directly: same machine), and
the sources and tokens stream back. No swarm: the CLI answers in process.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings

CONNECT_S = 2.0
DEFAULT_TARGET = "127.0.0.1:50051"


def local_swarm_target(settings: Settings) -> str | None:
    """The coordinator of a swarm running on this machine, or None (nothing to dial)."""
    from swarm_lsp.dispatch.local_token import find_token
    from swarm_lsp.dispatch.locality import is_loopback_target

    target = settings.swarm.first_coordinator or DEFAULT_TARGET
    if not is_loopback_target(target):
        return None  # a remote swarm cannot read this folder by its path
    if not settings.swarm.token and not find_token(target):
        return None  # no swarm of one registered on that port
    return target


async def _ask(settings: Settings, target: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    from swarm_lsp.dispatch.client import DispatchClient
    from swarm_lsp.errors import SwarmError

    try:
        client = await DispatchClient.connect(settings, target, timeout=CONNECT_S)
    except (SwarmError, OSError):
        return None
    try:
        receipt = await client.submit("research", payload, priority="immediate")
        if receipt.estimated_wait_ms < 0 or receipt.exceeds_wait_bound:
            # No research worker can take it now: answer here instead of waiting.
            await client.cancel(receipt.task_id)
            return None
        async for result in client.results(receipt.task_id):
            if result.kind == "partial" and result.text:
                sys.stdout.write(result.text)
                sys.stdout.flush()
            elif result.final:
                if result.kind == "error":
                    raise SwarmError(result.text or "the research task failed")
                data = result.data if isinstance(result.data, dict) else {}
                return data
    finally:
        await client.close()
    return None


async def _index(
    settings: Settings, target: str, payload: dict[str, Any], progress: Any
) -> dict[str, Any] | None:
    from swarm_lsp.dispatch.client import DispatchClient
    from swarm_lsp.errors import SwarmError

    try:
        client = await DispatchClient.connect(settings, target, timeout=CONNECT_S)
    except (SwarmError, OSError):
        return None
    try:
        receipt = await client.submit("index", payload, priority="background")
        if receipt.estimated_wait_ms < 0:
            await client.cancel(receipt.task_id)
            return None
        async for result in client.results(receipt.task_id):
            if result.kind == "progress" and progress is not None:
                progress(result.percentage or 0, 100, result.text)
            elif result.final:
                if result.kind == "error":
                    raise SwarmError(result.text or "the index task failed")
                return result.data if isinstance(result.data, dict) else {}
    finally:
        await client.close()
    return None


def index_swarm(
    settings: Settings, root: Path, rebuild: bool, progress: Any
) -> dict[str, Any] | None:
    """Index through the running swarm's research worker (it holds the index open)."""
    target = local_swarm_target(settings)
    if target is None:
        return None
    payload = {"root": str(root.resolve()), "rebuild": rebuild}
    return asyncio.run(_index(settings, target, payload, progress))


def ask_swarm(settings: Settings, root: Path, question: str, top_k: int) -> dict[str, Any] | None:
    """Ask the running swarm's research worker; None when no swarm answers here."""
    target = local_swarm_target(settings)
    if target is None:
        return None
    payload = {"question": question, "root": str(root.resolve()), "top_k": top_k}
    return asyncio.run(_ask(settings, target, payload))
