"""Fencing bound and epochs, service-time estimates and latency-aware choice (pure parts)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from swarm_lsp.dispatch import codec, routing
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig
from swarm_lsp.dispatch.coordinator.fencing import Epochs, fence_ms
from swarm_lsp.dispatch.coordinator.latency import ServiceEstimates, identity_of
from swarm_lsp.dispatch.coordinator.scheduler import choose, rank_for
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from tests.dispatch.conftest import ECHO_SLEEP_ROUTES
from tests.dispatch.test_scheduler import _task, _worker


def test_the_worker_fence_ends_well_before_the_coordinator_lease_timeout() -> None:
    assert fence_ms(2000) == 1400  # the default: 600 ms margin to kill the task
    assert fence_ms(1000) == 700
    for lease in (300, 500, 1000, 2000, 10_000, 60_000):
        assert 0 < fence_ms(lease) <= lease - 200


def test_epochs_grow_across_restarts_and_never_repeat(tmp_path: Path) -> None:
    first = Epochs(tmp_path)
    a, b = first.next(), first.next()
    assert b > a
    second = Epochs(tmp_path)  # a restart: a new generation
    c = second.next()
    assert c > b and second.generation == first.generation + 1
    assert c >> 32 == second.generation


def test_estimates_are_per_identity_and_weigh_round_trip_and_overhead() -> None:
    estimates = ServiceEstimates()
    assert estimates.get("w1").service_ms == 0.0  # unknown: no penalty (explored first)
    estimates.round_trip("w2", 100.0)
    estimates.completed("w2", "echo", lease_to_complete_ms=110.0, run_ms=5.0)
    estimates.round_trip("w1", 1.0)
    estimates.completed("w1", "echo", lease_to_complete_ms=7.0, run_ms=5.0)
    assert estimates.get("w2").service_ms == 205.0
    assert estimates.get("w1").service_ms == 3.0
    assert estimates.get("w2").expected_ms("echo", 0.0) == 210.0
    # A run time longer than the whole lease (clock slack) never makes the overhead negative.
    estimates.completed("w1", "echo", lease_to_complete_ms=5.0, run_ms=50.0)
    overhead = estimates.get("w1").overhead_ms
    assert overhead is not None and overhead >= 0
    estimates.round_trip("w1", 0.0)  # not measured: ignored
    assert estimates.get("w1").rtt_ms == 1.0


def test_immediate_tasks_go_to_the_lowest_expected_completion_others_least_loaded() -> None:
    estimates = ServiceEstimates()
    estimates.round_trip("slow", 100.0)
    estimates.completed("slow", "echo", 105.0, 3.0)
    estimates.round_trip("fast", 1.0)
    estimates.completed("fast", "echo", 6.0, 3.0)
    # The fast worker has done more and runs one task: least-loaded would pick the slow one.
    slow, fast = _worker("slow"), _worker("fast", running=1, completed=50)
    immediate = _task(priority="immediate")
    assert choose(immediate, [slow, fast], rank=rank_for(immediate, estimates.get, 3.0)) is fast
    background = _task(priority="background")
    assert choose(background, [slow, fast], rank=rank_for(background, estimates.get, 3.0)) is slow
    # A busy fast worker: the immediate task still runs at once on the slow one.
    full = _worker("fast", capacity=1, running=1)
    assert choose(immediate, [slow, full], rank=rank_for(immediate, estimates.get, 3.0)) is slow
    # Role run times count: a worker slow at this role loses to a faster-link one.
    estimates.completed("fast", "echo", 1000.0, 990.0)
    estimates.completed("fast", "echo", 1000.0, 990.0)
    estimates.completed("fast", "echo", 1000.0, 990.0)
    ranked = rank_for(immediate, estimates.get, 3.0)
    assert choose(immediate, [slow, _worker("fast")], rank=ranked) is slow


# -- the coordinator's side, in process (no server: the core's methods are called directly) --


async def _coordinator(tmp_path: Path, lease_timeout_ms: int = 400) -> Coordinator:
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=tmp_path / "state",
            routing=routing.parse(ECHO_SLEEP_ROUTES),
            heartbeat_interval_ms=100,
            lease_timeout_ms=lease_timeout_ms,
            local_fallback=False,
        )
    )
    await coordinator.start()
    return coordinator


def _submit(c: Coordinator) -> str:
    return c.submit(pb.Task(type="echo", context=codec.encode_json({"text": "x"}))).task_id


async def test_a_completion_with_another_epoch_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    c = await _coordinator(tmp_path)
    try:
        session = c.register_worker(pb.RegisterRequest(name="w", roles=["echo"], capacity=1), "")
        task_id = _submit(c)
        epoch = c.active[task_id].epoch
        assert epoch >> 32 == c.epochs.generation
        c.on_complete(session, pb.CompleteRequest(task_id=task_id, attempt=1, epoch=epoch - 1))
        assert c.active[task_id].record.state == "RUNNING"
        assert f"refused a completion of task {task_id} from w: epoch {epoch - 1}" in caplog.text
        c.on_complete(session, pb.CompleteRequest(task_id=task_id, attempt=1, epoch=epoch))
        assert task_id not in c.active
        assert c.store.get(task_id).state == "SUCCEEDED"  # type: ignore[union-attr]
    finally:
        await c.stop()


async def test_a_lost_sessions_tasks_wait_out_the_lease_timeout_before_another_worker(
    tmp_path: Path,
) -> None:
    c = await _coordinator(tmp_path, lease_timeout_ms=400)
    try:
        first = c.register_worker(pb.RegisterRequest(name="a", roles=["echo"], capacity=1), "")
        task_id = _submit(c)
        other = c.register_worker(pb.RegisterRequest(name="b", roles=["echo"], capacity=1), "")
        lost_at = time.monotonic()
        c.drop_worker(first, "session closed")  # this side saw the stream end first
        assert task_id not in other.running  # the old holder may still be stopping it
        # b heartbeats as a live worker does (else, on a loaded machine, the reaper may drop it
        # for missed heartbeats before a's task is requeued, and nothing could take the task).
        give_up = time.monotonic() + 60
        while task_id not in other.running:
            assert time.monotonic() < give_up, "the task never went to the live worker"
            c.on_heartbeat(other, pb.Heartbeat())
            await asyncio.sleep(0.01)
        waited = time.monotonic() - lost_at
        assert waited >= 0.4 - (lost_at - first.last_heartbeat) - 0.01
        assert c.active[task_id].epoch != 0 and c.active[task_id].record.attempt == 2
        acks = [first.outbox.get_nowait() for _ in range(first.outbox.qsize())]
        assert acks[-1] is None  # the session was closed
    finally:
        await c.stop()


async def test_every_heartbeat_is_acknowledged_with_its_sequence_and_feeds_the_estimate(
    tmp_path: Path,
) -> None:
    c = await _coordinator(tmp_path)
    try:
        session = c.register_worker(pb.RegisterRequest(name="w", roles=["echo"], capacity=1), "")
        c.on_heartbeat(session, pb.Heartbeat(sequence=7, rtt_ms=42))
        message = session.outbox.get_nowait()
        assert message is not None and message.heartbeat_ack.sequence == 7
        assert c.estimates.get(identity_of(session)).rtt_ms == 42.0
        status = c.swarm_status(0)
        assert status.machines[0].rtt_ms == 42.0 and status.machines[0].service_ms == 42.0
        # The estimate belongs to the identity: a new session under the name keeps it.
        c.drop_worker(session, "gone")
        c.register_worker(pb.RegisterRequest(name="w", roles=["echo"], capacity=1), "")
        assert c.swarm_status(0).machines[0].service_ms == 42.0
    finally:
        await c.stop()


def test_swarm_lsp_status_shows_each_machines_service_time() -> None:
    from swarm_lsp.dispatch.cli_status import render
    from swarm_lsp.dispatch.client import SwarmStatus

    status = pb.SwarmStatus(
        coordinator="127.0.0.1:50051",
        machines=[
            pb.MachineStatus(name="fast", roles=["echo"], capacity=1, service_ms=2.5, rtt_ms=1),
            pb.MachineStatus(name="slow", roles=["echo"], capacity=1, service_ms=203.4),
            pb.MachineStatus(name="new", roles=["echo"], capacity=1),
        ],
    )
    lines = render(SwarmStatus.from_pb(status)).splitlines()
    header = next(line for line in lines if line.startswith("MACHINE"))
    assert "SERVICE" in header
    column = header.index("SERVICE")
    rows = {
        line.split()[0]: line[column:].split()[0]
        for line in lines
        if line[:4] in ("fast", "slow", "new ")
    }
    assert rows == {"fast": "2.5ms", "slow": "203.4ms", "new": "-"}
