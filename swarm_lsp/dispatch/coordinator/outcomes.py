"""What becomes of a leased task: partial results, completion, failure, requeue, its one
final state, deadlines and cancellation.

Functions of the :class:`Coordinator` (``c``), which keeps thin methods for the ones its
servicers and tests call. A result is applied at most once: only the worker holding the
current attempt's lease (attempt and epoch) can finish a task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import grpc

from swarm_lsp.dispatch.coordinator import activity
from swarm_lsp.dispatch.coordinator.latency import identity_of
from swarm_lsp.dispatch.coordinator.model import ActiveTask, RequestError, WorkerSession, blobs_of
from swarm_lsp.dispatch.coordinator.results import final_result
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.store import TaskRecord, now_ms

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

log = logging.getLogger("swarm_lsp.dispatch.coordinator.core")

LOCAL_RETRY_S = 5.0  # a role the local fallback gave back is offered to it again after this


def current_lease(
    c: Coordinator, session: WorkerSession, task_id: str, attempt: int, epoch: int, what: str = ""
) -> ActiveTask | None:
    """The task if ``session`` holds its current lease (attempt and epoch), else None.

    A refused completion or failure (``what``) of a task that is still live under another
    lease is logged: it comes from a fenced-off or superseded lease.
    """
    active = c.active.get(task_id)
    if (
        session.running.get(task_id) != attempt
        or active is None
        or active.record.state != "RUNNING"
        or active.record.attempt != attempt
        or active.epoch != epoch
    ):
        if what and active is not None and active.epoch != epoch:
            log.warning(
                "refused a %s of task %s from %s: epoch %d is not the current lease's (%s)",
                what,
                task_id,
                session.name,
                epoch,
                active.epoch,
            )
        return None
    return active


def on_partial(c: Coordinator, session: WorkerSession, message: pb.PartialResult) -> None:
    active = current_lease(c, session, message.task_id, message.attempt, message.epoch)
    if active is None:
        return
    active.sequence += 1
    if message.percentage >= 0:
        active.percentage = message.percentage
    text, data = message.text, message.data
    size = len(text) + len(data)
    if size > c.max_result_bytes:
        text, data = f"(a partial result of {size} bytes was dropped: too large)", b""
    c.results.publish(
        active,
        pb.TaskResult(
            task_id=message.task_id,
            kind=message.kind or pb.TaskResult.PARTIAL,
            text=text,
            data=data,
            sequence=active.sequence,
            attempt=message.attempt,
            worker=session.name,
            fallback=active.record.fallback,
            percentage=message.percentage,
            state=pb.RUNNING,
            eta_ms=activity.eta_ms(c, active, active.percentage),
        ),
    )


def release(
    c: Coordinator, session: WorkerSession, task_id: str, attempt: int, epoch: int | None = None
) -> None:
    """Free ``session``'s slot for ``task_id`` (not for a message from another lease)."""
    active = c.active.get(task_id)
    if (
        epoch is not None
        and active is not None
        and active.epoch != epoch
        and active.record.state == "RUNNING"
        and active.record.attempt == attempt
    ):
        return  # the session's current lease of this task is still running
    if session.running.get(task_id) == attempt:
        del session.running[task_id]
        session.leased_at.pop(task_id, None)


def on_complete(c: Coordinator, session: WorkerSession, message: pb.CompleteRequest) -> None:
    active = current_lease(
        c, session, message.task_id, message.attempt, message.epoch, "completion"
    )
    release(c, session, message.task_id, message.attempt, message.epoch)
    if active is not None:
        session.completed += 1
        record = active.record
        elapsed = max(1, now_ms() - record.started_ms)
        if not session.local:
            c.estimates.completed(
                identity_of(session),
                record.role,
                (time.monotonic() - active.leased_at) * 1000,
                float(message.run_ms),
            )
        previous = c.avg_ms.get(record.role)
        c.avg_ms[record.role] = elapsed if previous is None else 0.8 * previous + 0.2 * elapsed
        size = len(message.text) + len(message.data)
        if size > c.max_result_bytes:
            finish(
                c,
                active,
                "FAILED",
                error_code="RESOURCE_EXHAUSTED",
                error_message=f"the result is {size} bytes, more than the coordinator "
                f"accepts ({c.max_result_bytes}, max_result_bytes)",
            )
        else:
            finish(
                c,
                active,
                "SUCCEEDED",
                text=message.text,
                data=message.data,
                stats=dict(message.stats),
            )
    c.schedule_roles(session.roles)


def on_fail(c: Coordinator, session: WorkerSession, message: pb.FailRequest) -> None:
    active = current_lease(c, session, message.task_id, message.attempt, message.epoch, "failure")
    release(c, session, message.task_id, message.attempt, message.epoch)
    if active is not None:
        if message.retryable and session.local:
            hold_off_local(c, active, message.message)
        elif message.retryable:
            requeue(c, active, f"{session.name} gave it back: {message.message}")
        else:
            code = message.code or "INTERNAL"
            state = {"CANCELLED": "CANCELLED", "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED"}.get(
                code, "FAILED"
            )
            finish(c, active, state, error_code=code, error_message=message.message)
    c.schedule_roles(session.roles)


def hold_off_local(c: Coordinator, active: ActiveTask, reason: str) -> None:
    """The local fallback gave a task back: another process on this machine (a worker
    whose session ended a moment ago, say) holds what it needs. The task waits for that
    worker, not counted as a lost runner; the fallback gets no task of the role until a
    worker registers or goes (the holder back, or gone and its hold with it), or
    LOCAL_RETRY_S pass (a holder outside the swarm, such as a one-shot CLI run)."""
    role = active.record.role
    c.local_held_off.add(role)
    asyncio.get_running_loop().call_later(LOCAL_RETRY_S, retry_local, c, role)
    requeue(c, active, f"the local fallback gave it back: {reason}", lost=False)


def retry_local(c: Coordinator, role: str) -> None:
    if role in c.local_held_off:
        c.local_held_off.discard(role)
        c.schedule(role)


def requeue(c: Coordinator, active: ActiveTask, reason: str, *, lost: bool = True) -> None:
    """Back to the queue after losing its runner; a task that keeps losing them fails.

    Only losses while this coordinator runs count: a coordinator restart is not the
    task's fault, so a task survives any number of them.
    """
    record = active.record
    active.losses += lost
    if active.losses >= c.config.max_attempts:
        finish(
            c,
            active,
            "FAILED",
            error_code="UNAVAILABLE",
            error_message=f"gave up after losing {active.losses} runners; last: {reason}",
        )
        return
    record.state = "QUEUED"
    record.worker = ""
    record.fallback = ""
    active.percentage = -1
    c.store.update(
        record.id,
        **{
            **c.keeper.start_fields(record.id),
            "state": "QUEUED",
            "worker": "",
            "fallback": "",
        },
    )
    active.sequence += 1
    c.results.publish(
        active,
        pb.TaskResult(
            task_id=record.id,
            kind=pb.TaskResult.PROGRESS,
            text=f"requeued: {reason}",
            sequence=active.sequence,
            attempt=record.attempt,
            percentage=-1,
            state=pb.QUEUED,
        ),
    )
    c.queues.push(active)


def finish(
    c: Coordinator,
    active: ActiveTask,
    state: str,
    *,
    text: str = "",
    data: bytes = b"",
    stats: dict[str, str] | None = None,
    error_code: str = "",
    error_message: str = "",
) -> None:
    """Apply a task's terminal state once: store it, tell subscribers, forget it."""
    record = active.record
    if record.terminal:
        return
    c.queues.discard(active)
    c.held.discard(record.id)
    record.state = state
    record.finished_ms = now_ms()
    record.result_text = text
    record.result_data = data
    record.result_stats = stats or {}
    record.error_code = error_code
    record.error_message = error_message
    record.context = b""  # only a task that may still run needs its context
    c.keeper.added(len(text) + len(data))
    c.store.update(
        record.id,
        **c.keeper.start_fields(record.id),
        context=b"",
        state=state,
        finished_ms=record.finished_ms,
        result_text=text,
        result_data=data,
        result_stats=record.result_stats,
        error_code=error_code,
        error_message=error_message,
    )
    if active.deadline_timer is not None:
        active.deadline_timer.cancel()
    active.sequence += 1
    final = final_result(record, active.sequence)
    c.results.publish(active, final)
    del c.active[record.id]
    if record.manifest or record.context_dict_blob:
        c.blobs.unpin(blobs_of(record))
    c.results.remember(active, final)


def arm_deadline(c: Coordinator, active: ActiveTask) -> None:
    delay = max(0.0, (active.record.deadline_ms - now_ms()) / 1000)
    loop = asyncio.get_running_loop()
    active.deadline_timer = loop.call_later(delay, on_deadline, c, active.record.id)


def on_deadline(c: Coordinator, task_id: str) -> None:
    active = c.active.get(task_id)
    if active is None:
        return
    stop_task(c, active, "DEADLINE_EXCEEDED", "deadline", deadline_message(active.record))


def cancel(c: Coordinator, task_id: str) -> None:
    active = c.active.get(task_id)
    if active is None:
        if c.store.get(task_id) is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        return  # already finished: cancelling is a no-op
    stop_task(c, active, "CANCELLED", "cancelled", "cancelled by the client")


def stop_task(c: Coordinator, active: ActiveTask, state: str, reason: str, message: str) -> None:
    record = active.record
    if record.state == "RUNNING":
        session = c.sessions.holder(record.worker)
        if session is not None:
            # The slot stays taken until the worker says its handler has stopped.
            session.send(
                pb.CoordinatorMessage(cancel=pb.CancelRequest(task_id=record.id, reason=reason))
            )
    finish(c, active, state, error_code=state, error_message=message)


def deadline_message(record: TaskRecord) -> str:
    """Why a task was stopped at its deadline: the route's timeout, or the client's own."""
    allowed = record.deadline_ms - record.submitted_ms
    timeout = int(record.route.get("timeout_ms", 0))
    if allowed == timeout:
        return f"the task's deadline passed (the route's {timeout} ms timeout)"
    return (
        f"the task's deadline passed ({allowed} ms after it was submitted: the deadline its "
        f"client set; the route's timeout is {timeout} ms)"
    )
