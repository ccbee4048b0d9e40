"""Following tasks: one shared WatchResults stream for every task this client follows.

``results()`` rides out a coordinator restart or an outage: it re-subscribes, by task id, for
as long as the task's deadline allows (the coordinator holds the task until then), skipping
what it has already yielded. While the coordinator cannot be reached it yields one progress
result, ``UNREACHABLE`` ("swarm unreachable, retrying"), so an editor can say so instead of
failing; ``REACHABLE`` follows once results flow again. Waiting is bounded by the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from swarm_lsp.dispatch.client.shared_stream import SharedStream
from swarm_lsp.dispatch.client.types import Result, RpcFailure, failure
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.errors import DispatchError

log = logging.getLogger(__name__)

RESULTS_RECONNECT_S = 30.0  # how long to retry when the task's deadline is not known
DEADLINE_MARGIN_S = 10.0  # the coordinator ends a task at its deadline; allow for the news
UNREACHABLE = "swarm unreachable, retrying"
REACHABLE = "swarm reachable again"
WATCH_TIMEOUT_S = 24 * 3600.0  # the shared results stream is long-lived; it still has a deadline
# Answers about the call itself: retrying cannot help. Anything else is how the connection
# failed (a SIGKILLed coordinator shows as UNAVAILABLE, CANCELLED, UNKNOWN or "INTERNAL:
# Internal error from Core", depending on when the reset lands): retried.
FINAL_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
}

Follower = asyncio.Queue[pb.TaskResult | BaseException]


class Watcher(SharedStream[str]):
    def __init__(
        self,
        stub: pb_grpc.SwarmCoordinatorStub,
        metadata: tuple[tuple[str, str], ...],
        deadlines: dict[str, int],
    ) -> None:
        super().__init__()
        self._stub = stub
        self._metadata = metadata
        self._deadlines = deadlines  # task id -> deadline (ms), filled by the submitter
        self._followers: dict[str, set[Follower]] = {}

    async def _stream(self) -> asyncio.Queue[str | None]:
        """The shared WatchResults stream (opened on first use, reopened after a failure)."""
        if self._out is not None:
            return self._out
        if self._closed:
            raise RpcFailure("the client was closed", "CANCELLED")
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
        def deliver(response: pb.WatchResponse) -> None:
            for message in response.results:
                for queue in self._followers.get(message.task_id, ()):
                    queue.put_nowait(message)

        # Anything but a reply ends this stream; the followers subscribe again.
        await self._read_until_ended(call, out, deliver, "results")

    def _tell_waiters(self, error: BaseException) -> None:
        for queues in list(self._followers.values()):
            for queue in queues:
                queue.put_nowait(error)

    def _retry_until(self, task_id: str, now: float, reconnect_s: float | None) -> float:
        """Monotonic time to stop retrying: the task's deadline (+ margin) when known."""
        deadline_ms = self._deadlines.get(task_id) or 0
        if reconnect_s is not None or not deadline_ms:
            return now + (RESULTS_RECONNECT_S if reconnect_s is None else reconnect_s)
        return now + max(0.0, (deadline_ms - time.time() * 1000) / 1000) + DEADLINE_MARGIN_S

    async def results(
        self, task_id: str, *, reconnect_s: float | None = None, deadline_ms: int = 0
    ) -> AsyncIterator[Result]:
        """Partial, progress and then exactly one final (or error) result of a task.

        Waiting is bounded by the task's own deadline plus a margin (the coordinator ends a
        task at its deadline), so a lost coordinator is an error here, never a hang. Results
        ride one shared stream; after a failure it re-subscribes by task id and skips what it
        has already yielded, retrying until the task's deadline has passed (``reconnect_s``:
        a shorter bound; without a known deadline, RESULTS_RECONNECT_S). While it retries it
        yields one ``UNREACHABLE`` progress result (then ``REACHABLE`` once back).
        ``deadline_ms``: the task's deadline, for a task this client did not submit.
        """
        if deadline_ms:
            self._deadlines.setdefault(task_id, deadline_ms)
        seen: set[tuple[int, int]] = set()
        gave_up_at = 0.0
        unreachable = False
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
                    if unreachable:
                        unreachable = False
                        yield _note(task_id, REACHABLE)
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
                if isinstance(item, grpc.aio.AioRpcError) and item.code() in FINAL_CODES:
                    raise failure(f"following task {task_id}", item) from item
                now = time.monotonic()
                gave_up_at = gave_up_at or self._retry_until(task_id, now, reconnect_s)
                if not unreachable:
                    unreachable = True
                    yield _note(task_id, UNREACHABLE)
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


def _note(task_id: str, text: str) -> Result:
    """A progress result made by the client itself (attempt -1: from no worker)."""
    return Result(
        task_id=task_id,
        kind="progress",
        text=text,
        data=None,
        sequence=0,
        attempt=-1,
        worker="",
        fallback="",
        percentage=None,
        state="",
        error_code="",
        stats={},
    )
