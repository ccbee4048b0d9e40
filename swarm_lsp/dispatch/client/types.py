"""What the dispatch client hands its callers: receipts, results, task and swarm status.

Plain frozen dataclasses built from the protobuf messages, and :class:`RpcFailure`, the
error every failed coordinator call becomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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


@contextlib.contextmanager
def call_failures(what: str, closed: Callable[[], bool]) -> Iterator[None]:
    """A failed coordinator call in the block raised as RpcFailure: a gRPC error, or a call
    cancelled because ``closed()`` (the caller's own cancellation passes through)."""
    try:
        yield
    except grpc.aio.AioRpcError as err:
        raise failure(what, err) from err
    except asyncio.CancelledError:
        if (closed_failure := closed_under(what, closed())) is None:
            raise
        raise closed_failure from None


def state_name(value: int) -> str:
    return str(pb.TaskState.Name(value))


_Shape = TypeVar("_Shape")


def from_message(cls: type[_Shape], message: Any, **converted: Any) -> _Shape:
    """``cls`` (a dataclass) from the protobuf ``message``'s fields of the same names;
    ``converted`` gives the fields whose value is not the message's own."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    same = {f.name: getattr(message, f.name) for f in fields if f.name not in converted}
    return cls(**same, **converted)


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
        return from_message(
            cls,
            receipt,
            state=state_name(receipt.state),
            role=receipt.route.role,
            machine=receipt.route.machine,
            model_size=receipt.route.model_size,
            timeout_ms=receipt.route.timeout_ms,
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
        return from_message(
            cls,
            result,
            kind=_KINDS.get(result.kind, "partial"),
            data=data,
            percentage=None if result.percentage < 0 else result.percentage,
            state=state_name(result.state),
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
        return from_message(cls, status, state=state_name(status.state))


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

    @classmethod
    def from_pb(cls, m: pb.MachineStatus) -> Machine:
        return from_message(cls, m, roles=tuple(m.roles), model_sizes=tuple(m.model_sizes))


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
        return from_message(cls, t, state=state_name(t.state))


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
            machines=tuple(Machine.from_pb(m) for m in status.machines),
            queues={q.role: q.depth for q in status.queues},
            queue_depth=status.queue_depth,
            recent=tuple(TaskSummary.from_pb(t) for t in status.recent),
            counts=dict(status.counts),
            local_roles=tuple(status.local_roles),
            uptime_ms=status.uptime_ms,
            active=tuple(TaskSummary.from_pb(t) for t in status.active),
            routes=tuple(from_message(RouteRule, r) for r in status.routes),
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
