"""``DispatchClient``: one coordinator connection; submit, follow, cancel, ask status.

Every call has a deadline and every failure is a :class:`DispatchError` (``raise … from`` the
gRPC error), so a dead or wedged coordinator shows up in the editor as a message, never as a
hung request. Submits (``submit``), results (``watch``) and uploads (``uploads``) are done
by their own modules; this class wires them to one channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import codec, tls_probe
from swarm_lsp.dispatch.client.submit import Submitter
from swarm_lsp.dispatch.client.types import (
    Receipt,
    Result,
    RpcFailure,
    SwarmStatus,
    TaskInfo,
    call_failures,
)
from swarm_lsp.dispatch.client.uploads import Uploads
from swarm_lsp.dispatch.client.watch import Watcher
from swarm_lsp.dispatch.local_token import with_local_token
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import DEFAULT_MAX_MESSAGE_BYTES, call_metadata, open_channel
from swarm_lsp.errors import DispatchError, SwarmError

CALL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


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
        deadlines: dict[str, int] = {}  # task id -> deadline (ms): bounds waiting for results
        self._submitter = Submitter(self._stub, self._metadata, call_timeout, deadlines)
        self._watcher = Watcher(self._stub, self._metadata, deadlines)
        self._uploads = Uploads(self._stub, self._metadata, call_timeout)
        self.settings = settings
        self.target = target
        self._closed = False

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
        address = target or settings.swarm.first_coordinator
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
        self._closed = self._uploads.closed = True
        self._watcher.close()
        self._submitter.close()
        await self._channel.close(grace=0.5)

    async def __aenter__(self) -> DispatchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- submitting ------------------------------------------------------------------------

    async def upload_snapshot(self, files: Mapping[str, bytes]) -> tuple[dict[str, str], int]:
        """Send only the blobs the coordinator lacks; return (manifest, blobs uploaded)."""
        return await self._uploads.snapshot(files)

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
            manifest, uploaded = await self._uploads.snapshot(snapshot)
        dict_id, dict_blob = 0, ""
        if dictionary:
            dict_id, dict_blob, sent = await self._uploads.dictionary(dictionary)
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
        return await self._submitter.submit_batch(batch, f"{len(payloads)} {type!r} tasks")

    async def submit_task(
        self, task: pb.Task, *, blobs_uploaded: int = 0, pipelined: bool = True
    ) -> Receipt:
        """Submit a ready-made Task message (the context already compressed).

        By default the submit rides the shared SubmitStream (pipelined: many callers, one
        stream, one commit per burst); ``pipelined=False`` makes one SubmitTask call. Either
        way it has a deadline and fails with a DispatchError, never a hang.
        """
        return await self._submitter.submit(
            task, blobs_uploaded=blobs_uploaded, pipelined=pipelined
        )

    # -- following -------------------------------------------------------------------------

    def results(
        self, task_id: str, *, reconnect_s: float | None = None, deadline_ms: int = 0
    ) -> AsyncIterator[Result]:
        """Partial, progress and then exactly one final (or error) result of a task.

        Rides out coordinator outages for as long as the task's deadline allows (or
        ``reconnect_s``), yielding a ``watch.UNREACHABLE`` progress result meanwhile;
        ``deadline_ms`` tells it the deadline of a task another client submitted.
        """
        return self._watcher.results(task_id, reconnect_s=reconnect_s, deadline_ms=deadline_ms)

    async def wait(self, task_id: str, *, reconnect_s: float | None = None) -> Result:
        """The task's final (or error) result."""
        async for result in self.results(task_id, reconnect_s=reconnect_s):
            if result.final:
                return result
        raise DispatchError(f"task {task_id} ended without a result")  # pragma: no cover

    # -- asking ----------------------------------------------------------------------------

    async def task_status(self, task_id: str) -> TaskInfo:
        with call_failures(f"status of task {task_id}", lambda: self._closed):
            reply = await self._stub.GetTaskStatus(
                pb.TaskId(id=task_id), metadata=self._metadata, timeout=self._timeout
            )
        return TaskInfo.from_pb(reply)

    async def cancel(self, task_id: str) -> None:
        with call_failures(f"cancelling task {task_id}", lambda: self._closed):
            await self._stub.CancelTask(
                pb.TaskId(id=task_id), metadata=self._metadata, timeout=self._timeout
            )

    async def status(self, recent: int = 20) -> SwarmStatus:
        with call_failures("swarm status", lambda: self._closed):
            reply = await self._stub.GetSwarmStatus(
                pb.SwarmStatusRequest(recent=recent), metadata=self._metadata, timeout=self._timeout
            )
        return SwarmStatus.from_pb(reply)
