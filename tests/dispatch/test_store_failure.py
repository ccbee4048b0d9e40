"""A task store that cannot commit stops the coordinator (fail-stop); a restart recovers.

The commit fails for real: the coordinator process may not grow a file past a size
(RLIMIT_FSIZE, set from outside with prlimit; Python ignores SIGXFSZ, so the write fails with
EFBIG), so the WAL cannot take the next transaction. No root, no mount, no mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

import grpc

from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.store import TaskRecord, TaskStore
from swarm_lsp.errors import EXIT_STORE_FAILED

from .conftest import Swarm, connect

KIB = 1024


async def test_a_failed_commit_lets_no_result_out_and_the_task_runs_again_after_a_restart(
    swarm_factory: Callable[..., Swarm],
) -> None:
    swarm = swarm_factory()
    swarm.start_coordinator("--no-local-fallback")
    assert swarm.coordinator is not None
    # zstd halves hex at best; the result (text and echo, ~0.5 MB) stays in SQLite's page
    # cache (2 MB) until the commit, so the commit is what fails, not the statement.
    text = secrets.token_hex(128 * KIB)
    async with connect(swarm.address) as client:
        receipt = await client.submit("echo", {"text": text})
    state = swarm.root / "state"
    files = [state / "tasks.sqlite3", state / "tasks.sqlite3-wal"]
    # Room for what is there (the task), not for its result: the completion's commit fails.
    limit = max(path.stat().st_size for path in files) + 64 * KIB
    resource.prlimit(swarm.coordinator.pid, resource.RLIMIT_FSIZE, (limit, limit))

    results: list[pb.TaskResult] = []
    async with grpc.aio.insecure_channel(swarm.address) as channel:
        stream = pb_grpc.SwarmCoordinatorStub(channel).StreamResults(pb.TaskId(id=receipt.task_id))
        swarm.start_worker("w1", ["echo"])
        try:
            async with asyncio.timeout(30):
                async for result in stream:
                    results.append(result)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as err:
            code = err.code()
    # Before, the result went out although its commit had been rolled back.
    assert not [r for r in results if r.kind in (pb.TaskResult.FINAL, pb.TaskResult.ERROR)]
    assert code == grpc.StatusCode.UNAVAILABLE
    assert swarm.coordinator.wait(timeout=20) == EXIT_STORE_FAILED
    assert "the task store could not commit" in swarm.log("coordinator")
    with contextlib.closing(sqlite3.connect(state / "tasks.sqlite3")) as db:
        (stored,) = db.execute("SELECT state FROM tasks WHERE id=?", (receipt.task_id,)).fetchone()
    assert stored in ("QUEUED", "RUNNING")

    # Restarted (no limit now), it recovers the task and the worker runs it again.
    swarm.start_coordinator("--no-local-fallback", listen=swarm.address)
    async with connect(swarm.address) as client:
        final = await client.wait(receipt.task_id)
    assert final.text == text


def _queued(task_id: str, context: bytes = b"") -> TaskRecord:
    return TaskRecord(
        id=task_id,
        idempotency_key=None,
        type="echo",
        role="echo",
        priority="background",
        complexity="simple",
        context=context,
        context_dict_id=0,
        metadata={},
        manifest={},
        route={},
        state="QUEUED",
    )


async def test_after_a_failed_commit_nothing_is_committed_and_every_wait_fails(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.sqlite3"
    store = TaskStore(path)
    store.group_commits(asyncio.get_running_loop())
    failures: list[bool] = []
    store.on_failure = lambda: failures.append(True)
    store.insert(_queued("a"))
    assert await store.durable()
    # A real failed COMMIT: this process may not grow a file past its size now (restored at
    # once); the WAL cannot take the new task.
    limit = max(p.stat().st_size for p in tmp_path.iterdir()) + 64 * KIB
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    store.insert(_queued("b", secrets.token_bytes(256 * KIB)))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        assert not await store.durable()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert store.failed and failures == [True]
    seen: list[bool] = []
    store.insert(_queued("c"))  # the coordinator is stopping; this never reaches the disk
    store.after_commit(seen.append)
    assert not await store.durable() and seen == [False] and not store.commit()
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert {row[0] for row in db.execute("SELECT id FROM tasks")} == {"a"}
