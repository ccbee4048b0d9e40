"""What the dispatch client hands its callers: receipts, results, task and swarm status.

Plain frozen dataclasses built from the protobuf messages, and :class:`RpcFailure`, the
error every failed coordinator call becomes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.errors import DispatchError

_KINDS = {
    pb.TaskResult.PARTIAL: "partial",
    pb.TaskResult.PROGRESS: "progress",
    pb.TaskResult.FINAL: "final",
    pb.TaskResult.ERROR: "error",
}


class RpcFailure(DispatchError):
    """A coordinator call failed; ``code`` is the gRPC status code name."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def failure(what: str, err: grpc.aio.AioRpcError) -> RpcFailure:
    code = err.code()
    hint = ""
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = " (is the coordinator running? check swarm.coordinator, TLS and the token)"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        hint = " (the coordinator did not answer in time)"
    return RpcFailure(f"{what}: {code.name}: {err.details()}{hint}", code.name)


def closed_under(what: str, closed: bool) -> RpcFailure | None:
    """A call cancelled because its client was closed (grpc.aio cancels every call in flight
    on a closed channel) as an RpcFailure; None when it is the caller's task being cancelled."""
    task = asyncio.current_task()
    if closed and task is not None and not task.cancelling():
        return RpcFailure(f"{what}: CANCELLED: the client was closed", "CANCELLED")
    return None


def state_name(value: int) -> str:
    return str(pb.TaskState.Name(value))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Receipt:
    task_id: str
    state: str
    queue_position: int
    estimated_wait_ms: int  # -1: unknown (no worker can take it yet)
    role: str
    machine: str
    model_size: str
    timeout_ms: int
    deadline_ms: int
    duplicate: bool
    fallback: str  # "local" when the coordinator runs it on its own slower model
    wait_bound_ms: int
    exceeds_wait_bound: bool  # ask the user: wait, or use the fast local model
    note: str
    blobs_uploaded: int = 0

    @classmethod
    def from_pb(cls, receipt: pb.TaskReceipt, blobs_uploaded: int = 0) -> Receipt:
        return cls(
            task_id=receipt.task_id,
            state=state_name(receipt.state),
            queue_position=receipt.queue_position,
            estimated_wait_ms=receipt.estimated_wait_ms,
            role=receipt.route.role,
            machine=receipt.route.machine,
            model_size=receipt.route.model_size,
            timeout_ms=receipt.route.timeout_ms,
            deadline_ms=receipt.deadline_ms,
            duplicate=receipt.duplicate,
            fallback=receipt.fallback,
            wait_bound_ms=receipt.wait_bound_ms,
            exceeds_wait_bound=receipt.exceeds_wait_bound,
            note=receipt.note,
            blobs_uploaded=blobs_uploaded,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    task_id: str
    kind: str  # partial | progress | final | error
    text: str
    data: Any  # parsed JSON (None when empty)
    sequence: int
    attempt: int
    worker: str
    fallback: str
    percentage: int | None
    state: str
    error_code: str
    stats: dict[str, str]
    eta_ms: int | None = None  # the coordinator's estimate of the time left (None: unknown)

    @property
    def final(self) -> bool:
        return self.kind in ("final", "error")

    @classmethod
    def from_pb(cls, result: pb.TaskResult) -> Result:
        try:
            data = codec.loads(result.data)
        except ValueError:
            data = None
        return cls(
            task_id=result.task_id,
            kind=_KINDS.get(result.kind, "partial"),
            text=result.text,
            data=data,
            sequence=result.sequence,
            attempt=result.attempt,
            worker=result.worker,
            fallback=result.fallback,
            percentage=None if result.percentage < 0 else result.percentage,
            state=state_name(result.state),
            error_code=result.error_code,
            stats=dict(result.stats),
            eta_ms=result.eta_ms if result.eta_ms > 0 else None,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskInfo:
    task_id: str
    state: str
    type: str
    priority: str
    worker: str
    attempt: int
    queue_position: int
    estimated_wait_ms: int
    submitted_ms: int
    started_ms: int
    finished_ms: int
    deadline_ms: int
    error_code: str
    error_message: str
    fallback: str

    @classmethod
    def from_pb(cls, status: pb.TaskStatus) -> TaskInfo:
        return cls(
            task_id=status.task_id,
            state=state_name(status.state),
            type=status.type,
            priority=status.priority,
            worker=status.worker,
            attempt=status.attempt,
            queue_position=status.queue_position,
            estimated_wait_ms=status.estimated_wait_ms,
            submitted_ms=status.submitted_ms,
            started_ms=status.started_ms,
            finished_ms=status.finished_ms,
            deadline_ms=status.deadline_ms,
            error_code=status.error_code,
            error_message=status.error_message,
            fallback=status.fallback,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Machine:
    worker_id: str
    name: str
    host: str
    roles: tuple[str, ...]
    model_sizes: tuple[str, ...]
    capacity: int
    running: int
    load: float
    last_heartbeat_ms_ago: int
    draining: bool
    peer: str
    completed: int
    service_ms: float = 0.0  # expected time beyond run time (latency-aware routing); 0: unknown
    rtt_ms: float = 0.0  # heartbeat round trip; 0: not measured yet


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSummary:
    task_id: str
    type: str
    state: str
    worker: str
    submitted_ms: int
    duration_ms: int
    fallback: str
    role: str = ""
    priority: str = ""
    error_code: str = ""
    error_message: str = ""
    percentage: int = -1  # running: the last progress report; -1 unknown
    eta_ms: int = -1  # queued or running: expected time until it finishes; -1 unknown

    @classmethod
    def from_pb(cls, t: pb.TaskSummary) -> TaskSummary:
        return cls(
            task_id=t.task_id,
            type=t.type,
            state=state_name(t.state),
            worker=t.worker,
            submitted_ms=t.submitted_ms,
            duration_ms=t.duration_ms,
            fallback=t.fallback,
            role=t.role,
            priority=t.priority,
            error_code=t.error_code,
            error_message=t.error_message,
            percentage=t.percentage,
            eta_ms=t.eta_ms,
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RouteRule:
    task_type: str
    role: str
    priority: str  # "": any
    complexity: str  # "": any
    machine: str
    model_size: str
    timeout_ms: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class SwarmStatus:
    coordinator: str
    machines: tuple[Machine, ...]
    queues: dict[str, int]
    queue_depth: int
    recent: tuple[TaskSummary, ...]
    counts: dict[str, int]
    local_roles: tuple[str, ...]
    uptime_ms: int
    active: tuple[TaskSummary, ...] = ()  # queued and running, running first
    routes: tuple[RouteRule, ...] = ()

    @classmethod
    def from_pb(cls, status: pb.SwarmStatus) -> SwarmStatus:
        return cls(
            coordinator=status.coordinator,
            machines=tuple(
                Machine(
                    worker_id=m.worker_id,
                    name=m.name,
                    host=m.host,
                    roles=tuple(m.roles),
                    model_sizes=tuple(m.model_sizes),
                    capacity=m.capacity,
                    running=m.running,
                    load=m.load,
                    last_heartbeat_ms_ago=m.last_heartbeat_ms_ago,
                    draining=m.draining,
                    peer=m.peer,
                    completed=m.completed,
                    service_ms=m.service_ms,
                    rtt_ms=m.rtt_ms,
                )
                for m in status.machines
            ),
            queues={q.role: q.depth for q in status.queues},
            queue_depth=status.queue_depth,
            recent=tuple(TaskSummary.from_pb(t) for t in status.recent),
            counts=dict(status.counts),
            local_roles=tuple(status.local_roles),
            uptime_ms=status.uptime_ms,
            active=tuple(TaskSummary.from_pb(t) for t in status.active),
            routes=tuple(
                RouteRule(
                    task_type=r.task_type,
                    role=r.role,
                    priority=r.priority,
                    complexity=r.complexity,
                    machine=r.machine,
                    model_size=r.model_size,
                    timeout_ms=r.timeout_ms,
                )
                for r in status.routes
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """camelCase JSON, as the LSP server's ``swarm/status`` returns it."""
        from swarm_lsp.config import camel_case

        def convert(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {
                    camel_case(f.name): convert(getattr(value, f.name))
                    for f in dataclasses.fields(value)
                }
            if isinstance(value, tuple | list):
                return [convert(v) for v in value]
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value

        result: dict[str, Any] = convert(self)
        return result
