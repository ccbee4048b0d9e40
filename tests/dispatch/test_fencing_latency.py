"""Fencing bound and epochs, service-time estimates and latency-aware choice (pure parts)."""

from __future__ import annotations

from pathlib import Path

from swarm_lsp.dispatch.coordinator.fencing import Epochs, fence_ms
from swarm_lsp.dispatch.coordinator.latency import ServiceEstimates
from swarm_lsp.dispatch.coordinator.scheduler import choose, rank_for
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
    assert estimates.get("w1").overhead_ms is not None and estimates.get("w1").overhead_ms >= 0
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
