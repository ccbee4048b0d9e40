"""What a worker sends on its session stream: queued messages, batched when they pile up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.security import DEFAULT_MAX_MESSAGE_BYTES

BATCH_BYTES = DEFAULT_MAX_MESSAGE_BYTES // 2  # messages sent together stay under the cap
MAX_BATCH = 256

Outbox = asyncio.Queue[pb.WorkerMessage | None]


async def outgoing(outbox: Outbox) -> AsyncIterator[pb.WorkerMessage]:
    """The messages of ``outbox`` until a None; those that queued up while the last one was
    sent go out as one batch, within half the message cap (a big completion goes alone)."""
    carry: pb.WorkerMessage | None = None
    while True:
        message = carry if carry is not None else await outbox.get()
        carry = None
        if message is None:
            return
        if outbox.empty():
            await asyncio.sleep(0)  # let what is ready right now join this message
        if outbox.empty():
            yield message
            continue
        batch = [message]
        size = message.ByteSize()
        closing = False
        while len(batch) < MAX_BATCH and not outbox.empty():
            item = outbox.get_nowait()
            if item is None:
                closing = True
                break
            item_size = item.ByteSize()
            if size + item_size > BATCH_BYTES:
                carry = item
                break
            batch.append(item)
            size += item_size
        yield (
            batch[0] if len(batch) == 1 else pb.WorkerMessage(batch=pb.WorkerBatch(messages=batch))
        )
        if closing:
            return
