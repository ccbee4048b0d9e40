"""Whether a copy of a task whose old owner is gone already finished somewhere in the mesh.

An owner SIGKILLed in the instant after its task completed, before the result reached the
editor, takes its store's record of that result with it; but the machine that ran the task
journaled the result before reporting it (``dispatch/result_journal.py``). So a new owner whose
old owner does not answer its ``SupersedeTask`` asks, before it runs its copy, this machine's
journal and every live peer of its view (``SupersedeTask`` with ``journal_of``, mesh peers
only, over the mesh's mTLS) whether a copy with the same idempotency key and owner finished
for the old owner; if one did, the new copy ends with that result without running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from swarm_lsp.dispatch import result_journal
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import call_metadata, open_channel
from swarm_lsp.errors import SwarmError

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

log = logging.getLogger(__name__)

ASK_S = 2.0  # each peer's answer, asked all at once


def journal_path(c: Coordinator) -> Path:
    """This machine's journal: in the node's (its coordinator's) state folder."""
    return c.config.state_dir / result_journal.JOURNAL_FILE


def answer(c: Coordinator, request: pb.SupersedeRequest) -> pb.SupersedeReply | None:
    """The journaled final result ``request`` (with ``journal_of``) names; None if none."""
    found = result_journal.find(
        journal_path(c),
        idempotency_key=request.idempotency_key,
        owner=request.owner,
        coordinator=request.journal_of,
        task_id=request.task_id,
    )
    if found is None:
        return None
    return pb.SupersedeReply(state=pb.SUCCEEDED, final=found)


async def find_finished(
    c: Coordinator,
    request: pb.SupersedeRequest,
    dialable: Callable[[str], str],
) -> tuple[pb.TaskResult, str] | None:
    """A journaled result for ``request`` (``journal_of`` set) on this machine or a live peer
    (those ``dialable`` finds no problem with), and where it was found; None if none."""
    local = await asyncio.to_thread(answer, c, request)
    if local is not None:
        return local.final, c.address
    peers = [p for p in c.mesh_peers() if p not in (c.address, request.journal_of)]
    asks = [asyncio.ensure_future(_ask(c, p, request)) for p in peers if not dialable(p)]
    try:
        for done in asyncio.as_completed(asks):
            found = await done
            if found is not None:
                return found
    finally:
        for ask in asks:
            ask.cancel()
    return None


async def _ask(
    c: Coordinator, peer: str, request: pb.SupersedeRequest
) -> tuple[pb.TaskResult, str] | None:
    swarm = c.settings.swarm
    try:
        channel = open_channel(peer, swarm, max_message_bytes=c.config.max_message_bytes)
    except SwarmError as err:
        log.warning("cannot ask %s's result journal: %s", peer, err)
        return None
    try:
        stub = pb_grpc.SwarmCoordinatorStub(channel)
        reply: pb.SupersedeReply = await stub.SupersedeTask(
            request, timeout=ASK_S, metadata=call_metadata(swarm)
        )
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            log.info("%s's result journal: %s", peer, err.details())
        return None
    finally:
        await channel.close()
    if reply.state != pb.SUCCEEDED or not reply.HasField("final"):
        return None
    return reply.final, peer
