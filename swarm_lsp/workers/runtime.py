"""The worker runtime: dial the coordinator, register, heartbeat, lease, run, report.

A worker dials out (so it works behind NAT) and keeps one ``SwarmWorker.Connect`` stream per
session. The coordinator pushes leases up to the worker's capacity and cancellations; the
worker streams partial results, completions and failures back, with a heartbeat carrying its
load. When the session breaks, running tasks are stopped (the coordinator has already given
them to another worker) and the worker reconnects with capped, jittered backoff.

Fencing: every heartbeat is acknowledged. A worker that has had no acknowledgement for the
coordinator's ``fence_ms`` (counted from the sending of the last acknowledged heartbeat)
stops every task at once (cancelled, no grace: handlers kill their process groups on
cancellation) and reconnects. The coordinator re-leases a lost worker's tasks no sooner than
its lease timeout after the worker's last message, which is later (see
``swarm_lsp.dispatch.coordinator.fencing``): a task never runs on two workers at once.

Its parts: ``execution`` runs one task, ``fencing`` keeps the heartbeats' clock, ``outbox``
batches what the session sends, ``reconnect`` backs off between sessions, ``health`` serves
the health port, ``blobs`` fetches a snapshot's missing blobs, ``machine_slots`` holds a slot
of the machine's shared capacity while a task runs. Their public names are importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from swarm_lsp import __version__
from swarm_lsp.config import Settings
from swarm_lsp.dispatch.local_token import with_local_token
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.result_journal import ResultJournal, success
from swarm_lsp.dispatch.security import call_metadata, open_channel
from swarm_lsp.dispatch.snapshot import BlobStore
from swarm_lsp.errors import ConfigError, LocalityError, SwarmError, WorkerError
from swarm_lsp.workers.base import RoleHandler
from swarm_lsp.workers.blobs import fetch_blobs
from swarm_lsp.workers.execution import (
    DEFAULT_RESULT_BYTES,
    FetchBlobs,
    Send,
    StreamReporter,
    TaskFailure,
    completion_message,
    execute,
    failure_message,
)
from swarm_lsp.workers.fencing import Contact
from swarm_lsp.workers.health import serve_health
from swarm_lsp.workers.machine_slots import SLOTS_POLL_S, MachineSlots, holding_slot
from swarm_lsp.workers.outbox import BATCH_BYTES, Outbox, outgoing
from swarm_lsp.workers.reconnect import Reconnect, explain

__all__ = [
    "BATCH_BYTES",
    "DEFAULT_RESULT_BYTES",
    "FetchBlobs",
    "Send",
    "StreamReporter",
    "TaskFailure",
    "WorkerRuntime",
    "execute",
]

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 2.0
SESSION_TIMEOUT_S = 24 * 3600.0  # a session is long-lived; it still has a deadline
REGISTER_TIMEOUT_S = 10.0


class WorkerRuntime:
    """One worker process's connection to its coordinator, and the tasks it runs."""

    def __init__(
        self,
        *,
        coordinator: str,
        roles: Sequence[str],
        settings: Settings,
        capacity: int = 2,
        name: str = "",
        host: str = "",
        model_sizes: Sequence[str] = (),
        cache_dir: Path | None = None,
        handlers: dict[str, RoleHandler] | None = None,
        fallback: bool = False,
        machine_slots: MachineSlots | None = None,
        result_journal: ResultJournal | None = None,
    ) -> None:
        if not roles:
            raise WorkerError("a worker needs at least one role")
        self.coordinator = coordinator
        self.roles = tuple(dict.fromkeys(roles))
        # No token configured: a swarm of one on this loopback port may have left one for us.
        self.settings = with_local_token(settings, coordinator)
        self.capacity = max(1, capacity)
        self.host = host or socket.gethostname()
        self.name = name or f"{self.host}-{os.getpid()}"
        self.model_sizes = tuple(model_sizes)
        self.fallback = fallback  # a coordinator's local fallback (lower preference)
        from swarm_lsp import paths

        root = cache_dir or paths.user_cache_dir() / "worker"
        self.blob_store = BlobStore(root / "blobs")
        self.work_root = root / "tasks" / self.name
        self.handlers = dict(handlers or {})
        self.worker_id = ""
        self.max_result_bytes = DEFAULT_RESULT_BYTES
        self.connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._health_task: asyncio.Task[None] | None = None
        self.sessions = 0
        self._stopping = asyncio.Event()
        self._draining = False
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._outbox: Outbox | None = None
        self._channel: grpc.aio.Channel | None = None
        self._reconnect = Reconnect(coordinator, log)
        self._contact = Contact()  # fencing and round trips, by heartbeat acknowledgements
        self.fenced = 0  # times this worker stopped its tasks for want of the coordinator
        # One capacity for the machine, shared with its other workers (a mesh node's): a task
        # runs while it holds one of the machine's slots (see machine_slots).
        self.machine_slots = machine_slots
        self._elsewhere = 0  # slots the machine's other workers hold, as last told
        self._acknowledged = False  # this session's first heartbeat is (leases start only then)
        self._held: list[pb.LeaseTask] = []  # leases waiting for that acknowledgement
        # A mesh node's worker for another peer: each success is journaled on this machine
        # (fsynced) before it is reported, so it outlives an owner killed before it told anyone.
        self.result_journal = result_journal

    @property
    def rtt_ms(self) -> int:
        """The last acknowledged heartbeat's round trip (0: none yet)."""
        return self._contact.rtt_ms

    def load_handlers(self) -> None:
        """Load every role's handler now, so a missing role fails before we register."""
        from swarm_lsp.workers.registry import load_role

        for role in self.roles:
            if role not in self.handlers:
                handler = load_role(role, self.settings)
                as_fallback = getattr(handler, "as_fallback", None)
                if self.fallback and as_fallback is not None:
                    as_fallback()  # e.g. research: leave shared indexes to other workers
                self.handlers[role] = handler

    # -- lifecycle -------------------------------------------------------------------------

    async def serve_health(self, listen: str) -> tuple[grpc.aio.Server, int]:
        """grpc.health.v1 on ``listen`` (loopback unless TLS is configured).

        SERVING while registered with the coordinator, NOT_SERVING otherwise. Workers dial
        out, so this is the only port a worker opens, and only when asked to.
        """
        server, port, self._health_task = await serve_health(
            listen, self.settings.swarm, self.connected, self._disconnected
        )
        return server, port

    async def run(self) -> None:
        """Serve until stop(): reconnect with backoff whenever the session ends.

        A target the locality guard refuses, or unreadable TLS files, end the worker (retrying
        cannot help); refusals by the coordinator back off up to a minute (see Reconnect).
        """
        self.load_handlers()
        self.work_root.mkdir(parents=True, exist_ok=True)
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    await self._session()
                except (LocalityError, ConfigError):
                    raise
                except (grpc.aio.AioRpcError, SwarmError, OSError) as err:
                    reason, refused, key = await explain(
                        err,
                        self.coordinator,
                        self.settings.swarm,
                        registered=self.connected.is_set(),
                    )
                    delay = self._reconnect.failed(
                        reason, refused=refused, key=key, lasted_s=time.monotonic() - started
                    )
                else:
                    delay = self._reconnect.failed(
                        "the coordinator closed the session", refused=False
                    )
                finally:
                    await self._stop_running("session ended")
                    self.connected.clear()
                    self._disconnected.set()
                if self._stopping.is_set():
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        finally:
            shutil.rmtree(self.work_root, ignore_errors=True)

    async def stop(self, grace: float = 5.0) -> None:
        """Finish running tasks (up to ``grace`` seconds), then close the session."""
        self._draining = True
        self._send_heartbeat()
        tasks = [task for task, _ in self._running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        self._stopping.set()
        if self._outbox is not None:
            self._outbox.put_nowait(None)

    # -- session ---------------------------------------------------------------------------

    async def _session(self) -> None:
        outbox: Outbox = asyncio.Queue()
        self._outbox = outbox
        outbox.put_nowait(
            pb.WorkerMessage(
                register=pb.RegisterRequest(
                    name=self.name,
                    host=self.host,
                    roles=list(self.roles),
                    model_sizes=list(self.model_sizes),
                    capacity=self.capacity,
                    version=__version__,
                    fallback=self.fallback,
                )
            )
        )

        channel = open_channel(self.coordinator, self.settings.swarm)
        self._channel = channel
        heartbeat: asyncio.Task[None] | None = None
        fence: asyncio.Task[None] | None = None
        slots: asyncio.Task[None] | None = None
        fenced = asyncio.Event()
        self._contact.restart()
        try:
            stub = pb_grpc.SwarmWorkerStub(channel)
            call = stub.Connect(
                outgoing(outbox),
                metadata=call_metadata(self.settings.swarm),
                timeout=SESSION_TIMEOUT_S,
            )
            first = await asyncio.wait_for(call.read(), timeout=REGISTER_TIMEOUT_S)
            if first is grpc.aio.EOF or not first.HasField("registered"):
                raise WorkerError("the coordinator did not accept the registration")
            self.worker_id = first.registered.worker_id
            self.max_result_bytes = first.registered.max_result_bytes or DEFAULT_RESULT_BYTES
            interval = max(0.02, first.registered.heartbeat_interval_ms / 1000)
            self.sessions += 1
            self._disconnected.clear()
            self.connected.set()
            self._reconnect.succeeded()
            log.info("registered with %s as %s", self.coordinator, self.worker_id)
            # The session's start is no bound on when the coordinator heard us (the connection
            # may have taken longer than the fence, e.g. through a healing partition), so the
            # fence's clock starts now, and no lease starts before the first heartbeat is
            # acknowledged: from then on the clock runs on acknowledged send times again.
            self._contact.heard_now()
            self._acknowledged = False
            self._send_heartbeat()
            heartbeat = asyncio.create_task(self._heartbeats(interval))
            if self.machine_slots is not None:
                slots = asyncio.create_task(self._watch_slots(self.machine_slots))
            lease_ms = first.registered.lease_timeout_ms or 2000
            fence_s = (first.registered.fence_ms or lease_ms * 7 // 10) / 1000
            fence = asyncio.create_task(self._fence(fence_s, call, fenced))
            try:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        break
                    self._on_message(message)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if fenced.is_set() and (current is None or not current.cancelling()):
                    raise WorkerError(
                        f"no word from the coordinator for {fence_s * 1000:.0f} ms: "
                        "tasks stopped (fenced)"
                    ) from None
                raise
            if fenced.is_set():
                raise WorkerError(
                    f"no word from the coordinator for {fence_s * 1000:.0f} ms: "
                    "tasks stopped (fenced)"
                )
        finally:
            self._held.clear()  # never started: the coordinator takes them back
            self._acknowledged = False
            outbox.put_nowait(None)
            for helper in (heartbeat, fence, slots):
                if helper is not None:
                    helper.cancel()
            self._outbox = None
            self._channel = None
            await channel.close(grace=0.2)

    async def _fence(self, fence_s: float, call: Any, fenced: asyncio.Event) -> None:
        """Stop every task once the coordinator has been silent for ``fence_s``; end the session."""
        await self._contact.silent_for(fence_s)
        fenced.set()
        self.fenced += 1
        log.warning(
            "no word from the coordinator %s for %.0f ms: stopping %d task(s) before it gives "
            "them to another worker, then reconnecting",
            self.coordinator,
            fence_s * 1000,
            len(self._running),
        )
        for runner, cancel in list(self._running.values()):
            cancel.set()
            runner.cancel()
        call.cancel()

    async def _heartbeats(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._send_heartbeat()

    async def _watch_slots(self, slots: MachineSlots) -> None:
        """Tell the coordinator at once when the machine's other workers take or free slots."""
        while True:
            elsewhere = slots.held_elsewhere()
            if elsewhere != self._elsewhere:
                self._elsewhere = elsewhere
                self._send_heartbeat()
            await asyncio.sleep(SLOTS_POLL_S)

    def _send(self, message: pb.WorkerMessage) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    def _send_heartbeat(self) -> None:
        if self._outbox is None:
            return
        sequence = self._contact.next_beat()
        self._send(
            pb.WorkerMessage(
                heartbeat=pb.Heartbeat(
                    load=len(self._running) / self.capacity,
                    running=list(self._running),
                    draining=self._draining,
                    sequence=sequence,
                    rtt_ms=self._contact.rtt_ms,
                    busy_elsewhere=self._elsewhere,
                )
            )
        )

    def _on_ack(self, sequence: int) -> None:
        if not self._contact.acknowledged(sequence):
            return
        if not self._acknowledged:
            self._acknowledged = True
            held, self._held = self._held, []
            for lease in held:
                self._start(lease)

    def _on_message(self, message: pb.CoordinatorMessage) -> None:
        body = message.WhichOneof("body")
        if body == "lease":
            self._start(message.lease)
        elif body == "cancel":
            self._cancel(message.cancel.task_id)
        elif body == "heartbeat_ack":
            self._on_ack(message.heartbeat_ack.sequence)
            for task_id in message.heartbeat_ack.cancel:
                self._cancel(task_id)
        elif body == "batch":
            for inner in message.batch.messages:
                if inner.WhichOneof("body") != "batch":
                    self._on_message(inner)

    # -- tasks -----------------------------------------------------------------------------

    def _start(self, lease: pb.LeaseTask) -> None:
        task_id = lease.task.id
        if not self._acknowledged:
            self._held.append(lease)  # until the session's first heartbeat is acknowledged
            return
        if task_id in self._running:
            return
        cancel = asyncio.Event()
        runner = asyncio.create_task(self._run_lease(lease, cancel))
        self._running[task_id] = (runner, cancel)
        runner.add_done_callback(lambda _t: self._running.pop(task_id, None))

    def _cancel(self, task_id: str) -> None:
        entry = self._running.get(task_id)
        if entry is None:
            return
        runner, cancel = entry
        cancel.set()
        # A handler that ignores its cancel_event is stopped the hard way after a grace period.
        asyncio.get_running_loop().call_later(CANCEL_GRACE_S, runner.cancel)

    async def _stop_running(self, reason: str) -> None:
        entries = list(self._running.values())
        for runner, cancel in entries:
            cancel.set()
            runner.cancel()
        if entries:
            await asyncio.wait([runner for runner, _ in entries], timeout=CANCEL_GRACE_S)

    async def _fetch_blobs(self, hashes: list[str]) -> dict[str, bytes]:
        return await fetch_blobs(self._channel, self.settings, hashes)

    async def _execute(
        self, lease: pb.LeaseTask, handler: RoleHandler, cancel: asyncio.Event
    ) -> tuple[str, bytes, dict[str, str]]:
        return await execute(
            lease,
            handler,
            StreamReporter(self._send, lease.task.id, lease.attempt, lease.epoch),
            cancel_event=cancel,
            max_payload_bytes=self.settings.context.max_decompressed_bytes,
            blob_store=self.blob_store,
            fetch=self._fetch_blobs,
            work_root=self.work_root,
            max_result_bytes=self.max_result_bytes,
        )

    async def _run_lease(self, lease: pb.LeaseTask, cancel: asyncio.Event) -> None:
        handler = self.handlers.get(lease.role)
        try:
            if handler is None:
                raise TaskFailure("FAILED_PRECONDITION", f"this worker has no role {lease.role!r}")
            async with holding_slot(self.machine_slots, cancel):
                started = time.monotonic()
                text, data, stats = await self._execute(lease, handler, cancel)
                run_ms = round((time.monotonic() - started) * 1000)
            if self.result_journal is not None:  # on this machine's disk before the owner hears
                result = success(lease, self.name, text, data, stats)
                await self.result_journal.keep(lease, self.coordinator, result)
        except TaskFailure as failure:
            self._send(
                failure_message(lease, failure.code, str(failure), retryable=failure.retryable)
            )
            return
        except asyncio.CancelledError:
            self._send(failure_message(lease, "CANCELLED", "cancelled"))
            raise
        except Exception as err:  # a bug must fail the task, not leave its lease unanswered
            log.exception("task %s failed", lease.task.id)
            self._send(failure_message(lease, "INTERNAL", f"{type(err).__name__}: {err}"))
            return
        self._send(completion_message(lease, text, data, stats, run_ms))
