"""Submitting tasks: pipelined over one shared SubmitStream, or one SubmitTask call each.

Many callers share the stream; submits that are ready together go out in one message and
are stored by the coordinator in one commit. Each caller still waits with a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from swarm_lsp.dispatch.client.shared_stream import SharedStream
from swarm_lsp.dispatch.client.types import (
    Receipt,
    RpcFailure,
    call_failures,
    failure,
)
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

STREAM_TIMEOUT_S = 24 * 3600.0  # the shared submit stream is long-lived; it still has a deadline
COALESCE = True
MAX_PER_MESSAGE = 256


class Submitter(SharedStream[tuple[int, pb.Task]]):
    def __init__(
        self,
        stub: pb_grpc.SwarmCoordinatorStub,
        metadata: tuple[tuple[str, str], ...],
        timeout: float,
        deadlines: dict[str, int],
    ) -> None:
        super().__init__()
        self._stub = stub
        self._metadata = metadata
        self._timeout = timeout
        self._deadlines = deadlines  # task id -> deadline (ms), shared with the watcher
        self._stream_submits = True
        self._pending: dict[int, asyncio.Future[pb.SubmitOutcome]] = {}
        self._request_ids = itertools.count(1)

    def _accepted(self, receipt: pb.TaskReceipt, blobs_uploaded: int = 0) -> Receipt:
        answer = Receipt.from_pb(receipt, blobs_uploaded)
        self._deadlines[answer.task_id] = answer.deadline_ms
        return answer

    async def submit(self, task: pb.Task, *, blobs_uploaded: int, pipelined: bool) -> Receipt:
        if pipelined and self._stream_submits:
            receipt = await self._submit_pipelined(task, blobs_uploaded)
            if receipt is not None:
                return receipt
        with call_failures(f"submitting a {task.type!r} task", lambda: self._closed):
            reply = await self._stub.SubmitTask(
                task, metadata=self._metadata, timeout=self._timeout
            )
        return self._accepted(reply, blobs_uploaded)

    async def submit_batch(self, batch: pb.TaskBatch, what: str) -> list[Receipt | RpcFailure]:
        with call_failures(f"submitting {what}", lambda: self._closed):
            reply = await self._stub.SubmitTasks(
                batch, metadata=self._metadata, timeout=self._timeout
            )
        return [
            self._accepted(outcome.receipt)
            if outcome.HasField("receipt")
            else RpcFailure(outcome.error_message, outcome.error_code)
            for outcome in reply.outcomes
        ]

    async def _submit_pipelined(self, task: pb.Task, blobs_uploaded: int) -> Receipt | None:
        """Submit over SubmitStream; None when the coordinator does not offer it."""
        out = self._out
        if out is None:
            out = asyncio.Queue()
            self._out = out
            call = self._stub.SubmitStream(
                self._requests(out), metadata=self._metadata, timeout=STREAM_TIMEOUT_S
            )
            self._reader = asyncio.create_task(self._read(call, out))
        request_id = next(self._request_ids)
        future: asyncio.Future[pb.SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
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
            raise failure(f"submitting a {task.type!r} task", err) from err
        finally:
            self._pending.pop(request_id, None)
        if not outcome.HasField("receipt"):
            raise RpcFailure(
                f"submitting a {task.type!r} task: {outcome.error_code}: {outcome.error_message}",
                outcome.error_code,
            )
        return self._accepted(outcome.receipt, blobs_uploaded)

    @staticmethod
    async def _requests(
        out: asyncio.Queue[tuple[int, pb.Task] | None],
    ) -> AsyncIterator[pb.SubmitStreamRequest]:
        while True:
            item = await out.get()
            if item is None:
                return
            if COALESCE and out.empty():
                # Let the other callers that are ready right now add their submits first.
                await asyncio.sleep(0)
            request = pb.SubmitStreamRequest()
            while item is not None:
                request.request_ids.append(item[0])
                request.tasks.append(item[1])
                if out.empty() or len(request.tasks) >= MAX_PER_MESSAGE:
                    break
                item = out.get_nowait()
            yield request
            if item is None:
                return

    async def _read(self, call: Any, out: asyncio.Queue[tuple[int, pb.Task] | None]) -> None:
        def deliver(reply: pb.SubmitStreamReply) -> None:
            for request_id, outcome in zip(reply.request_ids, reply.outcomes, strict=False):
                future = self._pending.get(request_id)
                if future is not None and not future.done():
                    future.set_result(outcome)

        # Anything but a reply ends this stream; the next submit opens one.
        await self._read_until_ended(call, out, deliver, "submit")

    def _tell_waiters(self, error: BaseException) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(error)
