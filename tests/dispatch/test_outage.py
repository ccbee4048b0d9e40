"""A coordinator outage longer than the client's old fixed retry window is no failure.

The client follows by task id for as long as the task's deadline allows, and says "swarm
unreachable, retrying" meanwhile (real coordinator and worker processes on loopback).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from swarm_lsp.dispatch.client import REACHABLE, UNREACHABLE, Result, watch
from swarm_lsp.errors import DispatchError

from .conftest import Swarm, connect, wait_for_workers, wait_state

pytestmark = pytest.mark.slow


async def test_a_follower_outlasts_an_outage_while_the_deadline_allows(
    swarm_factory: Callable[..., Swarm], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old behaviour gave up after a fixed window (30 s); shrunk here so the outage below
    # outlasts it: only the task's deadline may end the wait now.
    monkeypatch.setattr(watch, "RESULTS_RECONNECT_S", 0.5)
    swarm = swarm_factory()
    address = swarm.start_coordinator("--no-local-fallback")
    swarm.start_worker("alpha", ["sleep"], capacity=1)
    async with connect(address) as client:
        await wait_for_workers(client, 1)
        receipt = await client.submit("sleep", {"seconds": 4.0})
        seen: list[Result] = []

        async def follow() -> None:
            seen.extend([r async for r in client.results(receipt.task_id)])

        follower = asyncio.create_task(follow())
        await wait_state(client, receipt.task_id, {"RUNNING"})
        swarm.kill(swarm.coordinator)
        await asyncio.sleep(3.0)  # six times the shrunk window
        assert not follower.done()
        swarm.start_coordinator("--no-local-fallback", listen=address)
        await asyncio.wait_for(follower, timeout=60)
    texts = [r.text for r in seen]
    assert seen[-1].state == "SUCCEEDED", seen
    assert texts.count(UNREACHABLE) == 1 and REACHABLE in texts
    assert texts.index(UNREACHABLE) < texts.index(REACHABLE)


async def test_a_follower_still_gives_up_at_a_short_bound_it_asks_for(
    swarm_factory: Callable[..., Swarm],
) -> None:
    swarm = swarm_factory()
    address = swarm.start_coordinator("--no-local-fallback")
    async with connect(address) as client:
        receipt = await client.submit("sleep", {"seconds": 5})
        swarm.kill(swarm.coordinator)
        started = time.monotonic()
        seen: list[Result] = []
        with pytest.raises(DispatchError):
            async for result in client.results(receipt.task_id, reconnect_s=1.0):
                seen.append(result)
        assert time.monotonic() - started < 15
        assert [r.text for r in seen] == [UNREACHABLE]
