"""A task stopped at its deadline says whose deadline it was: the route's or its client's.

A coordinator in this process, no server and no workers (the role has none, so the task
waits in the queue until its deadline); what its follower receives is asserted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.store import now_ms

TABLE = """
[types]
slow = "nobody"

[[route]]
taskType = "slow"
timeout = 300
"""


async def _final(coordinator: Coordinator, task_id: str) -> pb.TaskResult:
    queue: asyncio.Queue[pb.TaskResult | None] = asyncio.Queue()
    coordinator.follow(task_id, queue)
    while True:
        result = await asyncio.wait_for(queue.get(), timeout=10)
        assert result is not None
        if result.kind in (pb.TaskResult.FINAL, pb.TaskResult.ERROR):
            return result


async def test_the_deadline_message_names_the_real_timeout(tmp_path: Path) -> None:
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=tmp_path / "state", routing=routing.parse(TABLE), local_fallback=False
        )
    )
    await coordinator.start()
    try:
        by_route = coordinator.submit(pb.Task(type="slow"))
        by_client = coordinator.submit(pb.Task(type="slow", deadline_ms=now_ms() + 150))
        route_final = await _final(coordinator, by_route.task_id)
        client_final = await _final(coordinator, by_client.task_id)
    finally:
        await coordinator.stop()
    assert route_final.error_code == "DEADLINE_EXCEEDED"
    assert "the route's 300 ms timeout" in route_final.text
    assert "60000" not in route_final.text
    assert client_final.error_code == "DEADLINE_EXCEEDED"
    assert "the deadline its client set" in client_final.text
    assert "the route's timeout is 300 ms" in client_final.text
