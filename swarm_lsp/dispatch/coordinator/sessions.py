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
from swarm_lsp.dispatch.credentials import ANONYMOUS, Principal
from swarm_lsp.dispatch.proto import swarm_pb2 as pb
from swarm_lsp.dispatch.routing import model_size_rank

log = logging.getLogger(__name__)

MAX_CAPACITY = 64  # slots one worker may claim, unless configured otherwise


class SessionTable:
    def __init__(self) -> None:
        self.workers: dict[str, WorkerSession] = {}  # session id -> session

    def __iter__(self) -> Iterator[WorkerSession]:
        return iter(list(self.workers.values()))  # a copy: callers drop sessions meanwhile

    def __len__(self) -> int:
        return len(self.workers)

    def new_session(
        self,
        request: pb.RegisterRequest,
        peer: str,
        principal: Principal = ANONYMOUS,
        max_capacity: int = MAX_CAPACITY,
    ) -> WorkerSession:
        """A session for ``request`` as its credential allows it, not yet in the table.

        A worker credential registers under its own name only, for the task roles it allows,
        with at most the capacity it (or the coordinator's configuration) allows.
        """
        if not principal.can_work:
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a {principal.kind} credential ({principal.id}) cannot register as a worker",
            )
        if not request.roles:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "a worker needs a role")
        for size in request.model_sizes:
            if model_size_rank(size) == 0:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"bad model size {size!r}")
        if request.fallback and principal.source != "local":
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                "only the coordinator's own local worker registers as the fallback",
            )
        name = request.name or principal.name or f"worker-{len(self.workers) + 1}"
        if principal.fixed_name and name != principal.name:
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this credential is worker {principal.name!r}; it cannot register as {name!r}",
            )
        roles = frozenset(request.roles)
        if principal.task_roles is not None and not roles <= principal.task_roles:
            refused = ", ".join(sorted(roles - principal.task_roles))
            raise RequestError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"worker {name!r} may not run {refused} (its credential allows "
                f"{', '.join(sorted(principal.task_roles)) or 'no role'})",
            )
        cap = min(max_capacity, principal.max_capacity or max_capacity)
        return WorkerSession(
            id=uuid.uuid4().hex,
            name=name,
            host=request.host,
            roles=roles,
            model_sizes=tuple(request.model_sizes),
            capacity=max(1, min(request.capacity or 1, cap)),
            peer=peer,
            identity=principal.id if principal.fixed_name or request.fallback else f"name:{name}",
            local=request.fallback,
        )

    def live(self, identity: str, now: float, timeout_s: float) -> WorkerSession | None:
        """A session of ``identity`` whose heartbeats are still current."""
        return next(
            (
                w
                for w in self.workers.values()
                if w.identity == identity and now - w.last_heartbeat <= timeout_s
            ),
            None,
        )

    def of_identity(self, identity: str) -> list[WorkerSession]:
        return [w for w in self.workers.values() if w.identity == identity]

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
