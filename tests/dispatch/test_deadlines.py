"""A coordinator in this process, no server: what a task's follower receives.

A task stopped at its deadline says whose deadline it was (the route's or its client's); a
task recovered after a restart never repeats a result key its follower has already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
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


ECHO = """
[types]
echo = "echo"
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


async def test_results_after_a_restart_never_repeat_a_key_a_follower_has_seen(
    tmp_path: Path,
) -> None:
    """A follower skips results whose (attempt, sequence) it has had. A task's start is
    written in batches, so a coordinator killed after a lease may come back with the attempt
    before it; the sequence of a recovered task must then start above any number used."""
    config = CoordinatorConfig(
        state_dir=tmp_path / "state", routing=routing.parse(ECHO), local_fallback=False
    )

    async def run_once(coordinator: Coordinator) -> tuple[str, set[tuple[int, int]]]:
        session = coordinator.register_worker(
            pb.RegisterRequest(name="w", roles=["echo"], capacity=1), "peer"
        )
        coordinator.start_worker(session)
        record = next(iter(coordinator.active.values())).record
        assert record.state == "RUNNING"
        epoch = coordinator.active[record.id].epoch
        queue: asyncio.Queue[pb.TaskResult | None] = asyncio.Queue()
        coordinator.follow(record.id, queue)
        for text in ("a", "b", "c"):
            coordinator.on_partial(
                session,
                pb.PartialResult(task_id=record.id, attempt=record.attempt, text=text, epoch=epoch),
            )
        keys = set()
        while not queue.empty():
            result = queue.get_nowait()
            assert result is not None
            keys.add((result.attempt, result.sequence))
        return record.id, keys

    first = Coordinator(config)
    await first.start()
    first.submit(pb.Task(type="echo"))
    task_id, before = await run_once(first)
    await first.stop()
    # What the store holds when the coordinator dies before its batch of starts is written.
    with contextlib.closing(sqlite3.connect(config.state_dir / "tasks.sqlite3")) as db:
        db.execute("UPDATE tasks SET attempt=0, state='QUEUED', worker='' WHERE id=?", (task_id,))
        db.commit()

    second = Coordinator(config)
    await second.start()
    try:
        again, after = await run_once(second)
    finally:
        await second.stop()
    assert again == task_id and len(after) == 3
    assert not before & after, (before, after)
