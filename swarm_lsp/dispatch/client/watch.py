"""Following tasks: one shared WatchResults stream for every task this client follows.

``results()`` rides out a coordinator restart: it re-subscribes until the task's final result
arrives, skipping what it has already yielded. Waiting is bounded by the task's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from swarm_lsp.dispatch.client.types import Result, RpcFailure, failure
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.errors import DispatchError

RESULTS_RECONNECT_S = 30.0
WATCH_TIMEOUT_S = 24 * 3600.0  # the shared results stream is long-lived; it still has a deadline
RETRY_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN}

Follower = asyncio.Queue[pb.TaskResult | BaseException]


class Watcher:
    def __init__(
        self,
        stub: pb_grpc.SwarmCoordinatorStub,
        metadata: tuple[tuple[str, str], ...],
        deadlines: dict[str, int],
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._deadlines = deadlines  # task id -> deadline (ms), filled by the submitter
        self._followers: dict[str, set[Follower]] = {}
        self._out: asyncio.Queue[str | None] | None = None
        self._reader: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._out is not None:
            self._out.put_nowait(None)
        if self._reader is not None:
            self._reader.cancel()

    async def _stream(self) -> asyncio.Queue[str | None]:
        """The shared WatchResults stream (opened on first use, reopened after a failure)."""
        if self._out is not None:
            return self._out
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
        self._out = out
        self._reader = asyncio.create_task(self._read(call, out))
        return out

    async def _read(self, call: Any, out: asyncio.Queue[str | None]) -> None:
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
        if self._out is out:
            self._out = None
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
        queue: Follower = asyncio.Queue()
        self._followers.setdefault(task_id, set()).add(queue)
        try:
            while True:
                (await self._stream()).put_nowait(task_id)
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
                if isinstance(item, grpc.aio.AioRpcError) and item.code() not in RETRY_CODES:
                    raise failure(f"following task {task_id}", item) from item
                now = time.monotonic()
                gave_up_at = gave_up_at or now + reconnect_s
                if now >= gave_up_at:
                    if isinstance(item, grpc.aio.AioRpcError):
                        raise failure(f"following task {task_id}", item) from item
                    raise DispatchError(f"following task {task_id}: {item}") from item
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
        finally:
            followers = self._followers.get(task_id)
            if followers is not None:
                followers.discard(queue)
                if not followers:
                    del self._followers[task_id]
