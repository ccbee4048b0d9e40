"""The coordinator's shared types: its configuration, worker sessions, tasks in flight."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.routing import Route, RoutingTable, model_size_rank
from swarm_lsp.dispatch.security import DEFAULT_MAX_MESSAGE_BYTES
from swarm_lsp.dispatch.store import TaskRecord
from swarm_lsp.errors import SwarmError

LOCAL_WORKER = "local"
DEFAULT_CONTEXT_BYTES = 16 * 1024 * 1024


class RequestError(SwarmError):
    """A request refused with a gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(kw_only=True)
class CoordinatorConfig:
    state_dir: Path
    routing: RoutingTable
    settings: Settings = dataclasses.field(default_factory=Settings)
    heartbeat_interval_ms: int = 500
    lease_timeout_ms: int = 2000  # no heartbeat for this long: the worker's leases are lost
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Quotas, checked before a task or blob is accepted (see admission and blobs):
    max_context_bytes: int = 0  # a task's context, decompressed; 0: DEFAULT_CONTEXT_BYTES
    max_snapshot_bytes: int = 512 * 1024 * 1024  # a task's snapshot files, together
    max_result_bytes: int = 0  # a result's text + data; 0: a quarter of max_message_bytes
    max_client_blob_bytes: int = 1024**3  # blobs one client may have stored at once
    max_blob_store_bytes: int = 4 * 1024**3  # the coordinator's blob store (LRU prune past it)
    max_store_bytes: int = 2 * 1024**3  # the task store (oldest finished tasks go first)
    max_worker_capacity: int = 64  # slots one worker may claim (a credential may say fewer)
    tokens_file: Path | None = None  # per-credential tokens; None: <state_dir>/tokens.json
    local_fallback: bool = True
    local_capacity: int = 2
    max_attempts: int = 3
    default_task_ms: int = 1000  # wait estimate before any task of a role has finished
    keep_finished_ms: int = 7 * 24 * 3600 * 1000  # finished tasks older than this are pruned


@dataclasses.dataclass(eq=False)
class WorkerSession:
    id: str
    name: str
    host: str
    roles: frozenset[str]
    model_sizes: tuple[str, ...]
    capacity: int
    peer: str = ""
    running: dict[str, int] = dataclasses.field(default_factory=dict)  # task id -> attempt
    leased_at: dict[str, float] = dataclasses.field(default_factory=dict)  # task id -> when
    outbox: asyncio.Queue[pb.CoordinatorMessage | None] = dataclasses.field(
        default_factory=asyncio.Queue
    )
    last_heartbeat: float = dataclasses.field(default_factory=time.monotonic)
    load: float = 0.0
    draining: bool = False
    # Slots of its machine that the machine's other workers hold (Heartbeat.busy_elsewhere).
    elsewhere: int = 0
    completed: int = 0
    local: bool = False  # the coordinator's local fallback worker (lower preference)
    identity: str = ""  # one live session per identity (credential, or declared name)

    @property
    def free(self) -> int:
        return self.capacity - len(self.running) - self.elsewhere

    def fits(self, route: dict[str, Any]) -> bool:
        if route["role"] not in self.roles or self.draining:
            return False
        if self.local or not self.model_sizes:
            return True
        need = model_size_rank(route["model_size"])
        return max(model_size_rank(s) for s in self.model_sizes) >= need

    def send(self, message: pb.CoordinatorMessage) -> None:
        self.outbox.put_nowait(message)


@dataclasses.dataclass(eq=False)
class ActiveTask:
    record: TaskRecord
    history: list[pb.TaskResult] = dataclasses.field(default_factory=list)
    history_bytes: int = 0
    subscribers: set[asyncio.Queue[Any]] = dataclasses.field(default_factory=set)
    sequence: int = 0
    deadline_timer: asyncio.TimerHandle | None = None
    queue_key: tuple[int, int, int, str] | None = None
    losses: int = 0  # runners lost (worker died, lease expired, gave it back) since start
    epoch: int = 0  # the current lease's fencing epoch (0: never leased by this coordinator)
    leased_at: float = 0.0  # monotonic time of the current lease
    percentage: int = -1  # the current attempt's last progress report (-1: none)


def blobs_of(record: TaskRecord) -> list[str]:
    """The blobs a task needs until it ends (pinned in the blob store meanwhile)."""
    if not record.manifest and not record.context_dict_blob:
        return []
    return [*record.manifest.values(), record.context_dict_blob]


def route_dict(route: Route) -> dict[str, Any]:
    return {
        "role": route.role,
        "machine": route.machine,
        "model_size": route.model_size,
        "timeout_ms": route.timeout_ms,
    }


def route_pb(route: dict[str, Any]) -> pb.Route:
    return pb.Route(
        role=route["role"],
        machine=route["machine"],
        model_size=route["model_size"],
        timeout_ms=route["timeout_ms"],
    )
