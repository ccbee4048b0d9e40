"""Running one leased task: decode its context, lay out its snapshot, call the role, check
the result; and the messages a worker sends about it (partials, failure, completion).

Plain functions of the lease and the role handler: nothing here knows the session.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from swarm_lsp.dispatch import codec
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.security import DEFAULT_MAX_MESSAGE_BYTES
from swarm_lsp.dispatch.snapshot import BlobStore, SnapshotError, materialise
from swarm_lsp.errors import CompressionError, ResourceBusy, SwarmError
from swarm_lsp.workers.base import RoleHandler, TaskReporter, TaskRequest

log = logging.getLogger(__name__)

DEFAULT_RESULT_BYTES = DEFAULT_MAX_MESSAGE_BYTES // 4  # unless the coordinator says otherwise

FetchBlobs = Callable[[list[str]], Awaitable[dict[str, bytes]]]
Send = Callable[[pb.WorkerMessage], None]


class TaskFailure(SwarmError):
    """A task failed with a gRPC status code name the coordinator records."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class LeaseFence(TypedDict):
    """What names one attempt of a leased task in every report about it (the coordinator
    drops a report whose epoch or attempt is not the lease's)."""

    task_id: str
    attempt: int
    epoch: int


def lease_fence(lease: pb.LeaseTask) -> LeaseFence:
    """The lease's task id, attempt and epoch, for a report's request message."""
    return LeaseFence(task_id=lease.task.id, attempt=lease.attempt, epoch=lease.epoch)


class StreamReporter:
    """A TaskReporter that sends PartialResult messages through ``send``."""

    def __init__(self, send: Send, task_id: str, attempt: int, epoch: int = 0) -> None:
        self._send = send
        self._fence = LeaseFence(task_id=task_id, attempt=attempt, epoch=epoch)

    async def partial(self, text: str, data: dict[str, Any] | None = None) -> None:
        self._send(
            pb.WorkerMessage(
                partial=pb.PartialResult(
                    **self._fence,
                    kind=pb.TaskResult.PARTIAL,
                    text=text,
                    data=codec.dumps(data) if data is not None else b"",
                    percentage=-1,
                )
            )
        )

    async def progress(self, message: str, percentage: int | None = None) -> None:
        self._send(
            pb.WorkerMessage(
                partial=pb.PartialResult(
                    **self._fence,
                    kind=pb.TaskResult.PROGRESS,
                    text=message,
                    percentage=-1 if percentage is None else max(0, min(100, percentage)),
                )
            )
        )


async def _load_dictionary(
    task: pb.Task, blob_store: BlobStore | None, fetch: FetchBlobs | None
) -> None:
    """Fetch (once: it stays in the blob cache) and register the context's dictionary."""
    digest = task.context_dict_blob
    if not digest or blob_store is None or fetch is None:
        raise TaskFailure(
            "FAILED_PRECONDITION", f"task context needs zstd dictionary {task.context_dict_id}"
        )
    try:
        if not blob_store.has(digest):
            fetched = await fetch([digest])
            if digest not in fetched:
                raise SnapshotError("the coordinator does not have it")
            blob_store.put(digest, fetched[digest])
        codec.register_dictionary(blob_store.get(digest))
    except (SnapshotError, CompressionError) as err:
        raise TaskFailure("FAILED_PRECONDITION", f"zstd dictionary: {err}") from err


async def execute(
    lease: pb.LeaseTask,
    handler: RoleHandler,
    reporter: TaskReporter,
    *,
    cancel_event: asyncio.Event,
    max_payload_bytes: int,
    blob_store: BlobStore | None,
    fetch: FetchBlobs | None,
    work_root: Path,
    max_result_bytes: int = DEFAULT_RESULT_BYTES,
) -> tuple[str, bytes, dict[str, str]]:
    """Run one leased task with ``handler``; return (text, JSON data, stats).

    Raises TaskFailure with a status code name for anything that is not a success (a result
    larger than ``max_result_bytes`` too: sending it would break the session).
    """
    task = lease.task
    if task.context_dict_id and not codec.known_dictionary(task.context_dict_id):
        await _load_dictionary(task, blob_store, fetch)
    try:
        payload = codec.decode_payload(
            task.context, max_size=max_payload_bytes, dict_id=task.context_dict_id
        )
    except CompressionError as err:
        raise TaskFailure("INVALID_ARGUMENT", f"task context: {err}") from err
    stats: dict[str, str] = {}
    snapshot_dir: Path | None = None
    manifest = dict(task.snapshot.files)
    if manifest:
        if blob_store is None or fetch is None:
            raise TaskFailure("FAILED_PRECONDITION", "this runner has no blob cache for snapshots")
        snapshot_dir = work_root / f"{task.id}-{lease.attempt}"
        try:
            fetched, files = await materialise(manifest, snapshot_dir, blob_store, fetch)
        except SnapshotError as err:
            raise TaskFailure("FAILED_PRECONDITION", f"snapshot: {err}") from err
        stats["snapshot_files"] = str(files)
        stats["snapshot_fetched"] = str(fetched)
    request = TaskRequest(
        id=task.id,
        type=task.type,
        priority=task.priority or "background",
        complexity=task.complexity or "simple",
        payload=payload,
        metadata=dict(task.metadata),
        snapshot_dir=snapshot_dir,
        cancel_event=cancel_event,
    )
    try:
        result = await handler.run(request, reporter)
    except asyncio.CancelledError:
        if cancel_event.is_set():
            raise TaskFailure("CANCELLED", "cancelled") from None
        raise
    except TaskFailure:
        raise
    except ResourceBusy as err:
        # Another process holds what the task needs: give the task back (not a failure).
        raise TaskFailure("UNAVAILABLE", str(err), retryable=True) from err
    except SwarmError as err:
        raise TaskFailure("INTERNAL", f"{type(err).__name__}: {err}") from err
    except Exception as err:
        log.exception("task %s failed in role %s", task.id, lease.role)
        raise TaskFailure("INTERNAL", f"{type(err).__name__}: {err}") from err
    finally:
        if snapshot_dir is not None:
            await asyncio.to_thread(shutil.rmtree, snapshot_dir, True)
    if cancel_event.is_set():
        raise TaskFailure("CANCELLED", "cancelled")
    if not isinstance(result, dict):
        raise TaskFailure("INTERNAL", f"role {lease.role!r} returned {type(result).__name__}")
    try:
        data = codec.dumps(result)
    except (TypeError, ValueError) as err:
        raise TaskFailure("INTERNAL", f"role {lease.role!r} result is not JSON: {err}") from err
    text = result.get("text")
    text = text if isinstance(text, str) else ""
    size = len(text.encode("utf-8", "replace")) + len(data)
    if size > max_result_bytes:
        raise TaskFailure(
            "RESOURCE_EXHAUSTED",
            f"role {lease.role!r} produced a result of {size} bytes, more than the coordinator "
            f"accepts ({max_result_bytes}); a task should return less (e.g. write big output "
            "to a file it names)",
        )
    return text, data, stats


def failure_message(
    lease: pb.LeaseTask, code: str, message: str, *, retryable: bool = False
) -> pb.WorkerMessage:
    """The worker's report that the leased task failed with ``code``."""
    return pb.WorkerMessage(
        fail=pb.FailRequest(**lease_fence(lease), code=code, message=message, retryable=retryable)
    )


def completion_message(
    lease: pb.LeaseTask, text: str, data: bytes, stats: dict[str, str], run_ms: int
) -> pb.WorkerMessage:
    """The worker's report that the leased task succeeded."""
    return pb.WorkerMessage(
        complete=pb.CompleteRequest(
            **lease_fence(lease), text=text, data=data, stats=stats, run_ms=run_ms
        )
    )
