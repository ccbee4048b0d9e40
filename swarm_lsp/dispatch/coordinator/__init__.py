"""The coordinator: accepts tasks, stores them durably, routes them to workers, follows them.

| module | job |
| --- | --- |
| `core` | `Coordinator`: a task's life from acceptance to its one final result |
| `admission` | every check a task passes before it is accepted (stored) |
| `scheduler` | which runner gets a task: a pure function of the task and the runners |
| `queues` | waiting tasks per role, by priority then age |
| `sessions` | connected workers, their heartbeats |
| `results` | publishing results to followers; finished tasks' results |
| `local` | the local fallback (role handlers run in this process) |
| `blobs` | snapshot blobs: PutBlobs, GetBlobs, HasBlobs |
| `status` | receipts, task status, swarm status, wait estimates |
| `servicers` | the gRPC servicers and `create_server(coordinator, listen) -> (server, port)` |
"""

from swarm_lsp.dispatch.coordinator.core import Coordinator
from swarm_lsp.dispatch.coordinator.model import (
    LOCAL_WORKER,
    ActiveTask,
    CoordinatorConfig,
    RequestError,
    WorkerSession,
)
from swarm_lsp.dispatch.coordinator.servicers import (
    CoordinatorServicer,
    WorkerServicer,
    create_server,
)

__all__ = [
    "LOCAL_WORKER",
    "ActiveTask",
    "Coordinator",
    "CoordinatorConfig",
    "CoordinatorServicer",
    "RequestError",
    "WorkerServicer",
    "WorkerSession",
    "create_server",
]
