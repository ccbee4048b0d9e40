"""Send one task to the swarm and follow it to its result, asking the user when it would wait.

The seed's fallback 4: when the receipt says the task would wait longer than its priority's
bound (all workers busy, or no worker for its role) — or the swarm is down — the user is asked
with ``window/showMessageRequest``: "Wait" or "Use fast local model". The local answer comes
from the server's own chat model, and the queued task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lsprotocol import types

from swarm_lsp.dispatch.client import DispatchClient, Result
from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge, SwarmUnavailable

WAIT = "Wait"
USE_LOCAL = "Use fast local model"
CONNECT_WAIT_S = 60.0  # how long a task waits for a swarm that is still starting
QUESTION_TIMEOUT_S = 600.0
STALL_CHECK_S = 3.0  # no result for this long: ask the coordinator whether the task finished
REREAD_TIMEOUT_S = 30.0
CALL_BOUND_S = 15.0  # a coordinator call that takes longer than this is treated as lost

LocalAnswer = Callable[[ProgressStream], Awaitable[dict[str, Any]]]


class TaskFailed(SwarmError):
    """The worker reported an error for the task."""


@dataclasses.dataclass
class TaskOutcome:
    data: dict[str, Any]
    task_id: str
    local: bool  # answered by the fast local model instead of the swarm
    worker: str = ""


async def ask_wait_or_local(ls: SwarmLanguageServer, reason: str) -> bool:
    """True when the user picks the fast local model (dismissing the question means wait)."""
    try:
        choice = await asyncio.wait_for(
            ls.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Warning,
                    message=f"Swarm: {reason}. Wait, or use the fast local model?",
                    actions=[
                        types.MessageActionItem(title=WAIT),
                        types.MessageActionItem(title=USE_LOCAL),
                    ],
                )
            ),
            timeout=QUESTION_TIMEOUT_S,
        )
    except (TimeoutError, Exception) as err:  # no answer: keep waiting for the swarm
        ls.log(f"swarm: no answer to the wait question ({err!r}); waiting", types.MessageType.Log)
        return False
    return choice is not None and choice.title == USE_LOCAL


def _wait_reason(receipt: Any) -> str:
    if receipt.estimated_wait_ms < 0:
        return receipt.note or f"no worker can run {receipt.role!r} tasks right now"
    seconds = receipt.estimated_wait_ms / 1000
    where = f" (position {receipt.queue_position} in the queue)" if receipt.queue_position else ""
    return f"{receipt.note or 'the swarm is busy'}; the task would wait about {seconds:.0f}s{where}"


async def run_task(
    ls: SwarmLanguageServer,
    bridge: SwarmBridge,
    task_type: str,
    payload: Mapping[str, Any],
    progress: ProgressStream,
    *,
    priority: str = "immediate",
    complexity: str = "simple",
    snapshot: Mapping[str, bytes] | None = None,
    local: LocalAnswer | None = None,
    stream_partials: bool = False,
) -> TaskOutcome:
    """Submit, maybe ask wait-or-local, follow results into ``progress``; the final data.

    ``stream_partials``: report partial text as progress messages (chat-style streaming);
    otherwise only the worker's progress lines are reported.
    """
    try:
        client = await bridge.require_client(CONNECT_WAIT_S)
    except SwarmUnavailable as err:
        if local is not None and await ask_wait_or_local(ls, str(err)):
            return TaskOutcome(await local(progress), "", True)
        raise
    progress.report(f"sending the {task_type} task to the swarm")
    receipt = await client.submit(
        task_type, payload, priority=priority, complexity=complexity, snapshot=snapshot
    )
    task_id = receipt.task_id
    if receipt.exceeds_wait_bound and local is not None:
        if await ask_wait_or_local(ls, _wait_reason(receipt)):
            with contextlib.suppress(SwarmError):
                await client.cancel(task_id)
            ls.log(f"swarm: task {task_id} cancelled; answering with the fast local model")
            return TaskOutcome(await local(progress), task_id, True)
    elif receipt.state == "QUEUED":
        progress.report(_wait_reason(receipt))
    try:
        final = await _follow(client, task_id, progress, stream_partials)
    except asyncio.CancelledError:
        # The request was cancelled (or the server is stopping): stop the work too.
        with contextlib.suppress(Exception):
            await asyncio.shield(client.cancel(task_id))
        raise
    if final.kind == "error":
        where = final.worker or "the swarm"
        raise TaskFailed(f"{task_type} task failed on {where}: {final.text}")
    data = final.data if isinstance(final.data, dict) else {"text": final.text}
    return TaskOutcome(data, task_id, False, final.worker)


async def _follow(
    client: DispatchClient, task_id: str, progress: ProgressStream, stream_partials: bool
) -> Result:
    """Report partial and progress results; return the final (or error) result.

    The shared results stream has been seen to stall mid-task while the coordinator had
    already finished the task; when nothing arrives for a while the task's status is checked,
    and a finished task's results are read again over a fresh connection.
    """
    queue: asyncio.Queue[Result | BaseException] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for result in client.results(task_id):
                queue.put_nowait(result)
        except BaseException as err:  # handed to the reader below
            queue.put_nowait(err)

    pumping = asyncio.ensure_future(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=STALL_CHECK_S)
            except TimeoutError:
                info = await asyncio.wait_for(client.task_status(task_id), timeout=CALL_BOUND_S)
                if info.finished_ms:
                    return await _reread(client, task_id)
                continue
            if isinstance(item, asyncio.CancelledError):
                raise DispatchError(f"following task {task_id} stopped")
            if isinstance(item, BaseException):
                raise item
            if item.final:
                return item
            if item.kind == "partial":
                if stream_partials and item.text:
                    progress.report(item.text)
            elif not stream_partials:
                progress.report(item.text, item.percentage)
    finally:
        pumping.cancel()


async def _reread(client: DispatchClient, task_id: str) -> Result:
    fresh = await asyncio.wait_for(
        DispatchClient.connect(client.settings, client.target), timeout=CALL_BOUND_S
    )
    try:
        return await asyncio.wait_for(fresh.wait(task_id), timeout=REREAD_TIMEOUT_S)
    except TimeoutError as err:
        raise DispatchError(f"task {task_id} finished but its result could not be read") from err
    finally:
        await fresh.close()
