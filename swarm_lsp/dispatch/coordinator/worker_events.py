"""Worker sessions as the coordinator sees them: registration (never evicting a live
session), heartbeats and their acknowledgements, and a lost worker's leases (fenced: handed
on no sooner than the lease timeout after its last message).

Functions of the :class:`Coordinator` (``c``), which keeps thin methods for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import grpc

from swarm_lsp.dispatch.coordinator import outcomes
from swarm_lsp.dispatch.coordinator.latency import identity_of
from swarm_lsp.dispatch.coordinator.model import RequestError, WorkerSession
from swarm_lsp.dispatch.credentials import ANONYMOUS, Principal
from swarm_lsp.dispatch.proto import swarm_pb2 as pb

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

log = logging.getLogger("swarm_lsp.dispatch.coordinator.core")


def register_worker(
    c: Coordinator, request: pb.RegisterRequest, peer: str, principal: Principal = ANONYMOUS
) -> WorkerSession:
    """A new session, unless its identity already has a live one (never evicted).

    A session whose heartbeats stopped for the lease timeout is dead: it goes, and the
    new one takes its place (a worker reconnecting after a cut link).
    """
    session = c.sessions.new_session(request, peer, principal, c.config.max_worker_capacity)
    now = time.monotonic()
    live = c.sessions.live(session.identity, now, c.config.lease_timeout_ms / 1000)
    if live is not None:
        raise RequestError(
            grpc.StatusCode.ALREADY_EXISTS,
            f"worker {session.name!r} already has a live session (from {live.peer or '?'}, "
            f"last heartbeat {int((now - live.last_heartbeat) * 1000)} ms ago); a second "
            "one is refused until that one ends or misses its heartbeats for "
            f"{c.config.lease_timeout_ms} ms",
        )
    for old in c.sessions.of_identity(session.identity):
        drop_worker(c, old, "its heartbeats stopped; a new session replaced it")
    c.sessions.add(session)
    if session.local:
        c.local = session
        if c.local_worker is not None:
            c.local_worker.registered.set()
    return session


def start_worker(c: Coordinator, session: WorkerSession) -> None:
    if not session.local:
        c.local_held_off -= session.roles  # it may be the holder, back
    c.schedule_roles(session.roles)


def on_heartbeat(c: Coordinator, session: WorkerSession, message: pb.Heartbeat) -> None:
    session.last_heartbeat = time.monotonic()
    session.load = message.load
    was_draining, was_elsewhere = session.draining, session.elsewhere
    session.draining = message.draining
    # Slots of its machine that the machine's other workers hold (a mesh node's workers share
    # one capacity): counted as taken here; freed ones may take queued work at once.
    session.elsewhere = max(0, min(message.busy_elsewhere, session.capacity))
    if message.rtt_ms > 0:
        c.estimates.round_trip(identity_of(session), float(message.rtt_ms))
    stale = [task_id for task_id in message.running if task_id not in session.running]
    # Every heartbeat is answered: the worker's fence timer runs on these answers.
    session.send(
        pb.CoordinatorMessage(
            heartbeat_ack=pb.HeartbeatAck(cancel=stale, sequence=message.sequence)
        )
    )
    # A lease the worker no longer lists, though it has had time to start it, ended
    # without a report (a worker bug, a crashed handler): free the slot and retry.
    listed = set(message.running)
    started_before = session.last_heartbeat - c.config.lease_timeout_ms / 1000
    lost = [
        task_id
        for task_id, leased in session.leased_at.items()
        if task_id not in listed and leased < started_before
    ]
    for task_id in lost:
        lose(c, session, task_id, "it stopped running the task without a report")
    if lost or (was_draining and not session.draining) or session.elsewhere < was_elsewhere:
        c.schedule_roles(session.roles)


def lose(
    c: Coordinator, session: WorkerSession, task_id: str, reason: str, hold: float = 0.0
) -> None:
    """``session`` no longer runs ``task_id``: free its slot, requeue the task.

    ``hold`` (seconds): requeue only then (fencing: the worker may still be stopping it).
    """
    attempt = session.running.pop(task_id, None)
    session.leased_at.pop(task_id, None)
    active = c.active.get(task_id)
    if (
        attempt is not None
        and active is not None
        and active.record.attempt == attempt
        and active.record.state == "RUNNING"
    ):
        why = f"worker {session.name} lost ({reason})"
        if hold > 0:  # the local worker too: it is a process like any other
            asyncio.get_running_loop().call_later(
                hold, requeue_if_current, c, task_id, active.epoch, why
            )
        else:
            outcomes.requeue(c, active, why)


def drop_worker(c: Coordinator, session: WorkerSession, reason: str) -> None:
    if not c.sessions.remove(session):
        return
    if session is c.local:
        c.local = None
        if c.local_worker is not None:
            c.local_worker.registered.clear()
    session.outbox.put_nowait(None)
    # Fencing: the worker may not know yet that it is lost (a session can end on this side
    # first); it stops its tasks within fence_ms of its last acknowledged heartbeat, so its
    # tasks go to others no sooner than lease_timeout_ms after its last message.
    hold = session.last_heartbeat + c.config.lease_timeout_ms / 1000 - time.monotonic()
    for task_id in list(session.running):
        lose(c, session, task_id, reason, hold=hold)
    if not session.local:
        c.local_held_off -= session.roles  # if it has exited, its hold went with it
    c.schedule_all()


def requeue_if_current(c: Coordinator, task_id: str, epoch: int, reason: str) -> None:
    """Requeue a lost worker's task once its fence has passed, unless it ended meanwhile."""
    active = c.active.get(task_id)
    if active is not None and active.epoch == epoch and active.record.state == "RUNNING":
        outcomes.requeue(c, active, reason)
        c.schedule(active.record.role)
