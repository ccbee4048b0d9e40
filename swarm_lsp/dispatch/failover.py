"""Following a task across the mesh when the peer that owns it dies: the protocol's names.

The LSP server submits each task with an idempotency key and ``FAILOVER`` in its metadata.
When the peer that accepted the task (its *owner*) leaves the server's view of the mesh while
the server cannot reach it, the server stops following the task there (it closes its channel
to that peer: no subscription for the task is in flight afterwards) and submits it again to a
live peer: same idempotency key, a new (globally unique) task id, and ``SUPERSEDES`` =
``<old id>@<old owner>`` in its metadata. From then on only the new task is followed; the
server answers the editor with its one final result.

Why nothing runs twice to completion, even when the old owner comes back: a restarted
coordinator recovers its unfinished tasks from its store, but one whose metadata has
``FAILOVER`` is *held* (kept, not queued) until a client watches it again (WatchResults) —
the server does that only if it has *not* resubmitted it (it re-attaches to a peer that came
back before it gave up on it), and never after. A held task nobody comes back for ends at
its deadline, and the server cancels it as soon as the old owner is in its view again. So of
the two copies exactly one can be queued: the decision is taken once, by the one process that
follows the task. A star (one coordinator) keeps its restart behaviour: tasks without
``FAILOVER`` are re-queued at once.

Limit (docs/mesh.md): an owner that is only cut off from the server (a partition, not a
crash) keeps running its copy; the server still takes one final result per key, and cancels
the old copy when the owner is reachable again.
"""

FAILOVER = "swarm-lsp.failover"  # metadata: "1" — hold this task on recovery until watched
SUPERSEDES = "swarm-lsp.supersedes"  # metadata: "<old task id>@<old owner address>"
