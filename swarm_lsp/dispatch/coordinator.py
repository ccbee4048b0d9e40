"""The coordinator: accepts tasks, stores them durably, routes them to workers, follows them.

Dispatch order (the seed's): (1) the least-loaded live worker whose roles and model sizes match
the route; (2) when no remote worker for the role is alive, the coordinator's own slower local
model: the role handler runs in this process (results marked ``fallback: local``); (3) when
workers exist but all are busy, the task waits in the durable queue; (4) receipts carry the
queue position and estimated wait so the editor can ask the user when the wait would pass its
priority's bound.

Every accepted task is committed to SQLite before SubmitTask returns; on restart unfinished
tasks go back to the queue. A worker's lease lasts as long as its session and its heartbeats:
when either stops, its tasks go back to the queue for another worker. A task's result is
applied at most once: only the worker holding the current attempt's lease can finish it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import itertools
import logging
import math
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.routing import (
    PRIORITIES,
    Route,
    RoutingTable,
    model_size_rank,
)
from swarm_lsp.dispatch.security import (
    DEFAULT_MAX_MESSAGE_BYTES,
    GuardInterceptor,
    bind,
    server_options,
)
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError, check_hash, check_manifest
from swarm_lsp.dispatch.store import TaskRecord, TaskStore, now_ms
from swarm_lsp.errors import CompressionError, SwarmError, UnknownTaskTypeError

log = logging.getLogger(__name__)

_PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
_TASK_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_META_KEY = re.compile(r"^[A-Za-z0-9._/-]{1,128}$")
MAX_METADATA_ENTRIES = 64
MAX_METADATA_VALUE = 4096
MAX_IDEMPOTENCY_KEY = 256
MAX_BLOB_BYTES = 16 * 1024 * 1024
MAX_BATCH_TASKS = 1000
HISTORY_LIMIT = 512
LOCAL_WORKER = "local"
FINISHED_HISTORY_TASKS = 1000
RECOVERY_GRACE_MS = 5000


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
    max_context_bytes: int = 0  # decompressed; 0: settings.context.max_decompressed_bytes
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
    outbox: asyncio.Queue[pb.CoordinatorMessage | None] = dataclasses.field(
        default_factory=asyncio.Queue
    )
    last_heartbeat: float = dataclasses.field(default_factory=time.monotonic)
    load: float = 0.0
    draining: bool = False
    completed: int = 0
    local: bool = False

    @property
    def free(self) -> int:
        return self.capacity - len(self.running)

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
    subscribers: set[asyncio.Queue[Any]] = dataclasses.field(default_factory=set)
    sequence: int = 0
    deadline_timer: asyncio.TimerHandle | None = None
    local_cancel: asyncio.Event | None = None
    local_task: asyncio.Task[None] | None = None
    queue_key: tuple[int, int, int, str] | None = None
    losses: int = 0  # runners lost (worker died, lease expired, gave it back) since start


def _route_dict(route: Route) -> dict[str, Any]:
    return {
        "role": route.role,
        "machine": route.machine,
        "model_size": route.model_size,
        "timeout_ms": route.timeout_ms,
    }


def _route_pb(route: dict[str, Any]) -> pb.Route:
    return pb.Route(
        role=route["role"],
        machine=route["machine"],
        model_size=route["model_size"],
        timeout_ms=route["timeout_ms"],
    )


class Coordinator:
    """Task routing and bookkeeping; the gRPC servicers below are thin shells over it."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.routing = config.routing
        self.settings = config.settings
        self.max_context_bytes = (
            config.max_context_bytes or self.settings.context.max_decompressed_bytes
        )
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = TaskStore(config.state_dir / "tasks.sqlite3")
        self.blobs = BlobStore(config.state_dir / "blobs")
        self.address = ""
        self.started = time.monotonic()
        self.workers: dict[str, WorkerSession] = {}
        self.active: dict[str, ActiveTask] = {}
        self._queues: dict[str, list[tuple[int, int, int, str]]] = {}
        self._queued_count: dict[tuple[str, str], int] = {}
        self._counter = itertools.count()
        self._avg_ms: dict[str, float] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._local = self._make_local_session()
        self._local_handlers: dict[str, Any] = {}
        self._local_errors: dict[str, str] = {}
        self._local_fallback_after = 0.0
        self._unsaved_starts: dict[str, TaskRecord] = {}
        self._finished: collections.OrderedDict[str, list[pb.TaskResult]] = (
            collections.OrderedDict()
        )
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _make_local_session(self) -> WorkerSession:
        from swarm_lsp.workers.registry import known_roles, role_available

        roles = (
            frozenset(r for r in known_roles() if role_available(r))
            if self.config.local_fallback
            else frozenset()
        )
        return WorkerSession(
            id=LOCAL_WORKER,
            name=LOCAL_WORKER,
            host="",
            roles=roles,
            model_sizes=(),
            capacity=max(1, self.config.local_capacity),
            local=True,
        )

    async def start(self) -> None:
        """Recover unfinished tasks from the store and start the lease reaper.

        After a restart with unfinished tasks, the workers that held them are expected back
        within moments (they reconnect with backoff): local fallback waits a grace period so
        the coordinator does not grab their work first.
        """
        self.store.prune(now_ms() - self.config.keep_finished_ms)
        recovered = self.store.unfinished()
        if recovered:
            grace = max(self.config.lease_timeout_ms, RECOVERY_GRACE_MS) / 1000
            self._local_fallback_after = time.monotonic() + grace
            asyncio.get_running_loop().call_later(grace, self._schedule_all)
        for record in recovered:
            if record.state == "RUNNING":
                record.state = "QUEUED"
                record.worker = ""
                record.fallback = ""
                self.store.update(record.id, state="QUEUED", worker="", fallback="")
            active = ActiveTask(record)
            self.active[record.id] = active
            self._arm_deadline(active)
            self._enqueue(active)
        for role in list(self._queues):
            self._schedule(role)
        self._reaper = asyncio.create_task(self._reap())
        self._flusher = asyncio.create_task(self._flush_starts())

    async def stop(self) -> None:
        for task in (self._reaper, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._save_starts()
        for active in list(self.active.values()):
            if active.deadline_timer is not None:
                active.deadline_timer.cancel()
            if active.local_task is not None:
                active.local_task.cancel()
        for session in list(self.workers.values()):
            session.outbox.put_nowait(None)
        self.store.close()

    def _start_fields(self, task_id: str) -> dict[str, Any]:
        record = self._unsaved_starts.pop(task_id, None)
        if record is None:
            return {}
        return {
            "attempt": record.attempt,
            "worker": record.worker,
            "fallback": record.fallback,
            "started_ms": record.started_ms,
        }

    def _save_starts(self) -> None:
        if not self._unsaved_starts:
            return
        records = list(self._unsaved_starts.values())
        self._unsaved_starts.clear()
        with self.store.transaction():
            for record in records:
                self.store.update(
                    record.id,
                    state=record.state,
                    attempt=record.attempt,
                    worker=record.worker,
                    fallback=record.fallback,
                    started_ms=record.started_ms,
                )

    async def _flush_starts(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.1)
            self._save_starts()
            ticks += 1
            if ticks % 36_000 == 0:  # hourly
                self.store.prune(now_ms() - self.config.keep_finished_ms)

    async def _reap(self) -> None:
        interval = max(0.02, self.config.heartbeat_interval_ms / 2000)
        timeout = self.config.lease_timeout_ms / 1000
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval)
            now = time.monotonic()
            if now - before > 2 * interval + 0.1:
                # This loop was stalled (a busy local fallback, a slow disk): heartbeats that
                # arrived meanwhile are not read yet, so judge no one on this tick.
                continue
            for session in list(self.workers.values()):
                if now - session.last_heartbeat > timeout:
                    log.warning("worker %s missed its heartbeats; its leases go", session.name)
                    self.drop_worker(session, "missed heartbeats")

    # -- submit ----------------------------------------------------------------------------

    def submit(self, task: pb.Task) -> pb.TaskReceipt:
        """Accept one task (committed before this returns), route it, answer with a receipt."""
        accepted = self._accept(task)
        if isinstance(accepted, pb.TaskReceipt):
            return accepted
        self._schedule(accepted.record.role)
        return self._receipt(accepted.record)

    def submit_many(self, tasks: Iterable[pb.Task]) -> pb.SubmitOutcomes:
        """Accept several tasks with one commit, then route them; a receipt or error each.

        Nothing is handed to a worker before the commit: if it fails, none of the batch was
        accepted and each gets UNAVAILABLE.
        """
        answers: list[ActiveTask | pb.TaskReceipt | RequestError] = []
        try:
            with self.store.transaction():
                for task in tasks:
                    try:
                        answers.append(self._accept(task, commit=False))
                    except RequestError as err:
                        answers.append(err)
        except sqlite3.Error as err:
            for answer in answers:
                if isinstance(answer, ActiveTask):
                    self._forget(answer)
            refusal = f"the task store refused the batch: {err}"
            return pb.SubmitOutcomes(
                outcomes=[
                    pb.SubmitOutcome(error_code="UNAVAILABLE", error_message=refusal)
                    for _ in answers
                ]
            )
        self._schedule_roles(frozenset(a.record.role for a in answers if isinstance(a, ActiveTask)))
        outcomes = pb.SubmitOutcomes()
        for answer in answers:
            if isinstance(answer, RequestError):
                outcomes.outcomes.append(
                    pb.SubmitOutcome(error_code=answer.code.name, error_message=str(answer))
                )
            elif isinstance(answer, ActiveTask):
                outcomes.outcomes.append(pb.SubmitOutcome(receipt=self._receipt(answer.record)))
            else:
                outcomes.outcomes.append(pb.SubmitOutcome(receipt=answer))
        return outcomes

    def _forget(self, active: ActiveTask) -> None:
        """Drop a task that was never stored (its batch did not commit)."""
        self._dequeued(active)
        if active.deadline_timer is not None:
            active.deadline_timer.cancel()
        self.active.pop(active.record.id, None)

    def _accept(self, task: pb.Task, *, commit: bool = True) -> ActiveTask | pb.TaskReceipt:
        """Check and store a task; a receipt instead when its idempotency key is known."""
        key = task.idempotency_key
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "idempotency key is too long")
        if key:
            existing = self.store.by_idempotency_key(key)
            if existing is not None:
                current = self.active.get(existing.id)
                return self._receipt(current.record if current else existing, duplicate=True)
        try:
            route = self.routing.route(task.type, task.priority, task.complexity)
        except UnknownTaskTypeError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
        except ValueError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
        metadata = dict(task.metadata)
        self._check_metadata(metadata)
        self._check_context(task)
        manifest = dict(task.snapshot.files)
        if manifest:
            try:
                check_manifest(manifest)
            except SnapshotError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
            missing = self.blobs.missing(manifest.values())
            if missing:
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{len(missing)} snapshot blob(s) are not uploaded yet (PutBlobs first)",
                )
        task_id = task.id
        if task_id:
            if not _TASK_ID.match(task_id):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "task id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
                )
            if task_id in self.active or self.store.get(task_id) is not None:
                raise RequestError(grpc.StatusCode.ALREADY_EXISTS, f"task {task_id} exists")
        else:
            task_id = uuid.uuid4().hex
        submitted = now_ms()
        deadline = task.deadline_ms if task.deadline_ms > 0 else submitted + route.timeout_ms
        record = TaskRecord(
            id=task_id,
            idempotency_key=key or None,
            type=task.type,
            role=route.role,
            priority=task.priority or "background",
            complexity=task.complexity or "simple",
            context=task.context,
            context_dict_id=task.context_dict_id,
            context_dict_blob=task.context_dict_blob,
            metadata=metadata,
            manifest=manifest,
            route=_route_dict(route),
            state="QUEUED",
            submitted_ms=submitted,
            deadline_ms=deadline,
        )
        try:
            # Committed here (or by submit_many's transaction): from then on the task
            # survives a coordinator crash.
            self.store.insert(record)
        except sqlite3.Error as err:
            if not commit:
                raise
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, f"the task store refused the task: {err}"
            ) from err
        active = ActiveTask(record)
        self.active[task_id] = active
        self._arm_deadline(active)
        self._enqueue(active)
        return active

    def _check_metadata(self, metadata: dict[str, str]) -> None:
        if len(metadata) > MAX_METADATA_ENTRIES:
            raise RequestError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metadata has {len(metadata)} entries; at most {MAX_METADATA_ENTRIES}",
            )
        for name, value in metadata.items():
            if not _META_KEY.match(name):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"metadata key {name[:40]!r} must be 1-128 characters of A-Z a-z 0-9 . _ / -",
                )
            if len(value) > MAX_METADATA_VALUE or any(
                ord(c) < 32 and c not in "\t\n" for c in value
            ):
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"metadata value for {name!r} is too long or has control characters",
                )

    def _check_context(self, task: pb.Task) -> None:
        if task.context_dict_blob:
            try:
                check_hash(task.context_dict_blob)
            except SnapshotError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
            if not self.blobs.has(task.context_dict_blob):
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "the context's zstd dictionary is not uploaded yet (PutBlobs first)",
                )
        if not task.context:
            return
        if task.context_dict_id and not codec.known_dictionary(task.context_dict_id):
            if not task.context_dict_blob:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"context needs zstd dictionary {task.context_dict_id}: set context_dict_blob",
                )
            try:
                known = codec.register_dictionary(self.blobs.get(task.context_dict_blob))
            except CompressionError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"dictionary: {err}") from err
            if known != task.context_dict_id:
                raise RequestError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"context_dict_blob is dictionary {known}, not {task.context_dict_id}",
                )
        try:
            codec.decode_payload(
                task.context, max_size=self.max_context_bytes, dict_id=task.context_dict_id
            )
        except codec.PayloadTooLargeError as err:
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"task context: {err}") from err
        except CompressionError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"task context: {err}") from err

    # -- queue -----------------------------------------------------------------------------

    def _enqueue(self, active: ActiveTask) -> None:
        record = active.record
        key = (
            _PRIORITY_RANK.get(record.priority, 1),
            record.submitted_ms,
            next(self._counter),
            record.id,
        )
        active.queue_key = key
        heapq.heappush(self._queues.setdefault(record.role, []), key)
        count_key = (record.role, record.priority)
        self._queued_count[count_key] = self._queued_count.get(count_key, 0) + 1

    def _dequeued(self, active: ActiveTask) -> None:
        if active.queue_key is None:
            return
        active.queue_key = None
        count_key = (active.record.role, active.record.priority)
        self._queued_count[count_key] = max(0, self._queued_count.get(count_key, 0) - 1)

    def _schedule(self, role: str) -> None:
        """Assign queued tasks of ``role`` while a matching runner has a free slot."""
        heap = self._queues.get(role)
        while heap:
            task_id = heap[0][3]
            active = self.active.get(task_id)
            if active is None or active.record.state != "QUEUED" or active.queue_key != heap[0]:
                heapq.heappop(heap)
                continue
            runner = self._pick(active.record)
            if runner is None:
                return
            heapq.heappop(heap)
            self._dequeued(active)
            self._assign(active, runner)

    def _remote_candidates(self, route: dict[str, Any]) -> list[WorkerSession]:
        return [w for w in self.workers.values() if w.fits(route)]

    def _pick(self, record: TaskRecord) -> WorkerSession | None:
        route = record.route
        if route["machine"] != LOCAL_WORKER:
            candidates = self._remote_candidates(route)
            if candidates:
                named = [w for w in candidates if route["machine"] in (w.name, w.host)]
                pool = [w for w in (named or candidates) if w.free > 0]
                if not pool and named:
                    pool = [w for w in candidates if w.free > 0]
                if not pool:
                    return None  # workers exist but all are busy: wait in the queue
                return min(pool, key=lambda w: (len(w.running) / w.capacity, w.load, w.completed))
        local = self._local
        if (
            route["role"] in local.roles
            and local.free > 0
            and time.monotonic() >= self._local_fallback_after
        ):
            return local
        return None

    def _schedule_all(self) -> None:
        for role in list(self._queues):
            self._schedule(role)

    def _assign(self, active: ActiveTask, runner: WorkerSession) -> None:
        record = active.record
        record.attempt += 1
        record.state = "RUNNING"
        record.worker = runner.name
        record.fallback = "local" if runner.local else ""
        record.started_ms = now_ms()
        # Not needed for durability (RUNNING goes back to QUEUED on restart): written in
        # batches by the flusher, or with the task's next state change, whichever is first.
        self._unsaved_starts[record.id] = record
        runner.running[record.id] = record.attempt
        lease = pb.LeaseTask(
            task=pb.Task(
                id=record.id,
                type=record.type,
                priority=record.priority,
                context=record.context,
                metadata=record.metadata,
                complexity=record.complexity,
                deadline_ms=record.deadline_ms,
                snapshot=pb.SnapshotManifest(files=record.manifest),
                context_dict_id=record.context_dict_id,
                context_dict_blob=record.context_dict_blob,
            ),
            attempt=record.attempt,
            role=record.role,
            deadline_ms=record.deadline_ms,
        )
        if runner.local:
            active.local_cancel = asyncio.Event()
            active.local_task = asyncio.create_task(self._run_local(lease, active.local_cancel))
        else:
            runner.send(pb.CoordinatorMessage(lease=lease))

    def queue_position(self, record: TaskRecord) -> int:
        if record.state != "QUEUED":
            return 0
        active = self.active.get(record.id)
        if active is None or active.queue_key is None:
            return 0
        heap = self._queues.get(record.role, [])
        ahead = 0
        for key in heap:
            other = self.active.get(key[3])
            if (
                other is not None
                and other.queue_key == key
                and other.record.state == "QUEUED"
                and key < active.queue_key
            ):
                ahead += 1
        return ahead + 1

    def _quick_position(self, record: TaskRecord) -> int:
        """Position of a task just queued: everything of equal or higher priority is ahead."""
        rank = _PRIORITY_RANK.get(record.priority, 1)
        return sum(
            count
            for (role, priority), count in self._queued_count.items()
            if role == record.role and _PRIORITY_RANK.get(priority, 1) <= rank
        )

    def estimated_wait_ms(self, record: TaskRecord, position: int) -> int:
        if record.state != "QUEUED":
            return 0
        capacity = sum(w.capacity for w in self._remote_candidates(record.route))
        if capacity == 0 and record.role in self._local.roles:
            capacity = self._local.capacity
        if capacity == 0:
            return -1
        average = self._avg_ms.get(record.role, float(self.config.default_task_ms))
        return int(math.ceil(position / capacity) * average)

    def _receipt(self, record: TaskRecord, *, duplicate: bool = False) -> pb.TaskReceipt:
        position = self._quick_position(record) if record.state == "QUEUED" else 0
        if duplicate:
            position = self.queue_position(record)
        wait = self.estimated_wait_ms(record, position)
        bound = self.routing.wait_bound_ms(record.priority)
        note = ""
        if record.state == "QUEUED":
            if wait < 0:
                note = f"no worker for role {record.role!r} is connected"
                if record.role not in self._local.roles and self.config.local_fallback:
                    reason = self._local_errors.get(record.role, "role not available here")
                    note += f" and the coordinator cannot run it locally ({reason})"
            else:
                note = f"all workers for role {record.role!r} are busy"
        return pb.TaskReceipt(
            task_id=record.id,
            state=pb.TaskState.Value(record.state),
            queue_position=position,
            estimated_wait_ms=wait,
            route=_route_pb(record.route),
            deadline_ms=record.deadline_ms,
            duplicate=duplicate,
            fallback=record.fallback,
            wait_bound_ms=bound,
            exceeds_wait_bound=bool(bound) and (wait < 0 or wait > bound),
            note=note,
        )

    # -- results ---------------------------------------------------------------------------

    def _publish(self, active: ActiveTask, result: pb.TaskResult) -> None:
        is_partial = result.kind in (pb.TaskResult.PARTIAL, pb.TaskResult.PROGRESS)
        if is_partial and len(active.history) < HISTORY_LIMIT:
            active.history.append(result)
        for queue in active.subscribers:
            queue.put_nowait(result)

    def _current_lease(
        self, session: WorkerSession, task_id: str, attempt: int
    ) -> ActiveTask | None:
        """The task if ``session`` holds its current attempt's lease, else None."""
        if session.running.get(task_id) != attempt:
            return None
        active = self.active.get(task_id)
        if active is None or active.record.state != "RUNNING" or active.record.attempt != attempt:
            return None
        return active

    def follow(self, task_id: str, queue: asyncio.Queue[pb.TaskResult | None]) -> None:
        """Send ``task_id``'s results so far, then every new one, to ``queue``."""
        active = self.active.get(task_id)
        if active is not None:
            for result in active.history:
                queue.put_nowait(result)
            active.subscribers.add(queue)
            return
        for result in self.finished_results(task_id):
            queue.put_nowait(result)
            if result.kind in (pb.TaskResult.FINAL, pb.TaskResult.ERROR):
                return
        record = self.store.get(task_id)
        if record is None:
            queue.put_nowait(
                pb.TaskResult(
                    task_id=task_id,
                    kind=pb.TaskResult.ERROR,
                    text=f"no task {task_id!r}",
                    error_code="NOT_FOUND",
                    percentage=-1,
                )
            )
            return
        queue.put_nowait(self.final_result(record))

    def finished_results(self, task_id: str) -> list[pb.TaskResult]:
        """Every result of a task that finished recently (empty if not remembered)."""
        return self._finished.get(task_id, [])

    def on_partial(self, session: WorkerSession, message: pb.PartialResult) -> None:
        active = self._current_lease(session, message.task_id, message.attempt)
        if active is None:
            return
        active.sequence += 1
        self._publish(
            active,
            pb.TaskResult(
                task_id=message.task_id,
                kind=message.kind or pb.TaskResult.PARTIAL,
                text=message.text,
                data=message.data,
                sequence=active.sequence,
                attempt=message.attempt,
                worker=session.name,
                fallback=active.record.fallback,
                percentage=message.percentage,
                state=pb.RUNNING,
            ),
        )

    def _release(self, session: WorkerSession, task_id: str, attempt: int) -> None:
        if session.running.get(task_id) == attempt:
            del session.running[task_id]

    def on_complete(self, session: WorkerSession, message: pb.CompleteRequest) -> None:
        active = self._current_lease(session, message.task_id, message.attempt)
        self._release(session, message.task_id, message.attempt)
        if active is not None:
            session.completed += 1
            record = active.record
            elapsed = max(1, now_ms() - record.started_ms)
            previous = self._avg_ms.get(record.role)
            self._avg_ms[record.role] = (
                elapsed if previous is None else 0.8 * previous + 0.2 * elapsed
            )
            self._finish(
                active,
                "SUCCEEDED",
                text=message.text,
                data=message.data,
                stats=dict(message.stats),
            )
        self._schedule_roles(session.roles)

    def on_fail(self, session: WorkerSession, message: pb.FailRequest) -> None:
        active = self._current_lease(session, message.task_id, message.attempt)
        self._release(session, message.task_id, message.attempt)
        if active is not None:
            if message.retryable:
                self._requeue(active, f"{session.name} gave it back: {message.message}")
            else:
                code = message.code or "INTERNAL"
                state = {"CANCELLED": "CANCELLED", "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED"}.get(
                    code, "FAILED"
                )
                self._finish(active, state, error_code=code, error_message=message.message)
        self._schedule_roles(session.roles)

    def _schedule_roles(self, roles: frozenset[str]) -> None:
        for role in roles:
            self._schedule(role)

    def _requeue(self, active: ActiveTask, reason: str) -> None:
        """Back to the queue after losing its runner; a task that keeps losing them fails.

        Only losses while this coordinator runs count: a coordinator restart is not the
        task's fault, so a task survives any number of them.
        """
        record = active.record
        active.losses += 1
        if active.losses >= self.config.max_attempts:
            self._finish(
                active,
                "FAILED",
                error_code="UNAVAILABLE",
                error_message=f"gave up after losing {active.losses} runners; last: {reason}",
            )
            return
        record.state = "QUEUED"
        record.worker = ""
        record.fallback = ""
        self.store.update(
            record.id,
            **{**self._start_fields(record.id), "state": "QUEUED", "worker": "", "fallback": ""},
        )
        active.sequence += 1
        self._publish(
            active,
            pb.TaskResult(
                task_id=record.id,
                kind=pb.TaskResult.PROGRESS,
                text=f"requeued: {reason}",
                sequence=active.sequence,
                attempt=record.attempt,
                percentage=-1,
                state=pb.QUEUED,
            ),
        )
        self._enqueue(active)

    def _finish(
        self,
        active: ActiveTask,
        state: str,
        *,
        text: str = "",
        data: bytes = b"",
        stats: dict[str, str] | None = None,
        error_code: str = "",
        error_message: str = "",
    ) -> None:
        """Apply a task's terminal state once: store it, tell subscribers, forget it."""
        record = active.record
        if record.terminal:
            return
        self._dequeued(active)
        record.state = state
        record.finished_ms = now_ms()
        record.result_text = text
        record.result_data = data
        record.result_stats = stats or {}
        record.error_code = error_code
        record.error_message = error_message
        record.context = b""  # only a task that may still run needs its context
        self.store.update(
            record.id,
            **self._start_fields(record.id),
            context=b"",
            state=state,
            finished_ms=record.finished_ms,
            result_text=text,
            result_data=data,
            result_stats=record.result_stats,
            error_code=error_code,
            error_message=error_message,
        )
        if active.deadline_timer is not None:
            active.deadline_timer.cancel()
        active.sequence += 1
        final = self.final_result(record, active.sequence)
        self._publish(active, final)
        del self.active[record.id]
        # Late followers still get the partial results of a task that finished a moment ago.
        self._finished[record.id] = [*active.history, final]
        while len(self._finished) > FINISHED_HISTORY_TASKS:
            self._finished.popitem(last=False)

    @staticmethod
    def final_result(record: TaskRecord, sequence: int = 0) -> pb.TaskResult:
        ok = record.state == "SUCCEEDED"
        return pb.TaskResult(
            task_id=record.id,
            kind=pb.TaskResult.FINAL if ok else pb.TaskResult.ERROR,
            text=record.result_text if ok else record.error_message,
            data=record.result_data,
            sequence=sequence,
            attempt=record.attempt,
            worker=record.worker,
            fallback=record.fallback,
            percentage=100 if ok else -1,
            state=pb.TaskState.Value(record.state),
            error_code="" if ok else record.error_code,
            stats=record.result_stats,
        )

    # -- cancel and deadlines --------------------------------------------------------------

    def _arm_deadline(self, active: ActiveTask) -> None:
        delay = max(0.0, (active.record.deadline_ms - now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        active.deadline_timer = loop.call_later(delay, self._on_deadline, active.record.id)

    def _on_deadline(self, task_id: str) -> None:
        active = self.active.get(task_id)
        if active is None:
            return
        self._stop_task(
            active,
            "DEADLINE_EXCEEDED",
            "deadline",
            f"the task's deadline passed ({active.record.route['timeout_ms']} ms route timeout)",
        )

    def cancel(self, task_id: str) -> None:
        active = self.active.get(task_id)
        if active is None:
            if self.store.get(task_id) is None:
                raise RequestError(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
            return  # already finished: cancelling is a no-op
        self._stop_task(active, "CANCELLED", "cancelled", "cancelled by the client")

    def _stop_task(self, active: ActiveTask, state: str, reason: str, message: str) -> None:
        record = active.record
        if record.state == "RUNNING":
            session = (
                self._local
                if record.fallback == "local"
                else next((w for w in self.workers.values() if w.name == record.worker), None)
            )
            if session is not None and session.local:
                if active.local_cancel is not None:
                    active.local_cancel.set()
            elif session is not None:
                # The slot stays taken until the worker says its handler has stopped.
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRequest(task_id=record.id, reason=reason))
                )
        self._finish(active, state, error_code=state, error_message=message)

    # -- workers ---------------------------------------------------------------------------

    def register_worker(self, request: pb.RegisterRequest, peer: str) -> WorkerSession:
        if not request.roles:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "a worker needs a role")
        for size in request.model_sizes:
            if model_size_rank(size) == 0:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"bad model size {size!r}")
        session = WorkerSession(
            id=uuid.uuid4().hex,
            name=request.name or f"worker-{len(self.workers) + 1}",
            host=request.host,
            roles=frozenset(request.roles),
            model_sizes=tuple(request.model_sizes),
            capacity=max(1, min(request.capacity or 1, 1024)),
            peer=peer,
        )
        # A reconnecting worker with the same name replaces its old session.
        for old in [w for w in self.workers.values() if w.name == session.name]:
            self.drop_worker(old, "replaced by a new session")
        self.workers[session.id] = session
        log.info("worker %s registered: roles %s", session.name, sorted(session.roles))
        return session

    def start_worker(self, session: WorkerSession) -> None:
        self._schedule_roles(session.roles)

    def on_heartbeat(self, session: WorkerSession, message: pb.Heartbeat) -> None:
        session.last_heartbeat = time.monotonic()
        session.load = message.load
        was_draining = session.draining
        session.draining = message.draining
        stale = [task_id for task_id in message.running if task_id not in session.running]
        if stale:
            session.send(pb.CoordinatorMessage(heartbeat_ack=pb.HeartbeatAck(cancel=stale)))
        if was_draining and not session.draining:
            self._schedule_roles(session.roles)

    def drop_worker(self, session: WorkerSession, reason: str) -> None:
        if self.workers.pop(session.id, None) is None:
            return
        session.outbox.put_nowait(None)
        for task_id in list(session.running):
            active = self.active.get(task_id)
            attempt = session.running.pop(task_id)
            if (
                active is not None
                and active.record.attempt == attempt
                and active.record.state == "RUNNING"
            ):
                self._requeue(active, f"worker {session.name} lost ({reason})")
        self._schedule_roles(frozenset(self._queues))

    # -- local fallback --------------------------------------------------------------------

    def _local_handler(self, role: str) -> Any:
        handler = self._local_handlers.get(role)
        if handler is None:
            from swarm_lsp.workers.registry import load_role

            handler = load_role(role, self.settings)
            self._local_handlers[role] = handler
        return handler

    async def _run_local(self, lease: pb.LeaseTask, cancel: asyncio.Event) -> None:
        from swarm_lsp.workers.runtime import StreamReporter, TaskFailure, execute

        session = self._local
        task_id, attempt = lease.task.id, lease.attempt

        def send(message: pb.WorkerMessage) -> None:
            if message.HasField("partial"):
                self.on_partial(session, message.partial)

        async def fetch(hashes: list[str]) -> dict[str, bytes]:
            return {h: self.blobs.get(h) for h in hashes if self.blobs.has(h)}

        try:
            try:
                handler = self._local_handler(lease.role)
            except SwarmError as err:
                self._local_errors[lease.role] = str(err)
                raise TaskFailure("FAILED_PRECONDITION", str(err)) from err
            text, data, stats = await execute(
                lease,
                handler,
                StreamReporter(send, task_id, attempt),
                cancel_event=cancel,
                max_payload_bytes=self.max_context_bytes,
                blob_store=BlobStore(self.config.state_dir / "local-blobs"),
                fetch=fetch,
                work_root=self.config.state_dir / "local-tasks",
            )
        except TaskFailure as failure:
            self.on_fail(
                session,
                pb.FailRequest(
                    task_id=task_id, attempt=attempt, code=failure.code, message=str(failure)
                ),
            )
            return
        except asyncio.CancelledError:
            self._release(session, task_id, attempt)
            raise
        stats["fallback"] = "local"
        self.on_complete(
            session,
            pb.CompleteRequest(task_id=task_id, attempt=attempt, text=text, data=data, stats=stats),
        )

    # -- status ----------------------------------------------------------------------------

    def task_status(self, task_id: str) -> pb.TaskStatus:
        active = self.active.get(task_id)
        record = active.record if active is not None else self.store.get(task_id)
        if record is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        position = self.queue_position(record)
        return pb.TaskStatus(
            task_id=record.id,
            state=pb.TaskState.Value(record.state),
            type=record.type,
            priority=record.priority,
            worker=record.worker,
            attempt=record.attempt,
            queue_position=position,
            estimated_wait_ms=self.estimated_wait_ms(record, position),
            submitted_ms=record.submitted_ms,
            started_ms=record.started_ms,
            finished_ms=record.finished_ms,
            deadline_ms=record.deadline_ms,
            error_code=record.error_code,
            error_message=record.error_message,
            fallback=record.fallback,
            route=_route_pb(record.route),
        )

    def swarm_status(self, recent: int) -> pb.SwarmStatus:
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
            )
            for w in sorted(self.workers.values(), key=lambda w: w.name)
        ]
        depth: dict[str, int] = {}
        for (role, _priority), count in self._queued_count.items():
            depth[role] = depth.get(role, 0) + count
        stamp = now_ms()
        self._save_starts()
        rows = self.store.recent(recent or 20)
        return pb.SwarmStatus(
            coordinator=self.address,
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
                        (row["finished_ms"] or stamp) - row["started_ms"]
                        if row["started_ms"]
                        else 0
                    ),
                    fallback=row["fallback"],
                )
                for row in rows
            ],
            counts=self.store.counts(),
            local_roles=sorted(self._local.roles),
            uptime_ms=int((now - self.started) * 1000),
        )

    # -- blobs -----------------------------------------------------------------------------

    def put_blobs(self, batch: pb.BlobBatch) -> None:
        for blob in batch.blobs:
            try:
                raw = codec.decompress(blob.data, max_size=MAX_BLOB_BYTES, dict_id=blob.dict_id)
                self.blobs.put(blob.hash, raw)
            except codec.PayloadTooLargeError as err:
                raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"blob: {err}") from err
            except (CompressionError, SnapshotError) as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"blob: {err}") from err

    def get_blobs(self, refs: pb.BlobRefs) -> pb.BlobBatch:
        batch = pb.BlobBatch()
        budget = self.config.max_message_bytes // 2
        for digest in refs.hashes:
            try:
                if not self.blobs.has(digest):
                    continue
                data = codec.compress(self.blobs.get(digest))
            except SnapshotError as err:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err
            if batch.blobs and budget - len(data) < 0:
                break  # the caller asks again for the rest
            budget -= len(data)
            batch.blobs.append(pb.Blob(hash=digest, data=data))
        return batch

    def missing_blobs(self, refs: pb.BlobRefs) -> pb.BlobRefs:
        try:
            return pb.BlobRefs(hashes=self.blobs.missing(refs.hashes))
        except SnapshotError as err:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from err


# ------------------------------------------------------------------------- servicers ---

_BATCH_LIMIT = 256


def _drain(queue: asyncio.Queue[Any], first: Any) -> tuple[list[Any], bool]:
    """``first`` and whatever else is already queued (up to a limit); True if None was seen."""
    items = [first]
    while len(items) < _BATCH_LIMIT and not queue.empty():
        item = queue.get_nowait()
        if item is None:
            return items, True
        items.append(item)
    return items, False


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: RequestError) -> None:
    await context.abort(err.code, str(err))


class CoordinatorServicer(pb_grpc.SwarmCoordinatorServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def SubmitTask(self, request: pb.Task, context: Any) -> pb.TaskReceipt:
        try:
            return self.c.submit(request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover - abort raises

    async def SubmitTasks(self, request: pb.TaskBatch, context: Any) -> pb.SubmitOutcomes:
        if len(request.tasks) > MAX_BATCH_TASKS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_BATCH_TASKS} tasks per batch"
            )
        return self.c.submit_many(request.tasks)

    async def SubmitStream(
        self, request_iterator: AsyncIterator[pb.SubmitStreamRequest], context: Any
    ) -> AsyncIterator[pb.SubmitStreamReply]:
        async for request in request_iterator:
            if len(request.tasks) != len(request.request_ids):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "request_ids and tasks differ in length"
                )
            if len(request.tasks) > MAX_BATCH_TASKS:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_BATCH_TASKS} tasks per message"
                )
            outcomes = self.c.submit_many(request.tasks)
            yield pb.SubmitStreamReply(request_ids=request.request_ids, outcomes=outcomes.outcomes)

    async def GetTaskStatus(self, request: pb.TaskId, context: Any) -> pb.TaskStatus:
        try:
            return self.c.task_status(request.id)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover

    async def StreamResults(self, request: pb.TaskId, context: Any) -> AsyncIterator[pb.TaskResult]:
        active = self.c.active.get(request.id)
        if active is None and self.c.finished_results(request.id):
            for result in self.c.finished_results(request.id):
                yield result
            return
        if active is None:
            record = self.c.store.get(request.id)
            if record is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no task {request.id!r}")
                return
            yield Coordinator.final_result(record)
            return
        queue: asyncio.Queue[pb.TaskResult] = asyncio.Queue()
        history = list(active.history)
        active.subscribers.add(queue)
        try:
            for result in history:
                yield result
            while True:
                result = await queue.get()
                yield result
                if result.kind in (pb.TaskResult.FINAL, pb.TaskResult.ERROR):
                    return
        finally:
            active.subscribers.discard(queue)

    async def WatchResults(
        self, request_iterator: AsyncIterator[pb.WatchRequest], context: Any
    ) -> AsyncIterator[pb.WatchResponse]:
        out: asyncio.Queue[pb.TaskResult | None] = asyncio.Queue()
        followed: set[str] = set()

        async def read() -> None:
            try:
                async for request in request_iterator:
                    for task_id in request.task_ids:
                        followed.add(task_id)
                        self.c.follow(task_id, out)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass
            finally:
                out.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                result = await out.get()
                if result is None:
                    return
                if out.empty():
                    await asyncio.sleep(0)  # let what is ready right now join this message
                results, closing = _drain(out, result)
                yield pb.WatchResponse(results=results)
                if closing:
                    return
        finally:
            reader.cancel()
            for task_id in followed:
                active = self.c.active.get(task_id)
                if active is not None:
                    active.subscribers.discard(out)

    async def CancelTask(self, request: pb.TaskId, context: Any) -> pb.Empty:
        try:
            self.c.cancel(request.id)
        except RequestError as err:
            await _abort(context, err)
        return pb.Empty()

    async def GetSwarmStatus(self, request: pb.SwarmStatusRequest, context: Any) -> pb.SwarmStatus:
        return self.c.swarm_status(min(max(request.recent, 0), 500))

    async def HasBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobRefs:
        try:
            return self.c.missing_blobs(request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover

    async def PutBlobs(self, request: pb.BlobBatch, context: Any) -> pb.Empty:
        try:
            await asyncio.to_thread(self.c.put_blobs, request)  # hashing, zstd, disk
        except RequestError as err:
            await _abort(context, err)
        return pb.Empty()

    async def GetBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobBatch:
        try:
            return await asyncio.to_thread(self.c.get_blobs, request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover


class WorkerServicer(pb_grpc.SwarmWorkerServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def GetBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobBatch:
        try:
            return await asyncio.to_thread(self.c.get_blobs, request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover

    async def Connect(
        self, request_iterator: AsyncIterator[pb.WorkerMessage], context: Any
    ) -> AsyncIterator[pb.CoordinatorMessage]:
        try:
            first = await asyncio.wait_for(anext(request_iterator), timeout=10)
        except (TimeoutError, StopAsyncIteration):
            return
        if not first.HasField("register"):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "send register first")
            return
        try:
            session = self.c.register_worker(first.register, context.peer())
        except RequestError as err:
            await _abort(context, err)
            return
        yield pb.CoordinatorMessage(
            registered=pb.Registered(
                worker_id=session.id,
                heartbeat_interval_ms=self.c.config.heartbeat_interval_ms,
                lease_timeout_ms=self.c.config.lease_timeout_ms,
            )
        )
        reader = asyncio.create_task(self._read(session, request_iterator))
        self.c.start_worker(session)
        try:
            while True:
                message = await session.outbox.get()
                if message is None:
                    break
                if session.outbox.empty():
                    await asyncio.sleep(0)  # let what is ready right now join this message
                if session.outbox.empty():
                    yield message
                    continue
                batch, closing = _drain(session.outbox, message)
                yield pb.CoordinatorMessage(batch=pb.CoordinatorBatch(messages=batch))
                if closing:
                    break
        finally:
            reader.cancel()
            self.c.drop_worker(session, "session closed")

    def _handle(self, session: WorkerSession, message: pb.WorkerMessage) -> None:
        c = self.c
        body = message.WhichOneof("body")
        if body == "heartbeat":
            c.on_heartbeat(session, message.heartbeat)
        elif body == "partial":
            c.on_partial(session, message.partial)
        elif body == "complete":
            session.last_heartbeat = time.monotonic()
            c.on_complete(session, message.complete)
        elif body == "fail":
            c.on_fail(session, message.fail)
        elif body == "batch":
            # One commit for every completion in the batch (they are published only once
            # this returns, so no one sees a result that is not stored).
            with c.store.transaction():
                for inner in message.batch.messages:
                    if inner.WhichOneof("body") != "batch":
                        self._handle(session, inner)

    async def _read(
        self, session: WorkerSession, request_iterator: AsyncIterator[pb.WorkerMessage]
    ) -> None:
        try:
            async for message in request_iterator:
                self._handle(session, message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("worker %s session failed", session.name)
        finally:
            session.outbox.put_nowait(None)


async def create_server(
    coordinator: Coordinator,
    listen: str = "127.0.0.1:0",
    *,
    guard: GuardInterceptor | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server (not yet started) for ``coordinator``, and the port it bound."""
    swarm = coordinator.settings.swarm
    server = grpc.aio.server(
        interceptors=[guard or GuardInterceptor(swarm.token, swarm.allowed_hosts)],
        options=server_options(coordinator.config.max_message_bytes),
        maximum_concurrent_rpcs=None,
    )
    pb_grpc.add_SwarmCoordinatorServicer_to_server(CoordinatorServicer(coordinator), server)
    pb_grpc.add_SwarmWorkerServicer_to_server(WorkerServicer(coordinator), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in ("", "swarm.v1.SwarmCoordinator", "swarm.v1.SwarmWorker"):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    port = bind(server, listen, swarm)
    host = listen.rsplit(":", 1)[0]
    coordinator.address = f"{host}:{port}"
    return server, port
