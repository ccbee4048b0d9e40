"""The dispatch client the LSP server uses: submit tasks, follow results, cancel, ask status.

| module | job |
| --- | --- |
| `core` | `DispatchClient`: the connection, and the calls that need no state |
| `submit` | submits: pipelined over a shared SubmitStream, or unary |
| `watch` | following results over a shared WatchResults stream, across restarts |
| `uploads` | snapshot blobs and zstd dictionaries, only what the coordinator lacks |
| `types` | receipts, results, task and swarm status; `RpcFailure` |
"""

from swarm_lsp.dispatch.client.core import CALL_TIMEOUT_S, CONNECT_TIMEOUT_S, DispatchClient
from swarm_lsp.dispatch.client.types import (
    Machine,
    Receipt,
    Result,
    RpcFailure,
    SwarmStatus,
    TaskInfo,
    TaskSummary,
)
from swarm_lsp.dispatch.client.watch import (
    REACHABLE,
    RESULTS_RECONNECT_S,
    UNREACHABLE,
    WATCH_TIMEOUT_S,
)

__all__ = [
    "CALL_TIMEOUT_S",
    "CONNECT_TIMEOUT_S",
    "REACHABLE",
    "RESULTS_RECONNECT_S",
    "UNREACHABLE",
    "WATCH_TIMEOUT_S",
    "DispatchClient",
    "Machine",
    "Receipt",
    "Result",
    "RpcFailure",
    "SwarmStatus",
    "TaskInfo",
    "TaskSummary",
]
