"""The local fallback: the coordinator runs a role itself when no worker for it is connected.

Role handlers run in this process (results marked ``fallback: local``). The session it
reports through is an ordinary :class:`WorkerSession` marked ``local``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.coordinator.model import LOCAL_WORKER, WorkerSession
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.snapshot import BlobStore
from swarm_lsp.errors import SwarmError

if TYPE_CHECKING:
    from swarm_lsp.dispatch.coordinator.core import Coordinator

log = logging.getLogger(__name__)


def local_session(enabled: bool, capacity: int) -> WorkerSession:
    from swarm_lsp.workers.registry import known_roles, role_available

    roles = frozenset(r for r in known_roles() if role_available(r)) if enabled else frozenset()
    return WorkerSession(
        id=LOCAL_WORKER,
        name=LOCAL_WORKER,
        host="",
        roles=roles,
        model_sizes=(),
        capacity=max(1, capacity),
        local=True,
    )


class LocalRunner:
    """Runs leases given to the local session with the roles' own handlers."""

    def __init__(
        self,
        coordinator: Coordinator,
        session: WorkerSession,
        settings: Settings,
        state_dir: Path,
        max_payload_bytes: int,
    ) -> None:
        self.c = coordinator
        self.session = session
        self.settings = settings
        self.state_dir = state_dir
        self.max_payload_bytes = max_payload_bytes
        self.errors: dict[str, str] = {}  # role -> why it could not be loaded here
        self._handlers: dict[str, Any] = {}
        self._blob_store = BlobStore(state_dir / "local-blobs")

    def _handler(self, role: str) -> Any:
        handler = self._handlers.get(role)
        if handler is None:
            from swarm_lsp.workers.registry import load_role

            handler = load_role(role, self.settings)
            self._handlers[role] = handler
        return handler

    async def run(self, lease: pb.LeaseTask, cancel: asyncio.Event) -> None:
        from swarm_lsp.workers.runtime import StreamReporter, TaskFailure, execute

        c, session = self.c, self.session
        task_id, attempt = lease.task.id, lease.attempt

        def send(message: pb.WorkerMessage) -> None:
            if message.HasField("partial"):
                c.on_partial(session, message.partial)

        async def fetch(hashes: list[str]) -> dict[str, bytes]:
            return {h: c.blobs.get(h) for h in hashes if c.blobs.has(h)}

        try:
            try:
                handler = self._handler(lease.role)
            except SwarmError as err:
                self.errors[lease.role] = str(err)
                raise TaskFailure("FAILED_PRECONDITION", str(err)) from err
            text, data, stats = await execute(
                lease,
                handler,
                StreamReporter(send, task_id, attempt, lease.epoch),
                cancel_event=cancel,
                max_payload_bytes=self.max_payload_bytes,
                blob_store=self._blob_store,
                fetch=fetch,
                work_root=self.state_dir / "local-tasks",
                max_result_bytes=c.max_result_bytes,
            )
        except TaskFailure as failure:
            c.on_fail(
                session,
                pb.FailRequest(
                    task_id=task_id,
                    attempt=attempt,
                    code=failure.code,
                    message=str(failure),
                    epoch=lease.epoch,
                ),
            )
            return
        except asyncio.CancelledError:
            c.release(session, task_id, attempt)
            raise
        except Exception as err:  # a bug must fail this task, not keep its slot for good
            log.exception("local fallback: task %s failed", task_id)
            c.on_fail(
                session,
                pb.FailRequest(
                    task_id=task_id,
                    attempt=attempt,
                    code="INTERNAL",
                    message=f"{type(err).__name__}: {err}",
                ),
            )
            return
        stats["fallback"] = "local"
        c.on_complete(
            session,
            pb.CompleteRequest(
                task_id=task_id,
                attempt=attempt,
                text=text,
                data=data,
                stats=stats,
                epoch=lease.epoch,
            ),
        )
