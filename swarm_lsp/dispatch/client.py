"""The dispatch client the LSP server uses: submit tasks, follow results, cancel, ask status.

Every call has a deadline and every failure is a :class:`DispatchError` (``raise … from`` the
gRPC error), so a dead or wedged coordinator shows up in the editor as a message, never as a
hung request. ``results()`` rides out a coordinator restart: it re-subscribes until the task's
final result arrives, skipping what it has already yielded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec, tls_probe
from swarm_lsp.dispatch.local_token import with_local_token
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import DEFAULT_MAX_MESSAGE_BYTES, call_metadata, open_channel
from swarm_lsp.dispatch.snapshot import blob_hash, manifest_of
from swarm_lsp.errors import DispatchError, SwarmError

CALL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
RESULTS_RECONNECT_S = 30.0
WATCH_TIMEOUT_S = 24 * 3600.0  # the shared results stream is long-lived; it still has a deadline
_BLOB_BATCH_BYTES = 8 * 1024 * 1024
_COALESCE = True

_KINDS = {
    pb.TaskResult.PARTIAL: "partial",
    pb.TaskResult.PROGRESS: "progress",
    pb.TaskResult.FINAL: "final",
    pb.TaskResult.ERROR: "error",
}
_RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}


class RpcFailure(DispatchError):
    """A coordinator call failed; ``code`` is the gRPC status code name."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _failure(what: str, err: grpc.aio.AioRpcError) -> RpcFailure:
    code = err.code()
    hint = ""
    if code == grpc.StatusCode.UNAVAILABLE:
        hint = " (is the coordinator running? check swarm.coordinator, TLS and the token)"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        hint = " (the coordinator did not answer in time)"
    return RpcFailure(f"{what}: {code.name}: {err.details()}{hint}", code.name)


def _state(value: int) -> str:
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
            state=_state(receipt.state),
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
            state=_state(result.state),
            error_code=result.error_code,
            stats=dict(result.stats),
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
            state=_state(status.state),
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskSummary:
    task_id: str
    type: str
    state: str
    worker: str
    submitted_ms: int
    duration_ms: int
    fallback: str


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
                )
                for m in status.machines
            ),
            queues={q.role: q.depth for q in status.queues},
            queue_depth=status.queue_depth,
            recent=tuple(
                TaskSummary(
                    task_id=t.task_id,
                    type=t.type,
                    state=_state(t.state),
                    worker=t.worker,
                    submitted_ms=t.submitted_ms,
                    duration_ms=t.duration_ms,
                    fallback=t.fallback,
                )
                for t in status.recent
            ),
            counts=dict(status.counts),
            local_roles=tuple(status.local_roles),
            uptime_ms=status.uptime_ms,
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


class DispatchClient:
    """Async client of one coordinator (grpc.aio)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        settings: Settings,
        target: str,
        *,
        call_timeout: float = CALL_TIMEOUT_S,
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.SwarmCoordinatorStub(channel)
        self._metadata = call_metadata(settings.swarm)
        self._timeout = call_timeout
        self._deadlines: dict[str, int] = {}
        self._followers: dict[str, set[asyncio.Queue[pb.TaskResult | BaseException]]] = {}
        self._watch_out: asyncio.Queue[str | None] | None = None
        self._watch_reader: asyncio.Task[None] | None = None
        self._stream_submits = True
        self._submit_out: asyncio.Queue[tuple[int, pb.Task] | None] | None = None
        self._submit_reader: asyncio.Task[None] | None = None
        self._pending_submits: dict[int, asyncio.Future[pb.SubmitOutcome]] = {}
        self._request_ids = itertools.count(1)
        self._dictionaries: dict[str, int] = {}  # blob hash -> zstd id, uploaded already
        self.settings = settings
        self.target = target

    @classmethod
    async def connect(
        cls,
        settings: Settings,
        target: str | None = None,
        *,
        timeout: float = CONNECT_TIMEOUT_S,
        call_timeout: float = CALL_TIMEOUT_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> DispatchClient:
        """Open a channel to ``target`` (default ``swarm.coordinator``) and wait until it is up."""
        address = target or settings.swarm.coordinator
        if not address:
            raise DispatchError(
                "no coordinator configured (swarm.coordinator); start one with `swarm-lsp up`"
            )
        settings = with_local_token(settings, address)
        try:
            channel = open_channel(address, settings.swarm, max_message_bytes=max_message_bytes)
        except SwarmError as err:
            raise DispatchError(f"cannot connect to coordinator {address}: {err}") from err
        try:
            await tls_probe.wait_ready(channel, address, settings.swarm, timeout)
        except TimeoutError as err:
            await channel.close()
            raise DispatchError(
                f"cannot reach coordinator {address} within {timeout:g}s "
                "(is it running? is TLS configured on both sides?)"
            ) from err
        except BaseException:
            await channel.close()
            raise
        return cls(channel, settings, address, call_timeout=call_timeout)

    async def close(self) -> None:
        for out in (self._watch_out, self._submit_out):
            if out is not None:
                out.put_nowait(None)
        for reader in (self._watch_reader, self._submit_reader):
            if reader is not None:
                reader.cancel()
        await self._channel.close(grace=0.5)

    async def __aenter__(self) -> DispatchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- calls -----------------------------------------------------------------------------

    async def upload_snapshot(self, files: Mapping[str, bytes]) -> tuple[dict[str, str], int]:
        """Send only the blobs the coordinator lacks; return (manifest, blobs uploaded)."""
        try:
            manifest = manifest_of(files)
        except SwarmError as err:
            raise DispatchError(f"snapshot: {err}") from err
        by_hash = {digest: files[path] for path, digest in manifest.items()}
        try:
            missing = await self._stub.HasBlobs(
                pb.BlobRefs(hashes=list(by_hash)), metadata=self._metadata, timeout=self._timeout
            )
            batch = pb.BlobBatch()
            size = 0
            for digest in missing.hashes:
                data = codec.compress(by_hash[digest])
                if batch.blobs and size + len(data) > _BLOB_BATCH_BYTES:
                    await self._stub.PutBlobs(batch, metadata=self._metadata, timeout=self._timeout)
                    batch, size = pb.BlobBatch(), 0
                batch.blobs.append(pb.Blob(hash=digest, data=data))
                size += len(data)
            if batch.blobs:
                await self._stub.PutBlobs(batch, metadata=self._metadata, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _failure("uploading the snapshot", err) from err
        return manifest, len(missing.hashes)

    async def submit(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        priority: str = "background",
        complexity: str = "simple",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str = "",
        snapshot: Mapping[str, bytes] | None = None,
        deadline_ms: int = 0,
        task_id: str = "",
        dictionary: bytes | None = None,
    ) -> Receipt:
        """Submit one task; the receipt says where it runs or how long it would wait.

        ``dictionary``: a trained zstd dictionary to compress the payload with (the context
        engine's workspace dictionary); it is uploaded once, as a blob, and workers fetch it
        once into their blob cache.
        """
        manifest: dict[str, str] = {}
        uploaded = 0
        if snapshot:
            manifest, uploaded = await self.upload_snapshot(snapshot)
        dict_id, dict_blob = 0, ""
        if dictionary:
            dict_id, dict_blob, sent = await self._upload_dictionary(dictionary)
            uploaded += sent
        task = pb.Task(
            id=task_id,
            type=type,
            priority=priority,
            context=codec.encode_json(dict(payload or {}), dict_id=dict_id),
            metadata=dict(metadata or {}),
            complexity=complexity,
            deadline_ms=deadline_ms,
            snapshot=pb.SnapshotManifest(files=manifest),
            idempotency_key=idempotency_key,
            context_dict_id=dict_id,
            context_dict_blob=dict_blob,
        )
        return await self.submit_task(task, blobs_uploaded=uploaded)

    async def _upload_dictionary(self, dictionary: bytes) -> tuple[int, str, int]:
        """Register and upload a dictionary (once per client); (zstd id, blob hash, sent)."""
        digest = blob_hash(dictionary)
        known = self._dictionaries.get(digest)
        if known is not None:
            return known, digest, 0
        try:
            dict_id = codec.register_dictionary(dictionary)
        except SwarmError as err:
            raise DispatchError(f"dictionary: {err}") from err
        _, sent = await self.upload_snapshot({"zstd.dict": dictionary})
        self._dictionaries[digest] = dict_id
        return dict_id, digest, sent

    async def submit_many(
        self,
        type: str,
        payloads: Sequence[Mapping[str, Any]],
        *,
        priority: str = "background",
        complexity: str = "simple",
        metadata: Mapping[str, str] | None = None,
    ) -> list[Receipt | RpcFailure]:
        """Submit several tasks of one type in one call (one commit on the coordinator).

        Each entry of the answer is a Receipt, or the RpcFailure that refused that task.
        """
        batch = pb.TaskBatch(
            tasks=[
                pb.Task(
                    type=type,
                    priority=priority,
                    complexity=complexity,
                    context=codec.encode_json(dict(payload)),
                    metadata=dict(metadata or {}),
                )
                for payload in payloads
            ]
        )
        try:
            reply = await self._stub.SubmitTasks(
                batch, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise _failure(f"submitting {len(payloads)} {type!r} tasks", err) from err
        answers: list[Receipt | RpcFailure] = []
        for outcome in reply.outcomes:
            if outcome.HasField("receipt"):
                receipt = Receipt.from_pb(outcome.receipt)
                self._deadlines[receipt.task_id] = receipt.deadline_ms
                answers.append(receipt)
            else:
                answers.append(RpcFailure(outcome.error_message, outcome.error_code))
        return answers

    async def submit_task(
        self, task: pb.Task, *, blobs_uploaded: int = 0, pipelined: bool = True
    ) -> Receipt:
        """Submit a ready-made Task message (the context already compressed).

        By default the submit rides the shared SubmitStream (pipelined: many callers, one
        stream, one commit per burst); ``pipelined=False`` makes one SubmitTask call. Either
        way it has a deadline and fails with a DispatchError, never a hang.
        """
        if pipelined and self._stream_submits:
            receipt = await self._submit_pipelined(task, blobs_uploaded)
            if receipt is not None:
                return receipt
        try:
            reply = await self._stub.SubmitTask(
                task, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise _failure(f"submitting a {task.type!r} task", err) from err
        receipt = Receipt.from_pb(reply, blobs_uploaded)
        self._deadlines[receipt.task_id] = receipt.deadline_ms
        return receipt

    async def _submit_pipelined(self, task: pb.Task, blobs_uploaded: int) -> Receipt | None:
        """Submit over SubmitStream; None when the coordinator does not offer it."""
        out = self._submit_out
        if out is None:
            out = asyncio.Queue()
            self._submit_out = out
            call = self._stub.SubmitStream(
                self._submit_requests(out), metadata=self._metadata, timeout=WATCH_TIMEOUT_S
            )
            self._submit_reader = asyncio.create_task(self._read_submits(call, out))
        request_id = next(self._request_ids)
        future: asyncio.Future[pb.SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._pending_submits[request_id] = future
        out.put_nowait((request_id, task))
        try:
            outcome = await asyncio.wait_for(future, timeout=self._timeout)
        except TimeoutError as err:
            raise RpcFailure(
                f"submitting a {task.type!r} task: DEADLINE_EXCEEDED: no answer in "
                f"{self._timeout:g}s (the coordinator did not answer in time)",
                "DEADLINE_EXCEEDED",
            ) from err
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._stream_submits = False
                return None
            raise _failure(f"submitting a {task.type!r} task", err) from err
        finally:
            self._pending_submits.pop(request_id, None)
        if not outcome.HasField("receipt"):
            raise RpcFailure(
                f"submitting a {task.type!r} task: {outcome.error_code}: {outcome.error_message}",
                outcome.error_code,
            )
        receipt = Receipt.from_pb(outcome.receipt, blobs_uploaded)
        self._deadlines[receipt.task_id] = receipt.deadline_ms
        return receipt

    @staticmethod
    async def _submit_requests(
        out: asyncio.Queue[tuple[int, pb.Task] | None],
    ) -> AsyncIterator[pb.SubmitStreamRequest]:
        while True:
            item = await out.get()
            if item is None:
                return
            if _COALESCE and out.empty():
                # Let the other callers that are ready right now add their submits first.
                await asyncio.sleep(0)
            request = pb.SubmitStreamRequest()
            while item is not None:
                request.request_ids.append(item[0])
                request.tasks.append(item[1])
                if out.empty() or len(request.tasks) >= 256:
                    break
                item = out.get_nowait()
            yield request
            if item is None:
                return

    async def _read_submits(
        self, call: Any, out: asyncio.Queue[tuple[int, pb.Task] | None]
    ) -> None:
        error: BaseException
        try:
            async for reply in call:
                for request_id, outcome in zip(reply.request_ids, reply.outcomes, strict=False):
                    future = self._pending_submits.get(request_id)
                    if future is not None and not future.done():
                        future.set_result(outcome)
            error = RpcFailure("the submit stream ended", "UNAVAILABLE")
        except grpc.aio.AioRpcError as err:
            error = err
        except asyncio.CancelledError:
            error = RpcFailure("the client was closed", "CANCELLED")
        if self._submit_out is out:
            self._submit_out = None
        out.put_nowait(None)
        for future in list(self._pending_submits.values()):
            if not future.done():
                future.set_exception(error)

    async def _watch(self) -> asyncio.Queue[str | None]:
        """The shared WatchResults stream (opened on first use, reopened after a failure)."""
        if self._watch_out is not None:
            return self._watch_out
        out: asyncio.Queue[str | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.WatchRequest]:
            while True:
                item = await out.get()
                if item is None:
                    return
                ids = [item]
                while not out.empty() and len(ids) < 256:
                    more = out.get_nowait()
                    if more is None:
                        yield pb.WatchRequest(task_ids=ids)
                        return
                    ids.append(more)
                yield pb.WatchRequest(task_ids=ids)

        call = self._stub.WatchResults(requests(), metadata=self._metadata, timeout=WATCH_TIMEOUT_S)
        self._watch_out = out
        self._watch_reader = asyncio.create_task(self._read_watch(call, out))
        return out

    async def _read_watch(self, call: Any, out: asyncio.Queue[str | None]) -> None:
        error: BaseException
        try:
            async for response in call:
                for message in response.results:
                    for queue in self._followers.get(message.task_id, ()):
                        queue.put_nowait(message)
            error = RpcFailure("the results stream ended", "UNAVAILABLE")
        except grpc.aio.AioRpcError as err:
            error = err
        except asyncio.CancelledError:
            error = RpcFailure("the client was closed", "CANCELLED")
        if self._watch_out is out:
            self._watch_out = None
        out.put_nowait(None)
        for queues in list(self._followers.values()):
            for queue in queues:
                queue.put_nowait(error)

    async def results(
        self, task_id: str, *, reconnect_s: float = RESULTS_RECONNECT_S
    ) -> AsyncIterator[Result]:
        """Partial, progress and then exactly one final (or error) result of a task.

        Waiting is bounded by the task's own deadline plus a margin (the coordinator ends a
        task at its deadline), so a lost coordinator is an error here, never a hang. Results
        ride one shared stream; after a coordinator restart it re-subscribes and skips what
        it has already yielded.
        """
        seen: set[tuple[int, int]] = set()
        gave_up_at = 0.0
        backoff = 0.05
        queue: asyncio.Queue[pb.TaskResult | BaseException] = asyncio.Queue()
        self._followers.setdefault(task_id, set()).add(queue)
        try:
            while True:
                (await self._watch()).put_nowait(task_id)
                while True:
                    deadline_ms = self._deadlines.get(task_id) or 0
                    timeout = (
                        max(1.0, (deadline_ms - time.time() * 1000) / 1000 + 10.0)
                        if deadline_ms
                        else WATCH_TIMEOUT_S
                    )
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout=timeout)
                    except TimeoutError as err:
                        raise RpcFailure(
                            f"task {task_id}: no final result by its deadline", "DEADLINE_EXCEEDED"
                        ) from err
                    if isinstance(item, BaseException):
                        break
                    gave_up_at, backoff = 0.0, 0.05
                    result = Result.from_pb(item)
                    if result.final:
                        if result.error_code == "NOT_FOUND":
                            raise RpcFailure(
                                f"following task {task_id}: {result.text}", "NOT_FOUND"
                            )
                        self._deadlines.pop(task_id, None)
                        yield result
                        return
                    key = (result.attempt, result.sequence)
                    if key not in seen:
                        seen.add(key)
                        yield result
                if isinstance(item, RpcFailure) and item.code == "CANCELLED":
                    raise item
                if isinstance(item, grpc.aio.AioRpcError) and item.code() not in _RETRY_CODES:
                    raise _failure(f"following task {task_id}", item) from item
                now = time.monotonic()
                gave_up_at = gave_up_at or now + reconnect_s
                if now >= gave_up_at:
                    if isinstance(item, grpc.aio.AioRpcError):
                        raise _failure(f"following task {task_id}", item) from item
                    raise DispatchError(f"following task {task_id}: {item}") from item
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        finally:
            followers = self._followers.get(task_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[task_id]

    async def wait(self, task_id: str, *, reconnect_s: float = RESULTS_RECONNECT_S) -> Result:
        """The task's final (or error) result."""
        async for result in self.results(task_id, reconnect_s=reconnect_s):
            if result.final:
                return result
        raise DispatchError(f"task {task_id} ended without a result")  # pragma: no cover

    async def task_status(self, task_id: str) -> TaskInfo:
        try:
            reply = await self._stub.GetTaskStatus(
                pb.TaskId(id=task_id), metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise _failure(f"status of task {task_id}", err) from err
        return TaskInfo.from_pb(reply)

    async def cancel(self, task_id: str) -> None:
        try:
            await self._stub.CancelTask(
                pb.TaskId(id=task_id), metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise _failure(f"cancelling task {task_id}", err) from err

    async def status(self, recent: int = 20) -> SwarmStatus:
        try:
            reply = await self._stub.GetSwarmStatus(
                pb.SwarmStatusRequest(recent=recent), metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as err:
            raise _failure("swarm status", err) from err
        return SwarmStatus.from_pb(reply)
