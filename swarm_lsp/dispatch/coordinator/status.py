"""Answers about tasks and the swarm: receipts, task status, swarm status, wait estimates."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc

from swarm_lsp.dispatch.coordinator import scheduler
from swarm_lsp.dispatch.coordinator.latency import identity_of
from swarm_lsp.dispatch.coordinator.model import RequestError, route_pb
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.store import TaskRecord, now_ms

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator


def queue_position(c: Coordinator, record: TaskRecord) -> int:
    active = c.active.get(record.id)
    if record.state != "QUEUED" or active is None:
        return 0
    return c.queues.position(active, c.active.get)


def estimated_wait_ms(c: Coordinator, record: TaskRecord, position: int) -> int:
    if record.state != "QUEUED":
        return 0
    capacity = sum(w.capacity for w in scheduler.candidates(record.route, c.sessions))
    if capacity == 0 and c.local is not None and record.role in c.local.roles:
        capacity = c.local.capacity
    average = c.avg_ms.get(record.role, float(c.config.default_task_ms))
    return scheduler.estimated_wait_ms(position, capacity, average)


def receipt(c: Coordinator, record: TaskRecord, *, duplicate: bool = False) -> pb.TaskReceipt:
    if duplicate:
        position = queue_position(c, record)
    elif record.state == "QUEUED":
        position = c.queues.quick_position(record.role, record.priority)
    else:
        position = 0
    wait = estimated_wait_ms(c, record, position)
    bound = c.routing.wait_bound_ms(record.priority)
    note = ""
    if record.state == "QUEUED":
        if wait < 0:
            note = f"no worker for role {record.role!r} is connected"
            if c.config.local_fallback and c.local is None:
                note += " and the coordinator's local worker is not connected"
            elif c.config.local_fallback and c.local is not None:
                note += " and the coordinator's local worker does not have it"
        else:
            note = f"all workers for role {record.role!r} are busy"
    return pb.TaskReceipt(
        task_id=record.id,
        state=pb.TaskState.Value(record.state),
        queue_position=position,
        estimated_wait_ms=wait,
        route=route_pb(record.route),
        deadline_ms=record.deadline_ms,
        duplicate=duplicate,
        fallback=record.fallback,
        wait_bound_ms=bound,
        exceeds_wait_bound=bool(bound) and (wait < 0 or wait > bound),
        note=note,
    )


def task_status(c: Coordinator, task_id: str) -> pb.TaskStatus:
    active = c.active.get(task_id)
    record = active.record if active is not None else c.store.get(task_id)
    if record is None:
        raise RequestError(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
    position = queue_position(c, record)
    return pb.TaskStatus(
        task_id=record.id,
        state=pb.TaskState.Value(record.state),
        type=record.type,
        priority=record.priority,
        worker=record.worker,
        attempt=record.attempt,
        queue_position=position,
        estimated_wait_ms=estimated_wait_ms(c, record, position),
        submitted_ms=record.submitted_ms,
        started_ms=record.started_ms,
        finished_ms=record.finished_ms,
        deadline_ms=record.deadline_ms,
        error_code=record.error_code,
        error_message=record.error_message,
        fallback=record.fallback,
        route=route_pb(record.route),
    )


def swarm_status(c: Coordinator, recent: int, owner: str | None = None) -> pb.SwarmStatus:
    """Machines, queues, counts and routes; the tasks are ``owner``'s only when given."""
    from swarm_lsp.dispatch.coordinator import activity  # it builds on this module

    now = time.monotonic()
    machines = [
        pb.MachineStatus(
            worker_id=w.id,
            name=w.name,
            host=w.host,
            roles=sorted(w.roles),
            model_sizes=list(w.model_sizes),
            capacity=w.capacity,
            running=len(w.running),
            load=w.load,
            last_heartbeat_ms_ago=int((now - w.last_heartbeat) * 1000),
            draining=w.draining,
            peer=w.peer,
            completed=w.completed,
            service_ms=c.estimates.get(identity_of(w)).service_ms,
            rtt_ms=c.estimates.get(identity_of(w)).rtt_ms or 0.0,
        )
        for w in sorted(c.sessions, key=lambda w: w.name)
        if not w.local  # the local fallback worker: its roles are local_roles
    ]
    depth = c.queues.depth_by_role()
    stamp = now_ms()
    c.keeper.save()
    rows = c.store.recent(recent or 20, owner)
    return pb.SwarmStatus(
        coordinator=c.address,
        machines=machines,
        queues=[pb.QueueStatus(role=r, depth=d) for r, d in sorted(depth.items()) if d],
        queue_depth=sum(depth.values()),
        recent=[
            pb.TaskSummary(
                task_id=row["id"],
                type=row["type"],
                state=pb.TaskState.Value(row["state"]),
                worker=row["worker"],
                submitted_ms=row["submitted_ms"],
                duration_ms=(
                    (row["finished_ms"] or stamp) - row["started_ms"] if row["started_ms"] else 0
                ),
                fallback=row["fallback"],
                role=row["role"],
                priority=row["priority"],
                error_code=row["error_code"],
                error_message=row["error_message"][:500],
                percentage=-1,
            )
            for row in rows
        ],
        counts=c.store.counts(),
        local_roles=sorted(c.local.roles) if c.local is not None else [],
        uptime_ms=int((now - c.started) * 1000),
        active=activity.in_flight(c, owner),
        routes=activity.routes(c),
    )
