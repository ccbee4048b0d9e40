"""The coordinator's core: a task's life from acceptance to its one final result.

Every accepted task is committed to SQLite before SubmitTask returns; on restart unfinished
tasks go back to the queue. A worker's lease lasts as long as its session and its heartbeats:
when either stops, its tasks go back to the queue for another worker. A task's result is
applied at most once: only the worker holding the current attempt's lease can finish it.

The other jobs live next door: admission (checks before acceptance), scheduler (who runs
what), queues, sessions, results, the local fallback, blobs, status, and the gRPC servicers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable

import grpc

from swarm_lsp.dispatch.coordinator import activity, intake, scheduler, status
from swarm_lsp.dispatch.coordinator.blobs import BlobService
from swarm_lsp.dispatch.coordinator.bookkeeping import StoreKeeper
from swarm_lsp.dispatch.coordinator.fallback import CoordinatorTokens, LocalWorker
from swarm_lsp.dispatch.coordinator.fencing import Epochs
from swarm_lsp.dispatch.coordinator.identity import Identities
from swarm_lsp.dispatch.coordinator.latency import ServiceEstimates, identity_of
from swarm_lsp.dispatch.coordinator.model import (
    DEFAULT_CONTEXT_BYTES,
    ActiveTask,
    CoordinatorConfig,
    RequestError,
    WorkerSession,
    blobs_of,
)
from swarm_lsp.dispatch.coordinator.queues import TaskQueues
from swarm_lsp.dispatch.coordinator.results import ResultLog, final_result
from swarm_lsp.dispatch.coordinator.sessions import SessionTable
from swarm_lsp.dispatch.credentials import ANONYMOUS, TABLE_FILE, Principal, TokenTable
from swarm_lsp.dispatch.failover import FAILOVER
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore
from swarm_lsp.dispatch.store import TaskRecord, TaskStore, now_ms

log = logging.getLogger(__name__)


RECOVERY_GRACE_MS = 5000
LOCAL_RETRY_S = 5.0  # a role the local fallback gave back is offered to it again after this


def deadline_message(record: TaskRecord) -> str:
    """Why a task was stopped at its deadline: the route's timeout, or the client's own."""
    allowed = record.deadline_ms - record.submitted_ms
    timeout = int(record.route.get("timeout_ms", 0))
    if allowed == timeout:
        return f"the task's deadline passed (the route's {timeout} ms timeout)"
    return (
        f"the task's deadline passed ({allowed} ms after it was submitted: the deadline its "
        f"client set; the route's timeout is {timeout} ms)"
    )


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
        self._local_held_off: set[str] = set()
        # Recovered tasks of mesh clients, queued only when their client watches them again.
        self.held: set[str] = set()
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
            self._stop_task(
                active, "FAILED", "store failure", "the task store could not commit the task"
            )

    # -- scheduling ------------------------------------------------------------------------

    def local_if_allowed(self) -> WorkerSession | None:
        """The local fallback session, unless it must still wait after a restart."""
        if self.local is None or time.monotonic() < self._local_fallback_after:
            return None
        return self.local

    def schedule(self, role: str) -> None:
        """Assign queued tasks of ``role`` while a matching runner has a free slot."""
        local = None if role in self._local_held_off else self.local_if_allowed()
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
            ),
            attempt=record.attempt,
            role=record.role,
            deadline_ms=record.deadline_ms,
            epoch=active.epoch,
        )
        runner.send(pb.CoordinatorMessage(lease=lease))

    # -- results ---------------------------------------------------------------------------

    def _current_lease(
        self, session: WorkerSession, task_id: str, attempt: int, epoch: int, what: str = ""
    ) -> ActiveTask | None:
        """The task if ``session`` holds its current lease (attempt and epoch), else None.

        A refused completion or failure (``what``) of a task that is still live under another
        lease is logged: it comes from a fenced-off or superseded lease.
        """
        active = self.active.get(task_id)
        if (
            session.running.get(task_id) != attempt
            or active is None
            or active.record.state != "RUNNING"
            or active.record.attempt != attempt
            or active.epoch != epoch
        ):
            if what and active is not None and active.epoch != epoch:
                log.warning(
                    "refused a %s of task %s from %s: epoch %d is not the current lease's (%s)",
                    what,
                    task_id,
                    session.name,
                    epoch,
                    active.epoch,
                )
            return None
        return active

    def follow(self, task_id: str, queue: asyncio.Queue[pb.TaskResult | None]) -> None:
        """Send ``task_id``'s results so far, then every new one, to ``queue``.

        A recovered task held for its client (``held``) is queued now: its client came back.
        """
        active = self.active.get(task_id)
        if active is not None and task_id in self.held:
            self.held.discard(task_id)
            self.queues.push(active)
            self.schedule(active.record.role)
        self.results.follow(task_id, active, self.store, queue)

    def finished_results(self, task_id: str) -> list[pb.TaskResult]:
        """Every result of a task that finished recently (empty if not remembered)."""
        return self.results.finished(task_id)

    def on_partial(self, session: WorkerSession, message: pb.PartialResult) -> None:
        active = self._current_lease(session, message.task_id, message.attempt, message.epoch)
        if active is None:
            return
        active.sequence += 1
        if message.percentage >= 0:
            active.percentage = message.percentage
        text, data = message.text, message.data
        size = len(text) + len(data)
        if size > self.max_result_bytes:
            text, data = f"(a partial result of {size} bytes was dropped: too large)", b""
        self.results.publish(
            active,
            pb.TaskResult(
                task_id=message.task_id,
                kind=message.kind or pb.TaskResult.PARTIAL,
                text=text,
                data=data,
                sequence=active.sequence,
                attempt=message.attempt,
                worker=session.name,
                fallback=active.record.fallback,
                percentage=message.percentage,
                state=pb.RUNNING,
                eta_ms=activity.eta_ms(self, active, active.percentage),
            ),
        )

    def release(
        self, session: WorkerSession, task_id: str, attempt: int, epoch: int | None = None
    ) -> None:
        """Free ``session``'s slot for ``task_id`` (not for a message from another lease)."""
        active = self.active.get(task_id)
        if (
            epoch is not None
            and active is not None
            and active.epoch != epoch
            and active.record.state == "RUNNING"
            and active.record.attempt == attempt
        ):
            return  # the session's current lease of this task is still running
        if session.running.get(task_id) == attempt:
            del session.running[task_id]
            session.leased_at.pop(task_id, None)

    def on_complete(self, session: WorkerSession, message: pb.CompleteRequest) -> None:
        active = self._current_lease(
            session, message.task_id, message.attempt, message.epoch, "completion"
        )
        self.release(session, message.task_id, message.attempt, message.epoch)
        if active is not None:
            session.completed += 1
            record = active.record
            elapsed = max(1, now_ms() - record.started_ms)
            if not session.local:
                self.estimates.completed(
                    identity_of(session),
                    record.role,
                    (time.monotonic() - active.leased_at) * 1000,
                    float(message.run_ms),
                )
            previous = self.avg_ms.get(record.role)
            self.avg_ms[record.role] = (
                elapsed if previous is None else 0.8 * previous + 0.2 * elapsed
            )
            size = len(message.text) + len(message.data)
            if size > self.max_result_bytes:
                self._finish(
                    active,
                    "FAILED",
                    error_code="RESOURCE_EXHAUSTED",
                    error_message=f"the result is {size} bytes, more than the coordinator "
                    f"accepts ({self.max_result_bytes}, max_result_bytes)",
                )
            else:
                self._finish(
                    active,
                    "SUCCEEDED",
                    text=message.text,
                    data=message.data,
                    stats=dict(message.stats),
                )
        self.schedule_roles(session.roles)

    def on_fail(self, session: WorkerSession, message: pb.FailRequest) -> None:
        active = self._current_lease(
            session, message.task_id, message.attempt, message.epoch, "failure"
        )
        self.release(session, message.task_id, message.attempt, message.epoch)
        if active is not None:
            if message.retryable and session.local:
                self._hold_off_local(active, message.message)
            elif message.retryable:
                self._requeue(active, f"{session.name} gave it back: {message.message}")
            else:
                code = message.code or "INTERNAL"
                state = {"CANCELLED": "CANCELLED", "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED"}.get(
                    code, "FAILED"
                )
                self._finish(active, state, error_code=code, error_message=message.message)
        self.schedule_roles(session.roles)

    def _hold_off_local(self, active: ActiveTask, reason: str) -> None:
        """The local fallback gave a task back: another process on this machine (a worker
        whose session ended a moment ago, say) holds what it needs. The task waits for that
        worker, not counted as a lost runner; the fallback gets no task of the role until a
        worker registers or goes (the holder back, or gone and its hold with it), or
        LOCAL_RETRY_S pass (a holder outside the swarm, such as a one-shot CLI run)."""
        role = active.record.role
        self._local_held_off.add(role)
        asyncio.get_running_loop().call_later(LOCAL_RETRY_S, self._retry_local, role)
        self._requeue(active, f"the local fallback gave it back: {reason}", lost=False)

    def _retry_local(self, role: str) -> None:
        if role in self._local_held_off:
            self._local_held_off.discard(role)
            self.schedule(role)

    def _requeue(self, active: ActiveTask, reason: str, *, lost: bool = True) -> None:
        """Back to the queue after losing its runner; a task that keeps losing them fails.

        Only losses while this coordinator runs count: a coordinator restart is not the
        task's fault, so a task survives any number of them.
        """
        record = active.record
        active.losses += lost
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
        active.percentage = -1
        self.store.update(
            record.id,
            **{
                **self.keeper.start_fields(record.id),
                "state": "QUEUED",
                "worker": "",
                "fallback": "",
            },
        )
        active.sequence += 1
        self.results.publish(
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
        self.queues.push(active)

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
        self.queues.discard(active)
        self.held.discard(record.id)
        record.state = state
        record.finished_ms = now_ms()
        record.result_text = text
        record.result_data = data
        record.result_stats = stats or {}
        record.error_code = error_code
        record.error_message = error_message
        record.context = b""  # only a task that may still run needs its context
        self.keeper.added(len(text) + len(data))
        self.store.update(
            record.id,
            **self.keeper.start_fields(record.id),
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
        final = final_result(record, active.sequence)
        self.results.publish(active, final)
        del self.active[record.id]
        if record.manifest or record.context_dict_blob:
            self.blobs.unpin(blobs_of(record))
        self.results.remember(active, final)

    # -- cancel and deadlines --------------------------------------------------------------

    def arm_deadline(self, active: ActiveTask) -> None:
        delay = max(0.0, (active.record.deadline_ms - now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        active.deadline_timer = loop.call_later(delay, self._on_deadline, active.record.id)

    def _on_deadline(self, task_id: str) -> None:
        active = self.active.get(task_id)
        if active is None:
            return
        self._stop_task(active, "DEADLINE_EXCEEDED", "deadline", deadline_message(active.record))

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
            session = self.sessions.holder(record.worker)
            if session is not None:
                # The slot stays taken until the worker says its handler has stopped.
                session.send(
                    pb.CoordinatorMessage(cancel=pb.CancelRequest(task_id=record.id, reason=reason))
                )
        self._finish(active, state, error_code=state, error_message=message)

    # -- workers ---------------------------------------------------------------------------

    def register_worker(
        self, request: pb.RegisterRequest, peer: str, principal: Principal = ANONYMOUS
    ) -> WorkerSession:
        """A new session, unless its identity already has a live one (never evicted).

        A session whose heartbeats stopped for the lease timeout is dead: it goes, and the
        new one takes its place (a worker reconnecting after a cut link).
        """
        session = self.sessions.new_session(
            request, peer, principal, self.config.max_worker_capacity
        )
        now = time.monotonic()
        live = self.sessions.live(session.identity, now, self.config.lease_timeout_ms / 1000)
        if live is not None:
            raise RequestError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"worker {session.name!r} already has a live session (from {live.peer or '?'}, "
                f"last heartbeat {int((now - live.last_heartbeat) * 1000)} ms ago); a second "
                "one is refused until that one ends or misses its heartbeats for "
                f"{self.config.lease_timeout_ms} ms",
            )
        for old in self.sessions.of_identity(session.identity):
            self.drop_worker(old, "its heartbeats stopped; a new session replaced it")
        self.sessions.add(session)
        if session.local:
            self.local = session
            if self.local_worker is not None:
                self.local_worker.registered.set()
        return session

    def start_worker(self, session: WorkerSession) -> None:
        if not session.local:
            self._local_held_off -= session.roles  # it may be the holder, back
        self.schedule_roles(session.roles)

    def on_heartbeat(self, session: WorkerSession, message: pb.Heartbeat) -> None:
        session.last_heartbeat = time.monotonic()
        session.load = message.load
        was_draining = session.draining
        session.draining = message.draining
        if message.rtt_ms > 0:
            self.estimates.round_trip(identity_of(session), float(message.rtt_ms))
        stale = [task_id for task_id in message.running if task_id not in session.running]
        # Every heartbeat is answered: the worker's fence timer runs on these answers.
        session.send(
            pb.CoordinatorMessage(
                heartbeat_ack=pb.HeartbeatAck(cancel=stale, sequence=message.sequence)
            )
        )
        # A lease the worker no longer lists, though it has had time to start it, ended
        # without a report (a worker bug, a crashed handler): free the slot and retry.
        listed = set(message.running)
        started_before = session.last_heartbeat - self.config.lease_timeout_ms / 1000
        lost = [
            task_id
            for task_id, leased in session.leased_at.items()
            if task_id not in listed and leased < started_before
        ]
        for task_id in lost:
            self._lose(session, task_id, "it stopped running the task without a report")
        if lost or (was_draining and not session.draining):
            self.schedule_roles(session.roles)

    def _lose(self, session: WorkerSession, task_id: str, reason: str, hold: float = 0.0) -> None:
        """``session`` no longer runs ``task_id``: free its slot, requeue the task.

        ``hold`` (seconds): requeue only then (fencing: the worker may still be stopping it).
        """
        attempt = session.running.pop(task_id, None)
        session.leased_at.pop(task_id, None)
        active = self.active.get(task_id)
        if (
            attempt is not None
            and active is not None
            and active.record.attempt == attempt
            and active.record.state == "RUNNING"
        ):
            why = f"worker {session.name} lost ({reason})"
            if hold > 0:  # the local worker too: it is a process like any other
                asyncio.get_running_loop().call_later(
                    hold, self._requeue_if_current, task_id, active.epoch, why
                )
            else:
                self._requeue(active, why)

    def drop_worker(self, session: WorkerSession, reason: str) -> None:
        if not self.sessions.remove(session):
            return
        if session is self.local:
            self.local = None
            if self.local_worker is not None:
                self.local_worker.registered.clear()
        session.outbox.put_nowait(None)
        # Fencing: the worker may not know yet that it is lost (a session can end on this side
        # first); it stops its tasks within fence_ms of its last acknowledged heartbeat, so its
        # tasks go to others no sooner than lease_timeout_ms after its last message.
        hold = session.last_heartbeat + self.config.lease_timeout_ms / 1000 - time.monotonic()
        for task_id in list(session.running):
            self._lose(session, task_id, reason, hold=hold)
        if not session.local:
            self._local_held_off -= session.roles  # if it has exited, its hold went with it
        self.schedule_all()

    def _requeue_if_current(self, task_id: str, epoch: int, reason: str) -> None:
        """Requeue a lost worker's task once its fence has passed, unless it ended meanwhile."""
        active = self.active.get(task_id)
        if active is not None and active.epoch == epoch and active.record.state == "RUNNING":
            self._requeue(active, reason)
            self.schedule(active.record.role)

    # -- status and blobs (answers built next door) ----------------------------------------

    def visible(self, task_id: str, principal: Principal) -> bool:
        """Whether ``principal`` may see (read, follow, cancel) the task; False if unknown."""
        active = self.active.get(task_id)
        record = active.record if active is not None else self.store.get(task_id)
        if record is None:
            return False
        return principal.sees_all or record.owner == principal.id

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
