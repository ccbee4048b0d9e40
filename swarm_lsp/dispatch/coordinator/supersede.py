"""One completion per idempotency key across the mesh: a resubmitted task supersedes its old copy.

The LSP server resubmits a task whose owner left its view with ``SUPERSEDES`` =
``<old id>@<old owner>`` in its metadata (``<old id>`` empty when a submit died in flight:
the old owner looks the copy up by the idempotency key). The owner may only be cut off from
the editor, not from the peers, and still running its copy. So a peer that accepts such a task
does not queue it at once; it first asks the old owner, peer to peer over the mesh's mTLS
(``SupersedeTask``, mesh peers only), to supersede its copy:

- the old copy had not finished: the old owner cancels it (its runner is fenced, as by
  CancelTask), and the new copy runs;
- it had finished (SUCCEEDED or FAILED): the answer carries its final result, and the new copy
  ends with that result (``ADOPTED`` in its stats names the copy it came from) instead of
  running again; a cancelled or expired old copy does not count, nor one that failed for want
  of runners (UNAVAILABLE): the new one runs;
- no such copy for this key and owner (the submit never reached it): the new copy runs;
- the old owner is no live peer in this node's mesh view (``Coordinator.mesh_peers``): it is not
  dialled (an address a client names may be anything, say a server of its own on this
  machine's loopback; a coordinator that is no node has no peers, so it never dials), and the
  new copy goes on as if the owner did not answer (below), asking it only once it joins;
- the old owner does not answer within ``ASK_S``: this machine's result journal and the live
  peers' are asked whether the old copy finished (``journal_ask``: its result outlives an
  owner killed before it told anyone); if it did, the new copy ends with that result.
  Otherwise the new copy runs, and the old owner is
  asked again (every few seconds, until the new copy's deadline) so that its copy is cancelled
  when it is back; if the old copy finished meanwhile while the new one still runs, the new one
  is stopped and returns that result. Only a copy that finished on an owner cut off from every
  peer while the new one finished too completes twice (docs/mesh.md).

The answering side checks that the caller is a mesh peer (a host or operator credential: a
client or worker credential is refused), and that key, owner and id all match, so no one can
stop a task of another client by naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, TypeGuard

import grpc

from swarm_lsp.dispatch.coordinator import journal_ask, outcomes
from swarm_lsp.dispatch.coordinator.admission import peer_ip_port
from swarm_lsp.dispatch.coordinator.model import ActiveTask, RequestError
from swarm_lsp.dispatch.coordinator.results import final_result
from swarm_lsp.dispatch.credentials import Principal
from swarm_lsp.dispatch.failover import SUPERSEDES, superseded_copy
from swarm_lsp.dispatch.locality import check_peer, is_loopback_target
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.proto import swarm_pb2_grpc as pb_grpc
from swarm_lsp.dispatch.security import call_metadata, open_channel
from swarm_lsp.dispatch.store import TaskRecord, now_ms
from swarm_lsp.errors import SwarmError

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

log = logging.getLogger(__name__)

ASK_S = 2.0  # how long a new copy waits for the old owner's answer before it runs anyway
RETRY_S = (1.0, 2.0, 5.0)  # then the old owner is asked again after these pauses (last repeats)
ADOPTED = "swarm-lsp.adopted"  # result stat: "<old id>@<old owner>" whose result this is
PEER_KINDS = ("host", "operator")  # the credentials mesh peers use (docs/mesh.md)
# The old copy's end states that are the task's one answer (the editor would have had it),
# except a failure for want of runners (the coordinator gave up on it: UNAVAILABLE).
ADOPTABLE = (pb.SUCCEEDED, pb.FAILED)
NO_ANSWER = ("UNAVAILABLE",)


def is_answer(state: str, error_code: str) -> bool:
    """Whether a copy that ended in ``state`` answered the task (so no other copy runs)."""
    return state == "SUCCEEDED" or (state == "FAILED" and error_code not in NO_ANSWER)


def _adoptable(reply: object) -> TypeGuard[pb.SupersedeReply]:
    return (
        isinstance(reply, pb.SupersedeReply)
        and reply.state in ADOPTABLE
        and is_answer(pb.TaskState.Name(reply.state), reply.final.error_code)
    )


_UNREACHABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
)


class _Unreachable:
    """The old owner did not answer (asked again later)."""


UNREACHABLE = _Unreachable()


class _NotInView(_Unreachable):
    """The old owner is not a live peer of this node's view: not dialled (asked again later,
    so that it is asked once it joins; a coordinator that is no node has no peers)."""


NOT_IN_VIEW = _NotInView()


# -- the old owner's side ----------------------------------------------------------------


def answer(c: Coordinator, request: pb.SupersedeRequest, caller: Principal) -> pb.SupersedeReply:
    """Stop this peer's copy of the task ``request`` replaces, or answer with its result."""
    if caller.kind not in PEER_KINDS:
        raise RequestError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a {caller.kind} credential ({caller.id}) cannot supersede tasks: mesh peers only",
        )
    if not request.idempotency_key or not request.owner:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "an idempotency key and an owner")
    if request.journal_of:  # the old owner is gone: did this machine run its copy?
        found = journal_ask.answer(c, request)
        if found is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND, "no journaled result of this task here")
        return found
    record = c.store.by_idempotency_key(request.idempotency_key)
    new_id = request.by.rpartition("@")[0]
    if (
        record is None
        or record.owner != request.owner
        or (request.task_id and record.id != request.task_id)
        or record.id == new_id
        or _replaces_copy(record, new_id)  # newer than the asker's copy: it is the one kept
    ):
        # The same answer whether the key is unknown or someone else's.
        raise RequestError(grpc.StatusCode.NOT_FOUND, "no copy of this task here")
    active = c.active.get(record.id)
    if active is not None:
        log.info("task %s superseded by %s: cancelled", record.id, request.by)
        outcomes.stop_task(c, active, "CANCELLED", "superseded", f"superseded by {request.by}")
        return pb.SupersedeReply(state=pb.CANCELLED)
    log.info("task %s superseded by %s: it had ended %s", record.id, request.by, record.state)
    return pb.SupersedeReply(state=pb.TaskState.Value(record.state), final=final_result(record))


def _replaces_copy(record: TaskRecord, task_id: str) -> bool:
    old = superseded_copy(record.metadata.get(SUPERSEDES, ""))
    return old is not None and bool(old[0]) and old[0] == task_id


def replaces(existing: TaskRecord, task: pb.Task) -> bool:
    """Whether ``task``, a resubmitted copy with ``existing``'s idempotency key, replaces it.

    The editor resubmits only the copy it follows, so a copy here other than the one ``task``
    supersedes is older than both: this peer owned the task before, then it went to another
    peer, and now it comes back (the other peer left the editor's view). Unless it finished
    (its result is the answer) it must not be the answer: it was cancelled by the supersede, or
    is held, or runs while the other peer's ask may still cancel it. A resubmission repeated
    (the same ``SUPERSEDES``) is the same copy.
    """
    value = task.metadata.get(SUPERSEDES, "")
    old = superseded_copy(value)
    return (
        old is not None
        and bool(old[0])
        and old[0] != existing.id
        and existing.metadata.get(SUPERSEDES) != value
        and not is_answer(existing.state, existing.error_code)
    )


def retire(c: Coordinator, existing: TaskRecord, new_id: str) -> None:
    """Stop ``existing`` (if unfinished) and give up its idempotency key for ``new_id``."""
    active = c.active.get(existing.id)
    if active is not None:
        log.info("task %s replaced by its newer copy %s: cancelled", existing.id, new_id)
        outcomes.stop_task(c, active, "CANCELLED", "superseded", f"superseded by {new_id}")
        active.record.idempotency_key = None
    c.store.update(existing.id, idempotency_key=None)


# -- the new owner's side ----------------------------------------------------------------


class Supersedes:
    """The new copies waiting for (or having had) their old owner's answer."""

    def __init__(self, c: Coordinator) -> None:
        self.c = c
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._loopback: bool | None = None  # whether this peer listens on loopback

    def enqueue(self, active: ActiveTask) -> None:
        """Queue ``active``; one that replaces a copy on another peer asks that peer first."""
        record = active.record
        old = superseded_copy(record.metadata.get(SUPERSEDES, ""))
        if old is None or not record.idempotency_key or record.id in self.tasks:
            self.c.queues.push(active)
            return
        task = asyncio.ensure_future(self._supersede(active, *old))
        self.tasks[record.id] = task
        task.add_done_callback(lambda _: self.tasks.pop(record.id, None))

    async def stop(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _current(self, active: ActiveTask) -> bool:
        return self.c.active.get(active.record.id) is active and not active.record.terminal

    def _release(self, active: ActiveTask) -> None:
        if self._current(active):
            self.c.queues.push(active)
            self.c.schedule(active.record.role)

    async def _supersede(self, active: ActiveTask, old_id: str, old_owner: str) -> None:
        record = active.record
        if not await self.c.durable():  # nobody hears of the new copy before it is stored
            return  # the store failed: the coordinator stops
        if not self._current(active):
            return
        reply = await self._ask(active, old_id, old_owner)
        if not self._current(active):
            return  # cancelled (or at its deadline) while the old owner was asked
        if _adoptable(reply):
            self._adopt(active, reply.final, f"{old_id}@{old_owner}")
            return
        if not isinstance(reply, _Unreachable):
            self._release(active)
            return
        if await self._adopt_journaled(active, old_id, old_owner):
            pass  # still asked again below: a copy it held when it is back is cancelled
        elif reply is NOT_IN_VIEW:
            self._release(active)
            log.warning(
                "task %s: its old copy's owner %s is no live peer in this node's view: not "
                "dialled; running it here (it is asked if it joins)",
                record.id,
                old_owner,
            )
        else:
            self._release(active)
            log.warning(
                "task %s: its old copy's owner %s does not answer; running it here, asking again",
                record.id,
                old_owner,
            )
        pauses = iter(RETRY_S)
        while now_ms() < record.deadline_ms:
            await asyncio.sleep(next(pauses, RETRY_S[-1]))
            reply = await self._ask(active, old_id, old_owner)
            if isinstance(reply, _Unreachable):
                continue
            if _adoptable(reply):
                if self._current(active):
                    self._adopt(active, reply.final, f"{old_id}@{old_owner}")
                elif record.state == "SUCCEEDED" and ADOPTED not in record.result_stats:
                    log.warning(
                        "task %s completed on %s as well as here (it was cut off from every peer)",
                        old_id or record.idempotency_key,
                        old_owner,
                    )
            return

    async def _adopt_journaled(self, active: ActiveTask, old_id: str, old_owner: str) -> bool:
        """End ``active`` with its old copy's result if a machine journaled one (the old owner
        died before anyone heard it); False when none did (or ``active`` ended meanwhile)."""
        record = active.record
        request = pb.SupersedeRequest(
            task_id=old_id,
            idempotency_key=record.idempotency_key or "",
            owner=record.owner,
            by=f"{record.id}@{self.c.address}",
            journal_of=old_owner,
        )
        found = await journal_ask.find_finished(self.c, request, self._not_a_peer)
        if found is None or not self._current(active):
            return False
        final, where = found
        log.info(
            "task %s: its old copy finished for %s (journaled on %s)", record.id, old_owner, where
        )
        self._adopt(active, final, f"{old_id}@{old_owner}")
        return True

    async def _ask(
        self, active: ActiveTask, old_id: str, old_owner: str
    ) -> pb.SupersedeReply | _Unreachable | None:
        """The old owner's answer; UNREACHABLE (or NOT_IN_VIEW: not dialled); None when it
        refused (no such copy) or may never be dialled."""
        record = active.record
        swarm = self.c.settings.swarm
        request = pb.SupersedeRequest(
            task_id=old_id,
            idempotency_key=record.idempotency_key or "",
            owner=record.owner,
            by=f"{record.id}@{self.c.address}",
        )
        problem = self._not_a_peer(old_owner)
        if problem:
            log.warning("task %s: not asking %s to supersede: %s", record.id, old_owner, problem)
            return None
        if old_owner not in self.c.mesh_peers():
            # Only a member of the mesh is dialled with this peer's credentials: an address a
            # client names may be anything (a server of its own on this machine's loopback).
            return NOT_IN_VIEW
        try:
            channel = open_channel(
                old_owner, swarm, max_message_bytes=self.c.config.max_message_bytes
            )
        except SwarmError as err:
            log.warning(
                "task %s: cannot ask %s to supersede its copy: %s", record.id, old_owner, err
            )
            return None
        try:
            stub = pb_grpc.SwarmCoordinatorStub(channel)
            reply: pb.SupersedeReply = await stub.SupersedeTask(
                request, timeout=ASK_S, metadata=call_metadata(swarm)
            )
            return reply
        except grpc.aio.AioRpcError as err:
            if err.code() in _UNREACHABLE:
                return UNREACHABLE
            if err.code() != grpc.StatusCode.NOT_FOUND:
                log.warning(
                    "task %s: %s refused to supersede its copy: %s",
                    record.id,
                    old_owner,
                    err.details(),
                )
            return None
        finally:
            await channel.close()

    def _not_a_peer(self, old_owner: str) -> str:
        """Why ``old_owner`` (named by the client) is not dialled; empty when it may be.

        Only an ``ip:port`` (no name is resolved on the event loop: it is a client's text). A
        loopback address names this machine: a peer on a LAN address has no peer there (an
        editor's ``127.0.0.1:port`` meant its own machine), and whatever listens there (any
        local process with a certificate of the swarm's CA) would get this peer's call.
        """
        if old_owner == self.c.address:
            return "it is this peer"
        named = peer_ip_port(old_owner)
        if named is None:
            return "not an ip:port"
        try:
            check_peer(old_owner, self.c.settings.swarm.allowed_hosts)
        except SwarmError as err:
            return str(err)
        if named[0].is_loopback and not self._on_loopback():
            return "a loopback address, and this peer is not on loopback: no peer is there"
        return ""

    def _on_loopback(self) -> bool:
        if self._loopback is None:
            self._loopback = is_loopback_target(self.c.address)
        return self._loopback

    def _adopt(self, active: ActiveTask, final: pb.TaskResult, source: str) -> None:
        """End the new copy with the old copy's final result (stopping it if it runs)."""
        c, record = self.c, active.record
        if record.state == "RUNNING":
            session = c.sessions.holder(record.worker)
            if session is not None:
                session.send(
                    pb.CoordinatorMessage(
                        cancel=pb.CancelRequest(task_id=record.id, reason="superseded")
                    )
                )
        log.info("task %s returns the result of its old copy %s", record.id, source)
        record.worker, record.fallback = final.worker, final.fallback
        c.store.update(record.id, worker=record.worker, fallback=record.fallback)
        stats = {**final.stats, ADOPTED: source}
        if final.kind == pb.TaskResult.FINAL:
            outcomes.finish(c, active, "SUCCEEDED", text=final.text, data=final.data, stats=stats)
        else:
            outcomes.finish(
                c,
                active,
                "FAILED",
                data=final.data,
                stats=stats,
                error_code=final.error_code or "INTERNAL",
                error_message=final.text,
            )
