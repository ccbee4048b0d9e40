"""One workspace's index on one machine: a research worker and the coordinator's local fallback
never fight over it.

The index (Qdrant Edge) may be open in one process at a time, and the long-lived research worker
keeps it open. When that worker misses its heartbeats (a stalled process on a loaded machine),
its session ends and the next index task of the workspace finds no research worker connected,
so it goes to the coordinator's local fallback worker (on the same machine, same index folder).
That one must not fight for the index the stalled worker still holds (it used to wait 30 s for
it and fail with "in use by another process"): it gives the task back at once, and the task
waits for the worker that holds the index.

The role's part is tested alone first (real index, embedder and Qdrant Edge), then the whole
path: real coordinator and worker processes on loopback, the worker stalled with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.demo import __file__ as demo_init
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.errors import ResourceBusy
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.research.index import WorkspaceIndex
from swarm_lsp.workers.research.role import ResearchRole
from tests.dispatch.conftest import Swarm, connect, wait_for_workers
from tests.workers.conftest import FIXTURES, RecordingReporter

SAMPLE = Path(demo_init).parent / "sample_project"


async def _until_no_workers(client: DispatchClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (await client.status()).machines:
        if time.monotonic() > deadline:
            raise TimeoutError("the stopped worker's session did not end")
        await asyncio.sleep(0.1)


async def test_the_fallback_role_gives_a_held_index_back_and_lets_go_of_its_own(
    tmp_path: Path, reporter: RecordingReporter
) -> None:
    workspace = tmp_path / "inventory"
    shutil.copytree(FIXTURES / "inventory", workspace)
    index_task = TaskRequest(id="i1", type="index", payload={"root": str(workspace)})
    role = ResearchRole(Settings())
    role.as_fallback()  # what `swarm-lsp worker --fallback` does
    holder = WorkspaceIndex(workspace, Settings())  # a research worker holds the index
    try:
        with pytest.raises(ResourceBusy, match="in use by another process"):
            await role.run(index_task, reporter)  # given back, not waited for
    finally:
        holder.close()
    result = await role.run(index_task, reporter)
    assert result["stats"]["files_indexed"] == 8
    assert result["stats"]["dense_points"] == result["stats"]["points"] > 0
    # Its last task done, the fallback has let go: a worker opens the index without waiting.
    with WorkspaceIndex(workspace, Settings(), lock_wait_s=0) as worker_index:
        assert worker_index.update().files_unchanged == 8


@pytest.fixture
def swarm(tmp_path: Path) -> Iterator[Swarm]:
    swarm = Swarm(tmp_path, {"SWARM_LSP_CACHE": str(tmp_path / "cache")})
    try:
        yield swarm
    finally:
        for proc in swarm.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a stopped process ignores SIGTERM
        swarm.stop_all()


@pytest.mark.slow
async def test_an_index_task_waits_for_the_worker_that_holds_the_index(swarm: Swarm) -> None:
    # A lease long enough that a loaded machine does not end the session by itself; the
    # test ends it on purpose (SIGSTOP) once the worker holds the index.
    swarm.start_coordinator("--heartbeat-ms", "500", "--lease-timeout-ms", "5000")
    swarm.start_worker("thinker", ["research"])
    payload = {"root": str(SAMPLE)}
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 1)
        first = await client.wait((await client.submit("index", payload)).task_id)
        assert first.kind == "final", first.text
        assert (first.worker, first.fallback) == ("thinker", ""), first
        # The worker keeps the workspace's index open. Stall it until its session ends.
        worker = swarm.workers["thinker"]
        worker.send_signal(signal.SIGSTOP)
        try:
            await _until_no_workers(client)
            receipt = await client.submit("index", payload)
            # No research worker is connected: the local fallback tries the task. It must give
            # it back (the index is the stalled worker's), not fail it.
            async for result in client.results(receipt.task_id):
                if result.final or "gave it back" in result.text:
                    break
        finally:
            worker.send_signal(signal.SIGCONT)
        assert not result.final, result.text
        # The worker comes back, registers again and runs the task with the index it holds.
        final = await client.wait(receipt.task_id)
    assert final.kind == "final", final.text
    assert (final.worker, final.fallback) == ("thinker", ""), final
    assert final.data["stats"]["files_unchanged"] == final.data["stats"]["files_seen"] > 0
