"""The gRPC servicers: thin shells that translate calls into coordinator methods.

``SwarmCoordinator`` is what clients call; ``SwarmWorker`` is what workers dial. Refusals are
:class:`RequestError` mapped to ``context.abort(code, message)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from swarm_lsp.dispatch.coordinator import supersede
from swarm_lsp.dispatch.coordinator.core import Coordinator
from swarm_lsp.dispatch.coordinator.fencing import fence_ms
from swarm_lsp.dispatch.coordinator.model import RequestError, WorkerSession
from swarm_lsp.dispatch.coordinator.results import final_result, not_found
from swarm_lsp.dispatch.credentials import Principal
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import GuardInterceptor, bind, server_options

log = logging.getLogger(__name__)

MAX_BATCH_TASKS = 1000

_BATCH_LIMIT = 256
_NOT_STORED = "the task store could not commit the task; try again"
_STORE_FAILED = (
    "the coordinator's task store could not commit: it is stopping (a restart recovers its tasks)"
)
_END = object()


class Batches:
    """Messages from a queue (None ends it), in batches of what is ready at once.

    A batch stays within a count and a byte budget (big results or leases go in batches of
    their own), so no reply exceeds the message cap because several were ready together.
    """

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        max_bytes: int,
        durable: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.queue = queue
        self.max_bytes = max_bytes
        self.durable = durable  # awaited before a batch goes out: nothing is sent unstored
        self._carry: Any = None

    async def next(self) -> list[Any] | None:
        """The next batch (at least one message), or None at the end."""
        first = self._carry if self._carry is not None else await self.queue.get()
        self._carry = None
        if first is None or first is _END:
            return None
        if self.queue.empty():
            await asyncio.sleep(0)  # let what is ready right now join this batch
        items = [first]
        size = first.ByteSize()
        while len(items) < _BATCH_LIMIT and not self.queue.empty():
            item = self.queue.get_nowait()
            if item is None:
                self._carry = _END
                break
            item_size = item.ByteSize()
            if size + item_size > self.max_bytes:
                self._carry = item
                break
            items.append(item)
            size += item_size
        if self.durable is not None and not await self.durable():
            # The store failed (fail-stop): what these say was rolled back; none goes out.
            raise RequestError(grpc.StatusCode.UNAVAILABLE, _STORE_FAILED)
        return items


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: RequestError) -> None:
    await context.abort(err.code, str(err))


async def _durable(c: Coordinator, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """Wait for the group commit; the call fails if it did (nothing unstored goes out)."""
    if not await c.durable():
        await context.abort(grpc.StatusCode.UNAVAILABLE, _STORE_FAILED)


def _no_task(task_id: str) -> RequestError:
    # The same answer for a task that does not exist and one that is someone else's.
    return RequestError(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")


class CoordinatorServicer(pb_grpc.SwarmCoordinatorServicer):
    """What clients call. A client sees only its own tasks; an operator sees all."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def _submitter(self, context: Any) -> Principal:
        principal = self.c.identities.principal(context)
        if not principal.can_submit:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.kind} credential ({principal.id}) cannot submit tasks",
            )
        return principal

    async def _reader(self, context: Any, task_id: str) -> Principal:
        principal = self.c.identities.principal(context)
        if not self.c.visible(task_id, principal):
            await _abort(context, _no_task(task_id))
        return principal

    async def SubmitTask(self, request: pb.Task, context: Any) -> pb.TaskReceipt:
        principal = await self._submitter(context)
        try:
            receipt = self.c.submit(request, principal.id)
            if not await self.c.durable():
                raise RequestError(grpc.StatusCode.UNAVAILABLE, _NOT_STORED)
            return receipt
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover - abort raises

    async def SubmitTasks(self, request: pb.TaskBatch, context: Any) -> pb.SubmitOutcomes:
        principal = await self._submitter(context)
        if len(request.tasks) > MAX_BATCH_TASKS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_BATCH_TASKS} tasks per batch"
            )
        return await self._stored(self.c.submit_many(request.tasks, principal.id))

    async def _stored(self, outcomes: pb.SubmitOutcomes) -> pb.SubmitOutcomes:
        """``outcomes`` once their tasks are committed; every receipt an error if that failed."""
        if await self.c.durable():
            return outcomes
        return pb.SubmitOutcomes(
            outcomes=[
                o
                if o.error_code
                else pb.SubmitOutcome(error_code="UNAVAILABLE", error_message=_NOT_STORED)
                for o in outcomes.outcomes
            ]
        )

    async def SubmitStream(
        self, request_iterator: AsyncIterator[pb.SubmitStreamRequest], context: Any
    ) -> AsyncIterator[pb.SubmitStreamReply]:
        principal = await self._submitter(context)
        async for request in request_iterator:
            if len(request.tasks) != len(request.request_ids):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "request_ids and tasks differ in length"
                )
            if len(request.tasks) > MAX_BATCH_TASKS:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"at most {MAX_BATCH_TASKS} tasks per message"
                )
            outcomes = await self._stored(self.c.submit_many(request.tasks, principal.id))
            yield pb.SubmitStreamReply(request_ids=request.request_ids, outcomes=outcomes.outcomes)

    async def GetTaskStatus(self, request: pb.TaskId, context: Any) -> pb.TaskStatus:
        await self._reader(context, request.id)
        await _durable(self.c, context)
        try:
            return self.c.task_status(request.id)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover

    async def StreamResults(self, request: pb.TaskId, context: Any) -> AsyncIterator[pb.TaskResult]:
        await self._reader(context, request.id)
        await _durable(self.c, context)  # nothing said about a task before it is stored
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
            yield final_result(record)
            return
        queue: asyncio.Queue[pb.TaskResult] = asyncio.Queue()
        history = list(active.history)
        active.subscribers.add(queue)
        try:
            for result in history:
                yield result
            while True:
                result = await queue.get()
                await _durable(self.c, context)
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
        principal = self.c.identities.principal(context)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    for task_id in request.task_ids:
                        if not self.c.visible(task_id, principal):
                            out.put_nowait(not_found(task_id))
                            continue
                        followed.add(task_id)
                        self.c.follow(task_id, out)
            except (grpc.aio.AioRpcError, grpc.aio.AbortError, asyncio.CancelledError):
                pass
            finally:
                out.put_nowait(None)

        reader = asyncio.create_task(read())
        batches = Batches(out, self.c.config.max_message_bytes // 2, self.c.durable)
        try:
            while (results := await batches.next()) is not None:
                yield pb.WatchResponse(results=results)
        except RequestError as err:
            await _abort(context, err)
        finally:
            reader.cancel()
            for task_id in followed:
                active = self.c.active.get(task_id)
                if active is not None:
                    active.subscribers.discard(out)

    async def CancelTask(self, request: pb.TaskId, context: Any) -> pb.Empty:
        await self._reader(context, request.id)
        try:
            self.c.cancel(request.id)
        except RequestError as err:
            await _abort(context, err)
        await _durable(self.c, context)
        return pb.Empty()

    async def SupersedeTask(self, request: pb.SupersedeRequest, context: Any) -> pb.SupersedeReply:
        """A mesh peer accepted a task that replaces this peer's copy (coordinator/supersede)."""
        try:
            reply = supersede.answer(self.c, request, self.c.identities.principal(context))
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover - abort raises
        await _durable(self.c, context)
        return reply

    async def GetSwarmStatus(self, request: pb.SwarmStatusRequest, context: Any) -> pb.SwarmStatus:
        principal = self.c.identities.principal(context)
        owner = None if principal.sees_all else principal.id
        return self.c.swarm_status(min(max(request.recent, 0), 500), owner)

    async def HasBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobRefs:
        await self._submitter(context)
        try:
            return self.c.missing_blobs(request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover

    async def PutBlobs(self, request: pb.BlobBatch, context: Any) -> pb.Empty:
        principal = await self._submitter(context)
        try:
            await asyncio.to_thread(self.c.put_blobs, request, principal.id)  # zstd, disk
        except RequestError as err:
            await _abort(context, err)
        return pb.Empty()

    async def GetBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobBatch:
        principal = self.c.identities.principal(context)
        if not principal.sees_all:  # blobs are other clients' files: workers fetch theirs
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.kind} credential ({principal.id}) cannot fetch blobs",
            )
        try:
            return await asyncio.to_thread(self.c.get_blobs, request)
        except RequestError as err:
            await _abort(context, err)
            raise  # pragma: no cover


class WorkerServicer(pb_grpc.SwarmWorkerServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def GetBlobs(self, request: pb.BlobRefs, context: Any) -> pb.BlobBatch:
        principal = self.c.identities.principal(context)
        if not principal.can_work:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.kind} credential ({principal.id}) cannot fetch a worker's blobs",
            )
        if principal.fixed_name or principal.source == "local":
            # A worker with its own credential fetches only what its leased tasks name.
            allowed = self.c.leased_blobs(principal.id)
            stray = next((h for h in request.hashes if h not in allowed), None)
            if stray is not None:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"blob {stray[:12]}… is not part of a task leased to {principal.id}",
                )
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
            principal = self.c.identities.principal(context)
            session = self.c.register_worker(first.register, context.peer(), principal)
        except RequestError as err:
            await _abort(context, err)
            return
        yield pb.CoordinatorMessage(
            registered=pb.Registered(
                worker_id=session.id,
                heartbeat_interval_ms=self.c.config.heartbeat_interval_ms,
                lease_timeout_ms=self.c.config.lease_timeout_ms,
                max_result_bytes=self.c.max_result_bytes,
                fence_ms=fence_ms(self.c.config.lease_timeout_ms),
            )
        )
        reader = asyncio.create_task(self._read(session, request_iterator))
        self.c.start_worker(session)
        batches = Batches(session.outbox, self.c.config.max_message_bytes // 2, self.c.durable)
        try:
            while (messages := await batches.next()) is not None:
                if len(messages) == 1:
                    yield messages[0]
                else:
                    yield pb.CoordinatorMessage(batch=pb.CoordinatorBatch(messages=messages))
        except RequestError as err:
            await _abort(context, err)
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
        except (grpc.aio.AioRpcError, grpc.aio.AbortError, asyncio.CancelledError):
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
        interceptors=[
            guard
            or GuardInterceptor(swarm.token, swarm.allowed_hosts, tokens=coordinator.token_check)
        ],
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
