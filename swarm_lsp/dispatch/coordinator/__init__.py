"""The coordinator: accepts tasks, stores them durably, routes them to workers, follows them.

| module | job |
| --- | --- |
| `core` | `Coordinator`: its state, start-up and recovery, handing tasks to runners |
| `outcomes` | what becomes of a lease: results, requeue, the one final state, deadlines, cancel |
| `worker_events` | worker registration (never evicting), heartbeats, a lost worker's leases |
| `intake` | accepting tasks: checked, committed before the receipt, queued |
| `admission` | every check a task passes before it is accepted (stored) |
| `scheduler` | which runner gets a task: a pure function of the task and the runners |
| `queues` | waiting tasks per role, by priority then age |
| `bookkeeping` | the task store's upkeep: batched starts, pruning, the size quota |
| `sessions` | connected workers, their heartbeats |
| `results` | publishing results to followers; finished tasks' results |
| `fallback` | the local fallback: a worker process the coordinator starts (lower preference) |
| `identity` | the principal a call speaks for (token, certificate, shared token) |
| `blobs` | snapshot blobs: PutBlobs, GetBlobs, HasBlobs |
| `status` | receipts, task status, swarm status, wait estimates |
| `activity` | tasks in flight with their ETA (dashboard, editor) |
| `fencing` | lease epochs: a task never runs on two workers at once |
| `latency` | per-identity service-time estimates (latency-aware routing) |
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
