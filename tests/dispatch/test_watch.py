"""The shared WatchResults (and SubmitStream) stream never leaves a caller waiting on nothing.

Two ways a follower used to wait until its task's deadline (or 24 h when that was unknown)
although its stream was gone: the client closed in the same event-loop pass as the stream
opened (its reader was cancelled before it ran, so it never told anyone), and a reader that
died of anything but a gRPC error (here: a coordinator that answers with bytes that are no
WatchResponse; gRPC hands ``None`` up) left the dead stream in place for every follower.
The pipelined submit's stream had the same reader: after such a failure every later submit
of that client waited out its call timeout. Real gRPC on loopback: a real coordinator, then a
real server that misbehaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure
from swarm_lsp.dispatch.client.watch import UNREACHABLE
from swarm_lsp.errors import DispatchError

from .conftest import Swarm


async def test_a_client_closed_as_its_stream_opens_ends_its_followers(
    swarm_factory: Callable[..., Swarm],
) -> None:
    swarm = swarm_factory()
    swarm.start_coordinator("--no-local-fallback")
    client = await DispatchClient.connect(Settings(), swarm.address)
    receipt = await client.submit("sleep", {"seconds": 60})  # no worker: it waits, silent
    follower = asyncio.ensure_future(anext(client.results(receipt.task_id)))
    await asyncio.sleep(0)  # the follower subscribes; the stream's reader has not run yet
    await client.close()
    with pytest.raises(RpcFailure) as info:
        await asyncio.wait_for(follower, timeout=10)
    assert info.value.code == "CANCELLED"


async def _garbage(requests: AsyncIterator[bytes], context: object) -> AsyncIterator[bytes]:
    async for _ in requests:
        yield b"\xff\xff\xff\xff not a WatchResponse"


async def test_a_reader_that_fails_oddly_lets_followers_retry_and_give_up() -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "swarm.v1.SwarmCoordinator",
        {
            "WatchResults": grpc.stream_stream_rpc_method_handler(_garbage),
            "SubmitStream": grpc.stream_stream_rpc_method_handler(_garbage),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    client = await DispatchClient.connect(Settings(), address, call_timeout=60)
    try:
        for _ in range(2):  # each submit fails at once, and the next one tries a new stream
            with pytest.raises(RpcFailure, match="submit stream failed") as info:
                await asyncio.wait_for(client.submit("echo", {}), timeout=15)
            assert info.value.code == "UNAVAILABLE"
        seen: list[str] = []

        async def follow() -> None:
            async for result in client.results("t1", reconnect_s=1.0):
                seen.append(result.text)

        with pytest.raises(DispatchError):
            await asyncio.wait_for(follow(), timeout=15)
        assert seen == [UNREACHABLE]  # it said so while it retried
    finally:
        await client.close()
        await server.stop(None)
