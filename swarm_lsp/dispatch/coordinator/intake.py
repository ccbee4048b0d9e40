"""Intake: accepting tasks — checked (admission), stored before the receipt, then queued.

Every accepted task is committed to SQLite before SubmitTask returns; a batch is accepted
with one commit, and nothing of it is handed to a worker before that commit.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

import grpc

from swarm_lsp.dispatch.coordinator import admission, status, supersede
from swarm_lsp.dispatch.coordinator.model import ActiveTask, RequestError, blobs_of
from swarm_lsp.dispatch.proto import swarm_pb2 as pb

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator


def submit(c: Coordinator, task: pb.Task, owner: str) -> pb.TaskReceipt:
    """Accept one task (committed before this returns), route it, answer with a receipt.

    ``owner``: the submitting credential's identity; only it (and operators) see the task.
    """
    accepted = accept(c, task, owner)
    if isinstance(accepted, pb.TaskReceipt):
        return accepted
    c.schedule(accepted.record.role)
    return status.receipt(c, accepted.record)


def submit_many(c: Coordinator, tasks: Iterable[pb.Task], owner: str) -> pb.SubmitOutcomes:
    """Accept several tasks with one commit, then route them; a receipt or error each.

    Nothing is handed to a worker before the commit: if it fails, none of the batch was
    accepted and each gets UNAVAILABLE.
    """
    answers: list[ActiveTask | pb.TaskReceipt | RequestError] = []
    try:
        with c.store.transaction():
            for task in tasks:
                try:
                    answers.append(accept(c, task, owner, commit=False))
                except RequestError as err:
                    answers.append(err)
    except sqlite3.Error as err:
        for answer in answers:
            if isinstance(answer, ActiveTask):
                forget(c, answer)
        refusal = f"the task store refused the batch: {err}"
        return pb.SubmitOutcomes(
            outcomes=[
                pb.SubmitOutcome(error_code="UNAVAILABLE", error_message=refusal) for _ in answers
            ]
        )
    c.schedule_roles(frozenset(a.record.role for a in answers if isinstance(a, ActiveTask)))
    outcomes = pb.SubmitOutcomes()
    for answer in answers:
        if isinstance(answer, RequestError):
            outcomes.outcomes.append(
                pb.SubmitOutcome(error_code=answer.code.name, error_message=str(answer))
            )
        elif isinstance(answer, ActiveTask):
            outcomes.outcomes.append(pb.SubmitOutcome(receipt=status.receipt(c, answer.record)))
        else:
            outcomes.outcomes.append(pb.SubmitOutcome(receipt=answer))
    return outcomes


def forget(c: Coordinator, active: ActiveTask) -> None:
    """Drop a task that was never stored (its batch did not commit)."""
    c.queues.discard(active)
    if active.deadline_timer is not None:
        active.deadline_timer.cancel()
    if c.active.pop(active.record.id, None) is not None:
        c.blobs.unpin(blobs_of(active.record))


def accept(
    c: Coordinator, task: pb.Task, owner: str, *, commit: bool = True
) -> ActiveTask | pb.TaskReceipt:
    """Check and store a task; a receipt instead when its idempotency key is known."""
    key = task.idempotency_key
    admission.check_idempotency_key(key)
    existing = c.store.by_idempotency_key(key) if key else None
    if existing is not None:
        if existing.owner != owner:
            raise RequestError(
                grpc.StatusCode.ALREADY_EXISTS, "another client used this idempotency key"
            )
        if not supersede.replaces(existing, task):
            current = c.active.get(existing.id)
            return status.receipt(c, current.record if current else existing, duplicate=True)
    c.keeper.added(len(task.context))
    c.keeper.check_room()
    # Pinned first, so no blob it names is pruned between the check and the lease.
    wanted = (
        [*task.snapshot.files.values(), task.context_dict_blob]
        if task.snapshot.files or task.context_dict_blob
        else []
    )
    if wanted:
        c.blobs.pin(wanted)
    try:
        record = admission.admit(
            task,
            routing=c.routing,
            blobs=c.blobs,
            max_context_bytes=c.max_context_bytes,
            max_snapshot_bytes=c.config.max_snapshot_bytes,
        )
        if task.id and (task.id in c.active or c.store.get(task.id) is not None):
            raise RequestError(grpc.StatusCode.ALREADY_EXISTS, f"task {task.id} exists")
        record.owner = owner
        if existing is not None:  # an older copy of this task: stopped, its key given up
            supersede.retire(c, existing, record.id)
        try:
            # Committed here (or by submit_many's transaction): from then on the task
            # survives a coordinator crash.
            c.store.insert(record)
        except sqlite3.Error as err:
            if not commit:
                raise
            raise RequestError(
                grpc.StatusCode.UNAVAILABLE, f"the task store refused the task: {err}"
            ) from err
    except BaseException:
        if wanted:
            c.blobs.unpin(wanted)
        raise
    active = ActiveTask(record)
    c.active[record.id] = active
    c.arm_deadline(active)
    c.supersedes.enqueue(active)  # queued, or first its old copy on another peer is stopped
    if c.store.pending():  # the receipt waits for the group commit; if it fails, so does this
        c.store.after_commit(functools.partial(c.unstored, active))
    return active
