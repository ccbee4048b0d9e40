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
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lsprotocol import types

from swarm_lsp.dispatch.client import (
    UNREACHABLE,
    DispatchClient,
    Receipt,
    Result,
    RpcFailure,
    TaskInfo,
)
from swarm_lsp.dispatch.failover import FAILOVER, SUPERSEDES
from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_bridge import SwarmBridge, SwarmUnavailable

WAIT = "Wait"
USE_LOCAL = "Use fast local model"
CONNECT_WAIT_S = 60.0  # how long a task waits for a swarm that is still starting
QUESTION_TIMEOUT_S = 600.0
STALL_CHECK_S = 3.0  # no result for this long: ask whether the task sat in the queue too long
CALL_BOUND_S = 15.0  # a coordinator call that takes longer than this is treated as lost
PEER_JUDGED_S = 3.0  # a mesh peer that failed a submit is out of the view within this
# How a submit fails when the peer dies under it (anything else is the answer itself).
CONNECTION_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "INTERNAL"}

LocalAnswer = Callable[[ProgressStream], Awaitable[dict[str, Any]]]
# Submits the task to a client; the argument: "<old id>@<old owner>" when it replaces one.
Send = Callable[[DispatchClient, str], Awaitable[Receipt]]


@dataclasses.dataclass
class _Followed:
    """The copy of the task being followed: it changes when its owner dies (mesh)."""

    client: DispatchClient
    task_id: str
    deadline_ms: int


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
        if local is None:
            raise
        if await ask_wait_or_local(ls, str(err)):
            return TaskOutcome(await local(progress), "", True)
        progress.report("waiting for the swarm")
        client = await bridge.require_client(CONNECT_WAIT_S, patient=True)
    progress.report(f"sending the {task_type} task to the swarm")
    mesh = bridge.mesh is not None
    key = uuid.uuid4().hex if mesh else ""  # one per task, kept by every resubmission

    async def send(client: DispatchClient, supersedes: str) -> Receipt:
        metadata = {FAILOVER: "1"} if mesh else {}
        if supersedes:
            metadata[SUPERSEDES] = supersedes
        return await client.submit(
            task_type,
            payload,
            priority=priority,
            complexity=complexity,
            snapshot=snapshot,
            idempotency_key=key,
            metadata=metadata or None,
        )

    receipt, client, died = await _submit(bridge, client, send, "")
    if died:
        ls.log(_failover_note(receipt.task_id, client.target, f"@{died[0]}", died))
    task_id = receipt.task_id
    bound = _bound_ms(ls, receipt.wait_bound_ms)
    too_long = receipt.exceeds_wait_bound or (
        receipt.state == "QUEUED"
        and bound > 0
        and (receipt.estimated_wait_ms < 0 or receipt.estimated_wait_ms > bound)
    )
    asked = False
    if too_long and local is not None:
        asked = True
        if await ask_wait_or_local(ls, _wait_reason(receipt)):
            return await _answer_locally(ls, client, task_id, local, progress)
    elif receipt.state == "QUEUED":
        progress.report(_wait_reason(receipt))

    async def queued_too_long(info: TaskInfo) -> bool:
        """Asked once, when the task has sat in the queue past its bound."""
        nonlocal asked
        if asked or local is None or bound <= 0 or info.state != "QUEUED":
            return False
        if time.time() * 1000 - info.submitted_ms < bound:
            return False
        asked = True
        reason = f"the {task_type} task has waited {bound / 1000:.0f}s in the queue"
        return await ask_wait_or_local(ls, reason)

    followed = _Followed(client, task_id, receipt.deadline_ms)
    try:
        final = await _follow(
            bridge,
            followed,
            progress,
            stream_partials,
            queued_too_long,
            send if mesh else None,
        )
    except _UseLocal:
        return await _answer_locally(ls, followed.client, followed.task_id, local, progress)
    except asyncio.CancelledError:
        # The request was cancelled (or the server is stopping): stop the work too.
        with contextlib.suppress(Exception):
            await asyncio.shield(followed.client.cancel(followed.task_id))
        raise
    task_id = followed.task_id
    if final.kind == "error":
        where = final.worker or "the swarm"
        raise TaskFailed(f"{task_type} task failed on {where}: {final.text}")
    data = final.data if isinstance(final.data, dict) else {"text": final.text}
    return TaskOutcome(data, task_id, False, final.worker)


async def _submit(
    bridge: SwarmBridge, client: DispatchClient, send: Send, supersedes: str
) -> tuple[Receipt, DispatchClient, list[str]]:
    """Submit; in a mesh, a peer that dies under the submit is replaced by a live one. The
    receipt, the client that got it, and the peers that died under a try (in order).

    The same idempotency key goes with every try: a peer that did accept the first try
    answers the second with that task's receipt; the try on another peer supersedes any copy
    the lost one accepted (``SUPERSEDES`` = ``@<lost peer>``: found by the key), so a peer
    cut off from the editor only stops it, and a dead one holds it on recovery, never watched
    again (dispatch/failover.py). ``SUPERSEDES`` names one copy: the first lost peer's (or the
    one given); a copy a later lost peer accepted is not superseded (see ``_failover_note``).
    """
    died: list[str] = []
    while True:
        try:
            return await send(client, supersedes), client, died
        except RpcFailure as err:
            mesh = bridge.mesh
            lost = (
                mesh is not None
                and err.code in CONNECTION_CODES
                # else the peer is alive and failed the submit: that is the answer
                and await mesh.wait_lost(client.target, PEER_JUDGED_S)
            )
            if not lost:
                if died:
                    bridge.ls.log(
                        f"swarm: the submit failed on {client.target} after {_listed(died)} "
                        f"died under it: {err}",
                        types.MessageType.Warning,
                    )
                raise
            died.append(client.target)
            bridge.ls.log(f"swarm: {client.target} died under a submit; trying another peer")
            supersedes = supersedes or f"@{client.target}"
            client = await bridge.require_client(CONNECT_WAIT_S, patient=True)


def _listed(peers: list[str]) -> str:
    return ", ".join(peers[:-1]) + " and " + peers[-1] if len(peers) > 1 else peers[0]


def _failover_note(task_id: str, target: str, supersedes: str, died: list[str]) -> str:
    """The log line for a copy ``target`` accepted after peers died under the submit: the old
    copy it supersedes (``SUPERSEDES`` names one), and the lost peers' copies it does not."""
    old_id, _, owner = supersedes.rpartition("@")
    named = f"task {old_id} on {owner}" if old_id else f"any copy {owner} accepted"
    note = f"swarm: task {task_id} on {target} supersedes {named}"
    others = [peer for peer in died if peer != owner]
    if others:
        note += (
            f"; {_listed(others)} also died under the submit: a copy "
            f"{'they' if len(others) > 1 else 'it'} may hold is not superseded (held if "
            "restarted, it ends at its deadline)"
        )
    return note


class _UseLocal(Exception):
    """The user chose the fast local model while the task waited."""


def _bound_ms(ls: SwarmLanguageServer, route_bound_ms: int) -> int:
    """The smaller of the route's wait bound and ``swarm.waitBoundMs`` (0 means no bound)."""
    bounds = [b for b in (route_bound_ms, ls.settings.swarm.wait_bound_ms) if b > 0]
    return min(bounds) if bounds else 0


async def _answer_locally(
    ls: SwarmLanguageServer,
    client: DispatchClient,
    task_id: str,
    local: LocalAnswer | None,
    progress: ProgressStream,
) -> TaskOutcome:
    assert local is not None
    with contextlib.suppress(SwarmError):
        await client.cancel(task_id)
    ls.log(f"swarm: task {task_id} cancelled; answering with the fast local model")
    return TaskOutcome(await local(progress), task_id, True)


async def _follow(
    bridge: SwarmBridge,
    followed: _Followed,
    progress: ProgressStream,
    stream_partials: bool,
    queued_too_long: Callable[[TaskInfo], Awaitable[bool]],
    resubmit: Send | None = None,
) -> Result:
    """Report partial and progress results; return the final (or error) result.

    Outages are no failure while the coordinator still holds the task (until its deadline):
    the client re-subscribes by task id and reports "swarm unreachable, retrying"; when the
    bridge replaces its client (it closes one whose status poll failed), the task is followed
    again on the new one. While nothing arrives the task's status is asked every few seconds
    for one reason only: a task that sat in the queue past its bound leads to the wait-or-local
    question (``_UseLocal``); a failed status call is an outage, not the task's failure.

    In a mesh (``resubmit``), the client of a peer that left the view is closed: if the task's
    owner is still out of the view then, the task is submitted again to a live peer (same
    idempotency key, ``SUPERSEDES`` the old copy) and only the new copy is followed from then
    on (``followed`` changes); if the owner is back, the task is followed there again.
    """
    queue: asyncio.Queue[Result | BaseException] = asyncio.Queue()

    def follow(client: DispatchClient) -> asyncio.Future[None]:
        task_id, deadline_ms = followed.task_id, followed.deadline_ms

        async def pump(queue: asyncio.Queue[Result | BaseException]) -> None:
            try:
                async for result in client.results(task_id, deadline_ms=deadline_ms):
                    queue.put_nowait(result)
            except BaseException as err:  # handed to the reader below
                queue.put_nowait(err)

        return asyncio.ensure_future(pump(queue))

    pumping = follow(followed.client)
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=STALL_CHECK_S)
            except TimeoutError:
                try:
                    info = await asyncio.wait_for(
                        followed.client.task_status(followed.task_id), timeout=CALL_BOUND_S
                    )
                except (SwarmError, TimeoutError):
                    continue  # unreachable: the results follower retries and says so
                if await queued_too_long(info):
                    raise _UseLocal() from None
                continue
            if isinstance(item, RpcFailure) and item.code == "CANCELLED":
                # The bridge closed this client (it lost the coordinator): follow the task
                # on the next one, for as long as its deadline allows.
                progress.report(UNREACHABLE)
                pumping.cancel()
                left = (
                    followed.deadline_ms / 1000 - time.time()
                    if followed.deadline_ms
                    else CONNECT_WAIT_S
                )
                if resubmit is not None and bridge.mesh is not None:
                    await _owner_lost(bridge, followed, resubmit, progress, max(1.0, left))
                else:
                    followed.client = await bridge.require_client(max(1.0, left), patient=True)
                queue = asyncio.Queue()
                pumping = follow(followed.client)
                continue
            if isinstance(item, asyncio.CancelledError):
                raise DispatchError(f"following task {followed.task_id} stopped")
            if isinstance(item, BaseException):
                raise item
            if item.final:
                return item
            if item.kind == "partial":
                if stream_partials and item.text:
                    progress.report(item.text)
            elif not stream_partials or item.attempt < 0:  # attempt -1: the client's own note
                progress.report(with_eta(item.text, item.eta_ms), item.percentage)
    finally:
        pumping.cancel()


async def _owner_lost(
    bridge: SwarmBridge, followed: _Followed, resubmit: Send, progress: ProgressStream, wait: float
) -> None:
    """The owner's client was closed (it left the view): follow it again, or resubmit.

    Decided once, here: an owner back in the view is followed again (a restarted one then
    queues its held copy); otherwise the task goes to a live peer and the old copy is never
    watched again (it stays held on the old owner's recovery, and is cancelled once back).
    """
    mesh = bridge.mesh
    assert mesh is not None
    owner, old = followed.client.target, followed.task_id
    give_up = time.monotonic() + wait
    while mesh.in_view(owner) and time.monotonic() < give_up:
        try:
            followed.client = await mesh.client(owner)
            return
        except SwarmError:  # in the view but not answering yet: it is judged within seconds
            await mesh.wait_lost(owner, PEER_JUDGED_S)
    # Registered first: an owner back in the view while the resubmit is under way gets its
    # copy cancelled all the same (its return is what sets the cancel off).
    mesh.supersede(owner, old)
    client = await bridge.require_client(wait, patient=True)
    receipt, client, died = await _submit(bridge, client, resubmit, f"{old}@{owner}")
    bridge.ls.log(f"swarm: task {old} owned by {owner} (gone) resubmitted as {receipt.task_id}")
    if died:
        bridge.ls.log(_failover_note(receipt.task_id, client.target, f"{old}@{owner}", died))
    gone = f"peers {_listed([owner, *died])} are" if died else f"peer {owner} is"
    progress.report(f"resubmitted to {client.target} (the {gone} gone)")
    followed.client, followed.task_id, followed.deadline_ms = (
        client,
        receipt.task_id,
        receipt.deadline_ms,
    )


def with_eta(text: str, eta_ms: int | None) -> str:
    """A progress line with the coordinator's estimate of the time left, when it has one."""
    if eta_ms is None:
        return text
    left = f"about {eta_ms / 1000:.0f}s left" if eta_ms >= 1000 else "finishing"
    return f"{text} ({left})" if text else left
