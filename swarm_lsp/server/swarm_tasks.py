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

from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge, SwarmUnavailable

WAIT = "Wait"
USE_LOCAL = "Use fast local model"
CONNECT_WAIT_S = 60.0  # how long a task waits for a swarm that is still starting
QUESTION_TIMEOUT_S = 600.0

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
    ls.log(f"DEBUG submitting {task_type}")
    receipt = await client.submit(
        task_type, payload, priority=priority, complexity=complexity, snapshot=snapshot
    )
    task_id = receipt.task_id
    ls.log(f"DEBUG receipt {receipt}")
    if receipt.exceeds_wait_bound and local is not None:
        if await ask_wait_or_local(ls, _wait_reason(receipt)):
            with contextlib.suppress(SwarmError):
                await client.cancel(task_id)
            ls.log(f"swarm: task {task_id} cancelled; answering with the fast local model")
            return TaskOutcome(await local(progress), task_id, True)
    elif receipt.state == "QUEUED":
        progress.report(_wait_reason(receipt))
    try:
        async for result in client.results(task_id):
            if result.kind == "partial":
                if stream_partials and result.text:
                    progress.report(result.text)
            elif result.kind == "progress":
                if not stream_partials:
                    progress.report(result.text, result.percentage)
            elif result.kind == "error":
                raise TaskFailed(
                    f"{task_type} task failed on {result.worker or 'the swarm'}: {result.text}"
                )
            else:
                data = result.data if isinstance(result.data, dict) else {"text": result.text}
                return TaskOutcome(data, task_id, False, result.worker)
    except asyncio.CancelledError:
        # The request was cancelled (or the server is stopping): stop the work too.
        with contextlib.suppress(Exception):
            await asyncio.shield(client.cancel(task_id))
        raise
    raise DispatchError(f"task {task_id} ended without a result")
