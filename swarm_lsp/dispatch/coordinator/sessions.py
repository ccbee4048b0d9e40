"""Worker sessions: who is connected, what each may run, whose heartbeats stopped.

A session lives as long as its Connect stream and its heartbeats; the coordinator core decides
what happens to the leases of a session that ends (they go back to the queue).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import grpc

from swarm_lsp.dispatch.coordinator.model import RequestError, WorkerSession
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.routing import model_size_rank

log = logging.getLogger(__name__)

MAX_CAPACITY = 1024


class SessionTable:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerSession] = {}  # session id -> session

    def __iter__(self) -> Iterator[WorkerSession]:
        return iter(list(self.workers.values()))  # a copy: callers drop sessions meanwhile

    def __len__(self) -> int:
        return len(self.workers)

    def new_session(self, request: pb.RegisterRequest, peer: str) -> WorkerSession:
        """A session for ``request`` (checked), not yet in the table."""
        if not request.roles:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "a worker needs a role")
        for size in request.model_sizes:
            if model_size_rank(size) == 0:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"bad model size {size!r}")
        return WorkerSession(
            id=uuid.uuid4().hex,
            name=request.name or f"worker-{len(self.workers) + 1}",
            host=request.host,
            roles=frozenset(request.roles),
            model_sizes=tuple(request.model_sizes),
            capacity=max(1, min(request.capacity or 1, MAX_CAPACITY)),
            peer=peer,
        )

    def named(self, name: str) -> list[WorkerSession]:
        return [w for w in self.workers.values() if w.name == name]

    def add(self, session: WorkerSession) -> None:
        self.workers[session.id] = session
        log.info("worker %s registered: roles %s", session.name, sorted(session.roles))

    def remove(self, session: WorkerSession) -> bool:
        """Take ``session`` out of the table; False when it was already gone."""
        return self.workers.pop(session.id, None) is not None

    def expired(self, now: float, timeout_s: float) -> list[WorkerSession]:
        """Sessions whose last heartbeat is older than ``timeout_s``."""
        return [w for w in self.workers.values() if now - w.last_heartbeat > timeout_s]

    def holder(self, name: str) -> WorkerSession | None:
        return next((w for w in self.workers.values() if w.name == name), None)
