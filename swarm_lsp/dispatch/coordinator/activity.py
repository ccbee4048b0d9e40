"""What is going on now, for the dashboard and the editor: tasks in flight with their ETA.

The ETA of a queued task is its wait (queue position over the capacity of the workers that
fit, times the role's average run time) plus one run. A running task's is its worker's
expected lease-to-complete time (the identity's service-time estimate plus its run time for
the role, see ``latency``) minus the time since the lease, or, once the worker has reported a
percentage, the time so far stretched to 100 %. -1: unknown (no worker could run it).
"""

from __future__ import annotations

import bisect
import time
from typing import TYPE_CHECKING

from swarm_lsp.dispatch.coordinator import status
from swarm_lsp.dispatch.coordinator.latency import identity_of
from swarm_lsp.dispatch.coordinator.model import ActiveTask
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.store import now_ms

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

MAX_ACTIVE = 200


def _run_ms(c: Coordinator, active: ActiveTask) -> float:
    """Expected lease-to-complete time of ``active`` on its worker (or on any worker)."""
    record = active.record
    default = c.avg_ms.get(record.role, float(c.config.default_task_ms))
    session = c.sessions.holder(record.worker) if record.worker else None
    if session is None or session.local:
        return default
    return c.estimates.get(identity_of(session)).expected_ms(record.role, default)


def eta_ms(
    c: Coordinator, active: ActiveTask, percentage: int = -1, position: int | None = None
) -> int:
    """Expected time until ``active`` finishes, in ms; -1 when unknown.

    ``position``: its place in the queue when the caller knows it (else it is looked up).
    """
    record = active.record
    if record.state == "QUEUED":
        if position is None:
            position = status.queue_position(c, record)
        wait = status.estimated_wait_ms(c, record, position)
        return -1 if wait < 0 else wait + int(_run_ms(c, active))
    if record.state != "RUNNING":
        return 0
    if active.leased_at:
        elapsed = (time.monotonic() - active.leased_at) * 1000
    else:
        elapsed = float(max(0, now_ms() - record.started_ms))
    if 0 < percentage < 100:
        return int(elapsed * (100 - percentage) / percentage)
    return int(max(0.0, _run_ms(c, active) - elapsed))


def summary(c: Coordinator, active: ActiveTask, stamp: int, position: int) -> pb.TaskSummary:
    record = active.record
    return pb.TaskSummary(
        task_id=record.id,
        type=record.type,
        state=pb.TaskState.Value(record.state),
        worker=record.worker,
        submitted_ms=record.submitted_ms,
        duration_ms=stamp - record.started_ms if record.started_ms else 0,
        fallback=record.fallback,
        role=record.role,
        priority=record.priority,
        percentage=active.percentage,
        eta_ms=eta_ms(c, active, active.percentage, position),
    )


def in_flight(c: Coordinator, owner: str | None) -> list[pb.TaskSummary]:
    """Queued and running tasks (``owner``'s only when given), running first, oldest first."""
    tasks = [a for a in c.active.values() if owner is None or a.record.owner == owner]
    tasks.sort(key=lambda a: (a.record.state != "RUNNING", a.record.submitted_ms))
    # Queue places in one pass (the queue's own lookup walks a whole heap per task).
    waiting: dict[str, list[tuple[int, int, int, str]]] = {}
    for active in c.active.values():
        if active.record.state == "QUEUED" and active.queue_key is not None:
            waiting.setdefault(active.record.role, []).append(active.queue_key)
    for keys in waiting.values():
        keys.sort()
    stamp = now_ms()
    shown = []
    for active in tasks[:MAX_ACTIVE]:
        key = active.queue_key
        place = 0
        if active.record.state == "QUEUED" and key is not None:
            place = bisect.bisect_left(waiting[active.record.role], key) + 1
        shown.append(summary(c, active, stamp, place))
    return shown


def routes(c: Coordinator) -> list[pb.RouteRule]:
    return [
        pb.RouteRule(
            task_type=r.task_type,
            role=r.role,
            priority=r.priority or "",
            complexity=r.complexity or "",
            machine=r.machine,
            model_size=r.model_size,
            timeout_ms=r.timeout_ms,
        )
        for r in c.routing.routes
    ]
