"""The scheduler is a pure function of a task and the runners: tested without a coordinator."""

from __future__ import annotations

from typing import Any

from swarm_lsp.dispatch.coordinator.model import WorkerSession
from swarm_lsp.dispatch.coordinator.scheduler import choose, estimated_wait_ms
from swarm_lsp.dispatch.store import TaskRecord

from .conftest import task_record


def _task(role: str = "echo", machine: str = "any", size: str = "7B", **extra: Any) -> TaskRecord:
    return task_record(
        "t",
        type=role,
        role=role,
        priority=extra.get("priority", "background"),
        route={"role": role, "machine": machine, "model_size": size, "timeout_ms": 1000},
    )


def _worker(
    name: str,
    *,
    roles: tuple[str, ...] = ("echo",),
    capacity: int = 2,
    running: int = 0,
    sizes: tuple[str, ...] = (),
    **extra: Any,
) -> WorkerSession:
    session = WorkerSession(
        id=name,
        name=name,
        host=extra.get("host", f"{name}-host"),
        roles=frozenset(roles),
        model_sizes=sizes,
        capacity=capacity,
        local=extra.get("local", False),
    )
    session.running = {f"{name}-{i}": 1 for i in range(running)}
    session.load = extra.get("load", 0.0)
    session.completed = extra.get("completed", 0)
    session.draining = extra.get("draining", False)
    return session


def test_least_loaded_matching_worker_wins() -> None:
    busy, idle, other = _worker("busy", running=1), _worker("idle"), _worker("o", roles=("sleep",))
    assert choose(_task(), [busy, idle, other]) is idle
    # Equal share of slots in use: the lower reported load, then fewer completed.
    a, b = _worker("a", load=0.5), _worker("b", load=0.1)
    assert choose(_task(), [a, b]) is b
    c, d = _worker("c", completed=9), _worker("d", completed=2)
    assert choose(_task(), [c, d]) is d


def test_model_size_draining_and_full_workers_are_skipped() -> None:
    small, big = _worker("small", sizes=("7B",)), _worker("big", sizes=("7B", "70B"))
    assert choose(_task(size="70B"), [small, big]) is big
    assert choose(_task(size="70B"), [small]) is None  # no fit and no local fallback offered
    assert choose(_task(), [_worker("d", draining=True)]) is None
    full = _worker("full", capacity=1, running=1)
    assert choose(_task(), [full]) is None  # it exists but is busy: wait, even with a local
    assert choose(_task(), [full], _worker("local", local=True)) is None


def test_named_machine_is_preferred_then_any_free_match() -> None:
    named, other = _worker("gpu", running=1), _worker("cpu")
    assert choose(_task(machine="gpu"), [other, named]) is named
    assert choose(_task(machine="gpu-host"), [other, named]) is named  # by host name too
    named_full = _worker("gpu", capacity=1, running=1)
    assert choose(_task(machine="gpu"), [other, named_full]) is other


def test_local_fallback_only_without_a_remote_match_and_when_offered() -> None:
    local = _worker("local", roles=("echo", "sleep"), capacity=1, local=True)
    assert choose(_task(), [], local) is local
    assert choose(_task(), [], None) is None  # not offered (e.g. during the restart grace)
    assert choose(_task(role="test"), [], local) is None  # the local side lacks the role
    full = _worker("local", capacity=1, running=1, local=True)
    assert choose(_task(), [], full) is None
    assert choose(_task(machine="local"), [_worker("w")], local) is local


def test_rank_is_a_pluggable_policy() -> None:
    slow, fast = _worker("slow"), _worker("fast")
    latency = {"slow": 100.0, "fast": 2.5}
    picked = choose(_task(priority="immediate"), [slow, fast], rank=lambda t, w: (latency[w.name],))
    assert picked is fast


def test_wait_estimate() -> None:
    assert estimated_wait_ms(0, 2, 100.0) == 0
    assert estimated_wait_ms(3, 2, 100.0) == 200
    assert estimated_wait_ms(1, 0, 100.0) == -1
