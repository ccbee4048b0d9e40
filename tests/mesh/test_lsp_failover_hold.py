"""A restarted owner never re-runs a task its client may have resubmitted elsewhere.

Real coordinator and worker processes on loopback. The LSP server submits mesh tasks with the
``FAILOVER`` metadata (dispatch/failover.py): the coordinator, recovering such a task after a
crash, holds it until its client watches it again; a task without it (a star client) is
re-run at once, as before. Resubmitting elsewhere means never watching the old copy again, so
it stays held (and is cancelled, or ends at its deadline): the task runs to completion once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.dispatch.failover import FAILOVER
from tests.dispatch.conftest import Swarm, wait_for_workers, wait_state

pytestmark = pytest.mark.slow


async def test_a_recovered_failover_task_is_held_until_its_client_comes_back(
    tmp_path: Path,
) -> None:
    swarm = Swarm(tmp_path)
    markers = tmp_path / "markers"
    markers.mkdir()
    try:
        address = swarm.start_coordinator("--no-local-fallback")
        swarm.start_worker("alpha", ["sleep"], capacity=2)
        async with await DispatchClient.connect(Settings(), address) as client:
            await wait_for_workers(client, 1)
            payload = {"seconds": 30.0, "marker_dir": str(markers)}
            mesh = await client.submit("sleep", payload, metadata={FAILOVER: "1"})
            star = await client.submit("sleep", payload)
            for receipt in (mesh, star):
                await wait_state(client, receipt.task_id, {"RUNNING"})
        swarm.kill(swarm.coordinator)
        swarm.start_coordinator("--no-local-fallback", listen=address)
        async with await DispatchClient.connect(Settings(), address, timeout=30) as client:
            # The star task is re-queued and runs again on the worker (it reconnects); the
            # mesh task stays queued although the worker has a free slot for it.
            await wait_state(client, star.task_id, {"RUNNING"}, timeout=30)
            assert (await client.task_status(mesh.task_id)).state == "QUEUED"
            await client.cancel(star.task_id)
            await wait_state(client, star.task_id, {"CANCELLED"})
            assert (await client.task_status(mesh.task_id)).state == "QUEUED"
            # Its client comes back for it (it did not resubmit it elsewhere): it runs.
            following = client.results(mesh.task_id)
            first = await asyncio.wait_for(anext(following), timeout=30)
            await following.aclose()  # type: ignore[attr-defined]
            assert first.kind == "progress" and first.attempt >= 1, first
            await wait_state(client, mesh.task_id, {"RUNNING"})
            await client.cancel(mesh.task_id)
            await wait_state(client, mesh.task_id, {"CANCELLED"})
    finally:
        swarm.stop_all()
