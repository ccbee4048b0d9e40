"""End to end on loopback: workers and the coordinator die, and every accepted task completes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.client import Receipt, Result
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.errors import DispatchError

from .conftest import Swarm, connect, wait_for_workers, wait_state, wait_until

pytestmark = pytest.mark.slow


def _two_sleep_workers(swarm_factory: Callable[..., Swarm], tmp_path: Path) -> tuple[Swarm, Path]:
    """A coordinator and workers alpha and beta (one sleep slot each), and a marker folder."""
    swarm = swarm_factory()
    swarm.start_coordinator()
    swarm.start_worker("alpha", ["sleep"], capacity=1)
    swarm.start_worker("beta", ["sleep"], capacity=1)
    markers = tmp_path / "markers"
    markers.mkdir()
    return swarm, markers


async def test_worker_killed_mid_task_completes_elsewhere_with_one_result(
    swarm_factory: Callable[..., Swarm], tmp_path: Path
) -> None:
    swarm, markers = _two_sleep_workers(swarm_factory, tmp_path)
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 2)
        receipt = await client.submit("sleep", {"seconds": 1.0, "marker_dir": str(markers)})
        seen: list[Result] = []

        async def follow() -> None:
            seen.extend([r async for r in client.results(receipt.task_id)])

        follower = asyncio.create_task(follow())
        await wait_until(lambda: (markers / f"started-{receipt.task_id}").exists())
        first = (await client.task_status(receipt.task_id)).worker
        pid_before = int((markers / f"started-{receipt.task_id}").read_text())
        (markers / f"started-{receipt.task_id}").unlink()
        killed_at = time.monotonic()
        swarm.kill(swarm.workers[first])
        await wait_until(lambda: (markers / f"started-{receipt.task_id}").exists(), timeout=10)
        failover_s = time.monotonic() - killed_at
        await asyncio.wait_for(follower, timeout=20)

    finals = [r for r in seen if r.final]
    assert len(finals) == 1, seen
    assert finals[0].state == "SUCCEEDED"
    assert finals[0].worker != first
    assert finals[0].attempt == 2
    assert int((markers / f"started-{receipt.task_id}").read_text()) != pid_before
    assert any(r.kind == "progress" and "requeued" in r.text for r in seen)
    assert failover_s < 3.0, f"failover took {failover_s:.2f}s"


async def test_coordinator_restart_loses_no_accepted_task(
    swarm_factory: Callable[..., Swarm],
) -> None:
    swarm = swarm_factory()
    address = swarm.start_coordinator()
    async with connect(address) as client:
        # No worker yet: fallback 1, the coordinator runs the role on its own.
        receipt = await client.submit("echo", {"text": "on the coordinator"})
        assert receipt.fallback == "local"
        final = await client.wait(receipt.task_id)
        assert final.state == "SUCCEEDED" and final.fallback == "local"
        assert final.text == "on the coordinator"

        swarm.start_worker("alpha", ["sleep", "echo"], capacity=2)
        await wait_for_workers(client, 1)

        # Snapshots by reference: the second run after a one-line edit moves one file.
        files = {f"pkg/mod{i}.py": f"value = {i}\n".encode() for i in range(5)}
        one = await client.submit("echo", {}, snapshot=files)
        assert one.blobs_uploaded == 5
        done = await client.wait(one.task_id)
        assert done.data["files"] == {path: len(data) for path, data in files.items()}
        assert done.stats["snapshot_fetched"] == "5"
        files["pkg/mod3.py"] = b"value = 33\n"
        two = await client.submit("echo", {}, snapshot=files)
        assert two.blobs_uploaded == 1
        done = await client.wait(two.task_id)
        assert done.stats["snapshot_fetched"] == "1" and done.stats["snapshot_files"] == "5"

        receipts = [await client.submit("sleep", {"seconds": 0.6}) for _ in range(6)]
        await wait_state(client, receipts[0].task_id, {"RUNNING"})
        waiters = [asyncio.create_task(client.wait(r.task_id)) for r in receipts]
        await asyncio.sleep(0.2)

        swarm.kill(swarm.coordinator)
        swarm.start_coordinator(listen=address)  # same port, same state dir

        results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=60)
        assert [r.state for r in results] == ["SUCCEEDED"] * 6
        # The worker came back and took its tasks; the restarted coordinator did not grab them.
        assert {r.worker for r in results} == {"alpha"}
        await wait_for_workers(client, 1)
        status = await client.status(recent=50)
        assert status.counts.get("SUCCEEDED", 0) >= 9
        assert status.queue_depth == 0
        assert [m.name for m in status.machines] == ["alpha"]


async def test_worker_that_stops_heartbeating_loses_its_task_and_its_late_result_is_ignored(
    swarm_factory: Callable[..., Swarm], tmp_path: Path
) -> None:
    swarm, markers = _two_sleep_workers(swarm_factory, tmp_path)
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 2)
        receipt = await client.submit("sleep", {"seconds": 1.5, "marker_dir": str(markers)})
        started = markers / f"started-{receipt.task_id}"
        await wait_until(started.exists)
        frozen = (await client.task_status(receipt.task_id)).worker
        started.unlink()
        # SIGSTOP: the connection stays open but the heartbeats stop.
        swarm.workers[frozen].send_signal(signal.SIGSTOP)
        try:
            await wait_until(
                started.exists, timeout=10
            )  # running elsewhere after the lease timeout
            final = await client.wait(receipt.task_id)
        finally:
            swarm.workers[frozen].send_signal(signal.SIGCONT)
        assert final.state == "SUCCEEDED" and final.worker != frozen and final.attempt == 2
        # The thawed worker reconnects; whatever it reports for the old attempt changes nothing.
        await asyncio.sleep(1.0)
        info = await client.task_status(receipt.task_id)
        assert info.state == "SUCCEEDED" and info.worker == final.worker and info.attempt == 2
        await wait_for_workers(client, 2)


async def test_sigterm_lets_a_worker_finish_its_task_then_exit(
    swarm_factory: Callable[..., Swarm], tmp_path: Path
) -> None:
    swarm = swarm_factory()
    swarm.start_coordinator()
    swarm.start_worker("alpha", ["sleep"], capacity=1)
    async with connect(swarm.address) as client:
        await wait_for_workers(client, 1)
        receipt = await client.submit("sleep", {"seconds": 0.8, "marker_dir": str(tmp_path)})
        await wait_until((tmp_path / f"started-{receipt.task_id}").exists)
        swarm.workers["alpha"].send_signal(signal.SIGTERM)
        final = await client.wait(receipt.task_id)
        assert final.state == "SUCCEEDED" and final.worker == "alpha"
        assert swarm.workers["alpha"].wait(timeout=10) == 0


async def test_client_never_hangs_when_the_coordinator_is_gone(
    swarm_factory: Callable[..., Swarm],
) -> None:
    swarm = swarm_factory()
    swarm.start_coordinator("--no-local-fallback")
    async with connect(swarm.address) as client:
        receipt = await client.submit("sleep", {"seconds": 5})
        assert receipt.state == "QUEUED" and receipt.estimated_wait_ms == -1
        assert "no worker" in receipt.note and receipt.exceeds_wait_bound
        swarm.kill(swarm.coordinator)
        started = time.monotonic()
        with pytest.raises(DispatchError):
            await client.wait(receipt.task_id, reconnect_s=1.0)
        with pytest.raises(DispatchError, match=r"UNAVAILABLE|DEADLINE_EXCEEDED"):
            await client.submit("echo", {})
        assert time.monotonic() - started < 15


async def test_every_receipt_is_durable_when_the_coordinator_is_killed_at_once(
    swarm_factory: Callable[..., Swarm],
) -> None:
    """Writes share one commit per event-loop pass; no receipt goes out before it."""
    swarm = swarm_factory()
    swarm.start_coordinator("--no-local-fallback")
    async with connect(swarm.address) as client:

        def task(i: int) -> pb.Task:
            return pb.Task(type="sleep", context=codec.encode_json({"seconds": 60, "n": i}))

        answers = await asyncio.gather(
            *(client.submit_task(task(i), pipelined=False) for i in range(60)),
            *(client.submit_task(task(i)) for i in range(60, 200)),
            client.submit_many("sleep", [{"seconds": 60}] * 40),
        )
        swarm.kill(swarm.coordinator)  # right after the last receipt arrived
    receipts = [*answers[:-1], *answers[-1]]  # type: ignore[misc]
    ids = {r.task_id for r in receipts if isinstance(r, Receipt)}
    assert len(ids) == 240
    with contextlib.closing(sqlite3.connect(swarm.root / "state" / "tasks.sqlite3")) as db:
        stored = {row[0] for row in db.execute("SELECT id FROM tasks WHERE state='QUEUED'")}
    assert ids <= stored
