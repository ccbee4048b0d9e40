"""The coordinator's core: its state, start-up and recovery, and handing tasks to runners.

Every accepted task is committed to SQLite before SubmitTask returns; on restart unfinished
tasks go back to the queue. A worker's lease lasts as long as its session and its heartbeats:
when either stops, its tasks go back to the queue for another worker. A task's result is
applied at most once: only the worker holding the current attempt's lease can finish it.

The other jobs live next door: intake and admission (checks before acceptance), scheduler
(who runs what), outcomes (what becomes of a lease: results, requeue, the final state,
deadlines, cancel), worker_events (registration, heartbeats, lost workers), queues,
sessions, results, the local fallback, blobs, status, and the gRPC servicers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable

from swarm_lsp.dispatch.coordinator import intake, outcomes, scheduler, status, worker_events
from swarm_lsp.dispatch.coordinator.blobs import BlobService
from swarm_lsp.dispatch.coordinator.bookkeeping import StoreKeeper
from swarm_lsp.dispatch.coordinator.fallback import CoordinatorTokens, LocalWorker
from swarm_lsp.dispatch.coordinator.fencing import Epochs
from swarm_lsp.dispatch.coordinator.identity import Identities
from swarm_lsp.dispatch.coordinator.latency import ServiceEstimates
from swarm_lsp.dispatch.coordinator.model import (
    DEFAULT_CONTEXT_BYTES,
    ActiveTask,
    CoordinatorConfig,
    WorkerSession,
    blobs_of,
)
from swarm_lsp.dispatch.coordinator.queues import TaskQueues
from swarm_lsp.dispatch.coordinator.results import ResultLog
from swarm_lsp.dispatch.coordinator.sessions import SessionTable
from swarm_lsp.dispatch.coordinator.supersede import Supersedes
from swarm_lsp.dispatch.credentials import ANONYMOUS, TABLE_FILE, Principal, TokenTable
from swarm_lsp.dispatch.failover import FAILOVER
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore
from swarm_lsp.dispatch.store import TaskStore, now_ms

log = logging.getLogger(__name__)


RECOVERY_GRACE_MS = 5000


class Coordinator:
    """Task routing and bookkeeping; the gRPC servicers are thin shells over it."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.routing = config.routing
        self.settings = config.settings
        self.max_context_bytes = config.max_context_bytes or min(
            DEFAULT_CONTEXT_BYTES, self.settings.context.max_decompressed_bytes
        )
        self.max_result_bytes = config.max_result_bytes or config.max_message_bytes // 4
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = TaskStore(config.state_dir / "tasks.sqlite3")
        # Set when a group commit fails (fail-stop, see store): the process serving this
        # coordinator stops and exits non-zero; a restart recovers from the store.
        self.failed = asyncio.Event()
        self.store.on_failure = self.failed.set
        self.keeper = StoreKeeper(
            self.store,
            max_bytes=config.max_store_bytes,
            keep_finished_ms=config.keep_finished_ms,
        )
        self.blobs = BlobStore(config.state_dir / "blobs", max_bytes=config.max_blob_store_bytes)
        self.tokens = TokenTable(config.tokens_file or config.state_dir / TABLE_FILE)
        local_token = secrets.token_urlsafe(32)
        self.local_worker = (
            LocalWorker(config.state_dir, config.local_capacity, local_token)
            if config.local_fallback
            else None
        )
        # What the guard accepts besides the shared token: issued tokens, the local worker's.
        self.token_check = CoordinatorTokens(self.tokens, local_token)
        self.identities = Identities(self.settings.swarm.token, self.tokens, local_token)
        self.blob_service = BlobService(
            self.blobs,
            max_message_bytes=config.max_message_bytes,
            max_client_bytes=config.max_client_blob_bytes,
        )
        self.address = ""
        self.started = time.monotonic()
        self.sessions = SessionTable()
        self.workers = self.sessions.workers  # session id -> session
        self.active: dict[str, ActiveTask] = {}
        self.queues = TaskQueues()
        self.results = ResultLog()
        self.avg_ms: dict[str, float] = {}  # role -> moving average of run time
        self.epochs = Epochs(config.state_dir)  # lease fencing tokens (see fencing)
        self.estimates = ServiceEstimates()  # per worker identity (see latency)
        self.local: WorkerSession | None = None  # the local fallback worker's session
        self._local_fallback_after = 0.0
        # Roles whose tasks the local fallback gave back (another process on this machine
        # holds what they need, such as a workspace index): it gets none of them until a worker
        # comes or goes, or LOCAL_RETRY_S pass.
        self.local_held_off: set[str] = set()
        # Recovered tasks of mesh clients, queued only when their client watches them again.
        self.held: set[str] = set()
        # New copies of tasks resubmitted from another peer: its copy is stopped first.
        self.supersedes = Supersedes(self)
        # The addresses of the live peers in this node's view (set by ``swarm-lsp node``):
        # a new copy whose old owner is gone asks their result journals (journal_ask).
        self.mesh_peers: Callable[[], list[str]] = list
        self._reaper: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover unfinished tasks from the store and start the lease reaper.

        After a restart with unfinished tasks, the workers that held them are expected back
        within moments (they reconnect with backoff): local fallback waits a grace period so
        the coordinator does not grab their work first.
        """
        self.store.group_commits(asyncio.get_running_loop())
        self.store.prune(now_ms() - self.config.keep_finished_ms)
        recovered = self.store.unfinished()
        if recovered:
            grace = max(self.config.lease_timeout_ms, RECOVERY_GRACE_MS) / 1000
            self._local_fallback_after = time.monotonic() + grace
            asyncio.get_running_loop().call_later(grace, self.schedule_all)
        for record in recovered:
            if record.state == "RUNNING":
                record.state = "QUEUED"
                record.worker = ""
                record.fallback = ""
                self.store.update(record.id, state="QUEUED", worker="", fallback="")
            active = ActiveTask(record)
            # Followers skip results whose (attempt, sequence) they have had, and the attempt
            # stored may be one behind (starts are written in batches): number this
            # incarnation's results above any a previous one can have used.
            active.sequence = now_ms() * 1000
            self.active[record.id] = active
            self.blobs.pin(blobs_of(record))
            self.arm_deadline(active)
            if record.metadata.get(FAILOVER):
                # Its client may have resubmitted it to another peer while this one was
                # down: it runs only if the client comes back for it (dispatch/failover.py).
                self.held.add(record.id)
            else:
                self.queues.push(active)
        self.schedule_all()
        self._reaper = asyncio.create_task(self._reap())
        self._flusher = asyncio.create_task(self.keeper.flush_forever())
        if self.local_worker is not None and self.address:
            await self.local_worker.start(self.address)

    async def local_worker_ready(self, timeout: float = 30.0) -> bool:
        """Wait until the local fallback worker has registered (True), or give up (False)."""
        if self.local_worker is None or self.local_worker.proc is None:
            return False
        return await self.local_worker.wait_registered(timeout)

    async def stop(self) -> None:
        if self.local_worker is not None:
            await self.local_worker.stop()
        await self.supersedes.stop()
        for task in (self._reaper, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.keeper.save()
        for active in list(self.active.values()):
            if active.deadline_timer is not None:
                active.deadline_timer.cancel()
        for session in self.sessions:
            session.outbox.put_nowait(None)
        self.store.close()

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
            for session in self.sessions.expired(now, timeout):
                log.warning("worker %s missed its heartbeats; its leases go", session.name)
                self.drop_worker(session, "missed heartbeats")

    # -- submit ----------------------------------------------------------------------------

    def submit(self, task: pb.Task, owner: str = "") -> pb.TaskReceipt:
        """Accept one task (committed before this returns), route it, answer with a receipt.

        ``owner``: the submitting credential's identity; only it (and operators) see the task.
        """
        return intake.submit(self, task, owner)

    def submit_many(self, tasks: Iterable[pb.Task], owner: str = "") -> pb.SubmitOutcomes:
        """Accept several tasks with one commit, then route them; a receipt or error each."""
        return intake.submit_many(self, tasks, owner)

    async def durable(self) -> bool:
        """Wait until what has been written so far is committed (False: the commit failed).

        Writes share one commit per event-loop pass; whatever tells the outside world about
        them (a receipt, a lease, a result) waits for it first.
        """
        return await self.store.durable()

    def unstored(self, active: ActiveTask, committed: bool) -> None:
        """After a group commit: a task whose insert did not commit was never accepted."""
        if not committed and self.active.get(active.record.id) is active:
            outcomes.stop_task(
                self, active, "FAILED", "store failure", "the task store could not commit the task"
            )

    # -- scheduling ------------------------------------------------------------------------

    def local_if_allowed(self) -> WorkerSession | None:
        """The local fallback session, unless it must still wait after a restart."""
        if self.local is None or time.monotonic() < self._local_fallback_after:
            return None
        return self.local

    def schedule(self, role: str) -> None:
        """Assign queued tasks of ``role`` while a matching runner has a free slot."""
        local = None if role in self.local_held_off else self.local_if_allowed()
        for active in self.queues.waiting(role, self.active.get):
            rank = scheduler.rank_for(active.record, self.estimates.get, self.avg_ms.get(role, 0.0))
            runner = scheduler.choose(active.record, self.sessions, local, rank=rank)
            if runner is None:
                return
            self.queues.discard(active)
            self._assign(active, runner)

    def schedule_roles(self, roles: Iterable[str]) -> None:
        for role in roles:
            self.schedule(role)

    def schedule_all(self) -> None:
        self.schedule_roles(self.queues.roles())

    def _assign(self, active: ActiveTask, runner: WorkerSession) -> None:
        record = active.record
        record.attempt += 1
        record.state = "RUNNING"
        record.worker = runner.name
        record.fallback = "local" if runner.local else ""
        record.started_ms = now_ms()
        # Not needed for durability (RUNNING goes back to QUEUED on restart): written in
        # batches by the flusher, or with the task's next state change, whichever is first.
        self.keeper.started(record)
        runner.running[record.id] = record.attempt
        runner.leased_at[record.id] = time.monotonic()
        active.epoch = self.epochs.next()
        active.leased_at = time.monotonic()
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
                idempotency_key=record.idempotency_key or "",
            ),
            attempt=record.attempt,
            role=record.role,
            deadline_ms=record.deadline_ms,
            epoch=active.epoch,
            owner=record.owner,
        )
        runner.send(pb.CoordinatorMessage(lease=lease))

    # -- leases and their outcomes (outcomes), worker sessions (worker_events) ------------

    def follow(self, task_id: str, queue: asyncio.Queue[pb.TaskResult | None]) -> None:
        """Send ``task_id``'s results so far, then every new one, to ``queue``.

        A recovered task held for its client (``held``) is queued now: its client came back.
        """
        active = self.active.get(task_id)
        if active is not None and task_id in self.held:
            self.held.discard(task_id)
            self.supersedes.enqueue(active)
            self.schedule(active.record.role)
        self.results.follow(task_id, active, self.store, queue)

    def finished_results(self, task_id: str) -> list[pb.TaskResult]:
        """Every result of a task that finished recently (empty if not remembered)."""
        return self.results.finished(task_id)

    def on_partial(self, session: WorkerSession, message: pb.PartialResult) -> None:
        outcomes.on_partial(self, session, message)

    def release(
        self, session: WorkerSession, task_id: str, attempt: int, epoch: int | None = None
    ) -> None:
        """Free ``session``'s slot for ``task_id`` (not for a message from another lease)."""
        outcomes.release(self, session, task_id, attempt, epoch)

    def on_complete(self, session: WorkerSession, message: pb.CompleteRequest) -> None:
        outcomes.on_complete(self, session, message)

    def on_fail(self, session: WorkerSession, message: pb.FailRequest) -> None:
        outcomes.on_fail(self, session, message)

    def arm_deadline(self, active: ActiveTask) -> None:
        outcomes.arm_deadline(self, active)

    def cancel(self, task_id: str) -> None:
        outcomes.cancel(self, task_id)

    def register_worker(
        self, request: pb.RegisterRequest, peer: str, principal: Principal = ANONYMOUS
    ) -> WorkerSession:
        """A new session, unless its identity already has a live one (never evicted)."""
        return worker_events.register_worker(self, request, peer, principal)

    def start_worker(self, session: WorkerSession) -> None:
        worker_events.start_worker(self, session)

    def on_heartbeat(self, session: WorkerSession, message: pb.Heartbeat) -> None:
        worker_events.on_heartbeat(self, session, message)

    def drop_worker(self, session: WorkerSession, reason: str) -> None:
        worker_events.drop_worker(self, session, reason)

    # -- status and blobs (answers built next door) ----------------------------------------

    def visible(self, task_id: str, principal: Principal) -> bool:
        """Whether ``principal`` may see (read, follow, cancel) the task; False if unknown."""
        active = self.active.get(task_id)
        if active is not None:
            owner: str | None = active.record.owner
        else:  # finished: a moment ago (in memory), or longer ago (in the store)
            owner = self.results.finished_owner(task_id)
            if owner is None:
                record = self.store.get(task_id)
                if record is None:
                    return False
                owner = record.owner
        return principal.sees_all or owner == principal.id

    def leased_blobs(self, identity: str) -> set[str]:
        """The blobs that tasks leased to ``identity``'s sessions name."""
        wanted: set[str] = set()
        for session in self.sessions.of_identity(identity):
            for task_id in session.running:
                active = self.active.get(task_id)
                if active is not None:
                    wanted.update(blobs_of(active.record))
        return wanted

    def task_status(self, task_id: str) -> pb.TaskStatus:
        return status.task_status(self, task_id)

    def swarm_status(self, recent: int, owner: str | None = None) -> pb.SwarmStatus:
        return status.swarm_status(self, recent, owner)

    def put_blobs(self, batch: pb.BlobBatch, client: str = "") -> None:
        self.blob_service.put(batch, client)

    def get_blobs(self, refs: pb.BlobRefs) -> pb.BlobBatch:
        return self.blob_service.get(refs)

    def missing_blobs(self, refs: pb.BlobRefs) -> pb.BlobRefs:
        return self.blob_service.missing(refs)
