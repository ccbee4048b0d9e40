"""The server's follow of a task survives a coordinator crash and its own client being replaced.

Real coordinator and worker processes and real dispatch clients; the only stand-ins are the
bridge's reconnect (a small object handing out the next client, as ``SwarmBridge`` does after
it closes a client whose status poll failed: that needs a whole LSP session) and the progress
stream (a recorder of what the editor would show).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import UNREACHABLE, DispatchClient, TaskInfo
from swarm_lsp.server import swarm_tasks
from tests.dispatch.conftest import Swarm, wait_for_workers, wait_state

pytestmark = pytest.mark.slow


class _Bridge:
    def __init__(self) -> None:
        self.client: DispatchClient | None = None
        self.connected = asyncio.Event()
        self.mesh = None  # one coordinator, not a mesh

    async def require_client(self, timeout: float, *, patient: bool = False) -> DispatchClient:
        await asyncio.wait_for(self.connected.wait(), timeout=timeout)
        assert self.client is not None
        return self.client


class _Progress:
    def __init__(self) -> None:
        self.reports: list[str] = []

    def report(self, message: str, percentage: int | None = None) -> None:
        self.reports.append(message)


async def _never(info: TaskInfo) -> bool:
    return False


async def test_a_followed_task_survives_a_coordinator_crash_and_a_new_client(
    tmp_path: Path,
) -> None:
    swarm = Swarm(tmp_path)
    try:
        address = swarm.start_coordinator("--no-local-fallback")
        swarm.start_worker("alpha", ["sleep"], capacity=1)
        first = await DispatchClient.connect(Settings(), address)
        await wait_for_workers(first, 1)
        receipt = await first.submit("sleep", {"seconds": 1.5})
        bridge, progress = _Bridge(), _Progress()
        follow = asyncio.create_task(
            swarm_tasks._follow(
                cast(Any, bridge),
                swarm_tasks._Followed(first, receipt.task_id, receipt.deadline_ms),
                cast(Any, progress),
                False,
                _never,
            )
        )
        await wait_state(first, receipt.task_id, {"RUNNING"})
        swarm.kill(swarm.coordinator)
        await asyncio.sleep(0.5)
        await first.close()  # what the bridge does when its status poll fails
        await asyncio.sleep(1.0)
        assert not follow.done()
        swarm.start_coordinator("--no-local-fallback", listen=address)
        second = await DispatchClient.connect(Settings(), address, timeout=30)
        bridge.client = second
        bridge.connected.set()
        final = await asyncio.wait_for(follow, timeout=60)
        await second.close()
    finally:
        swarm.stop_all()
    assert final.state == "SUCCEEDED", final
    assert UNREACHABLE in progress.reports
