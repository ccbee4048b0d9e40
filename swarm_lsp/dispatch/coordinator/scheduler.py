"""Which runner gets a task: a pure function of the task and the runners, no clock, no I/O.

Dispatch order (the seed's): (1) the least-loaded live worker whose roles and model sizes match
the route (a route naming a machine prefers it); (2) when no remote worker for the role is
connected, the local fallback worker (the caller passes it only when it may be used now); (3) when
workers exist but all are busy, nobody: the task waits in the queue.

``rank`` orders the free candidates (lowest first): it sees the task and the worker, nothing
else. ``rank_for`` picks it: immediate tasks go to the worker with the lowest expected
completion time (its identity's service time plus expected run time, see ``latency``);
background and batch tasks to the least-loaded one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from swarm_lsp.dispatch.coordinator.latency import ServiceEstimate, identity_of
from swarm_lsp.dispatch.coordinator.model import LOCAL_WORKER, WorkerSession
from swarm_lsp.dispatch.store import TaskRecord

Rank = Callable[[TaskRecord, WorkerSession], tuple[Any, ...]]


def least_loaded(task: TaskRecord, worker: WorkerSession) -> tuple[float, float, int]:
    """Share of slots in use (its machine's other workers' too), then the worker's own load
    report, then work done so far."""
    busy = len(worker.running) + worker.elsewhere
    return (busy / worker.capacity, worker.load, worker.completed)


def expected_completion(estimate: Callable[[str], ServiceEstimate], default_run_ms: float) -> Rank:
    """Rank by expected lease-to-complete time; ties by share of slots in use, then load."""

    def rank(task: TaskRecord, worker: WorkerSession) -> tuple[float, float, float]:
        expected = estimate(identity_of(worker)).expected_ms(task.route["role"], default_run_ms)
        return (expected, len(worker.running) / worker.capacity, worker.load)

    return rank


def rank_for(
    task: TaskRecord, estimate: Callable[[str], ServiceEstimate], default_run_ms: float
) -> Rank:
    """Immediate tasks: lowest expected completion time; background and batch: least loaded."""
    if task.priority == "immediate":
        return expected_completion(estimate, default_run_ms)
    return least_loaded


def candidates(route: dict[str, Any], workers: Iterable[WorkerSession]) -> list[WorkerSession]:
    """Remote workers that could run a task on ``route`` (busy or not)."""
    return [w for w in workers if not w.local and w.fits(route)]


def choose(
    task: TaskRecord,
    workers: Iterable[WorkerSession],
    local: WorkerSession | None = None,
    *,
    rank: Rank = least_loaded,
) -> WorkerSession | None:
    """The runner for ``task``, or None when it must wait.

    ``local``: the local fallback session, only when it may take work now (after the
    post-restart grace); it is used when no remote worker for the route is connected.
    """
    route = task.route
    if route["machine"] != LOCAL_WORKER:
        fitting = candidates(route, workers)
        if fitting:
            named = [w for w in fitting if route["machine"] in (w.name, w.host)]
            pool = [w for w in (named or fitting) if w.free > 0]
            if not pool and named:
                pool = [w for w in fitting if w.free > 0]
            if not pool:
                return None  # workers exist but all are busy: wait in the queue
            return min(pool, key=lambda w: rank(task, w))
    if local is not None and local.fits(route) and local.free > 0:
        return local
    return None


def estimated_wait_ms(position: int, capacity: int, average_ms: float) -> int:
    """Time until a task at queue ``position`` starts; -1 when nothing can run it."""
    if capacity <= 0:
        return -1
    return int(math.ceil(position / capacity) * average_ms)
