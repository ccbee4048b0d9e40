"""Results: publishing a task's results to its followers, and remembering finished ones.

Partial results of a running task are kept (up to a limit) so a late follower sees them;
a finished task's results stay in memory for a while, then only its final result (from the
store) is available. Both are bounded in count and in bytes: memory does not grow with the
size of what workers send.
"""

from __future__ import annotations

import asyncio
import collections

from swarm_lsp.dispatch.coordinator.model import ActiveTask
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.store import TaskRecord, TaskStore

HISTORY_LIMIT = 512  # partial results kept per running task
HISTORY_BYTES = 4 * 1024 * 1024  # ... and their bytes
FINISHED_HISTORY_TASKS = 1000  # finished tasks whose results stay in memory
FINISHED_HISTORY_BYTES = 64 * 1024 * 1024  # ... and their bytes
TERMINAL_KINDS = (pb.TaskResult.FINAL, pb.TaskResult.ERROR)


def final_result(record: TaskRecord, sequence: int = 0) -> pb.TaskResult:
    """The FINAL (or ERROR) result of a finished task, from its record."""
    ok = record.state == "SUCCEEDED"
    return pb.TaskResult(
        task_id=record.id,
        kind=pb.TaskResult.FINAL if ok else pb.TaskResult.ERROR,
        text=record.result_text if ok else record.error_message,
        data=record.result_data,
        sequence=sequence,
        attempt=record.attempt,
        worker=record.worker,
        fallback=record.fallback,
        percentage=100 if ok else -1,
        state=pb.TaskState.Value(record.state),
        error_code="" if ok else record.error_code,
        stats=record.result_stats,
    )


def not_found(task_id: str) -> pb.TaskResult:
    return pb.TaskResult(
        task_id=task_id,
        kind=pb.TaskResult.ERROR,
        text=f"no task {task_id!r}",
        error_code="NOT_FOUND",
        percentage=-1,
    )


class ResultLog:
    def __init__(self) -> None:
        # task id -> (its results, their bytes, its owner)
        self._finished: collections.OrderedDict[str, tuple[list[pb.TaskResult], int, str]] = (
            collections.OrderedDict()
        )
        self._finished_bytes = 0

    @staticmethod
    def publish(active: ActiveTask, result: pb.TaskResult) -> None:
        size = len(result.text) + len(result.data)
        partial = result.kind in (pb.TaskResult.PARTIAL, pb.TaskResult.PROGRESS)
        if (
            partial
            and len(active.history) < HISTORY_LIMIT
            and active.history_bytes + size <= HISTORY_BYTES
        ):
            active.history.append(result)
            active.history_bytes += size
        for queue in active.subscribers:
            queue.put_nowait(result)

    def remember(self, active: ActiveTask, final: pb.TaskResult) -> None:
        """Late followers still get the partial results of a task that finished a moment ago."""
        size = active.history_bytes + len(final.text) + len(final.data)
        self._finished[active.record.id] = ([*active.history, final], size, active.record.owner)
        self._finished_bytes += size
        while self._finished and (
            len(self._finished) > FINISHED_HISTORY_TASKS
            or self._finished_bytes > FINISHED_HISTORY_BYTES
        ):
            _, (_, dropped, _) = self._finished.popitem(last=False)
            self._finished_bytes -= dropped

    def finished(self, task_id: str) -> list[pb.TaskResult]:
        """Every result of a task that finished recently (empty if not remembered)."""
        entry = self._finished.get(task_id)
        return entry[0] if entry is not None else []

    def finished_owner(self, task_id: str) -> str | None:
        """The owner of a task that finished recently (None if not remembered)."""
        entry = self._finished.get(task_id)
        return entry[2] if entry is not None else None

    def follow(
        self,
        task_id: str,
        active: ActiveTask | None,
        store: TaskStore,
        queue: asyncio.Queue[pb.TaskResult | None],
    ) -> None:
        """Send ``task_id``'s results so far, then every new one, to ``queue``."""
        if active is not None:
            for result in active.history:
                queue.put_nowait(result)
            active.subscribers.add(queue)
            return
        for result in self.finished(task_id):
            queue.put_nowait(result)
            if result.kind in TERMINAL_KINDS:
                return
        record = store.get(task_id)
        queue.put_nowait(not_found(task_id) if record is None else final_result(record))
