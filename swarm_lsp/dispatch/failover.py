"""Following a task across the mesh when the peer that owns it dies: the protocol's names.

The LSP server submits each task with an idempotency key and ``FAILOVER`` in its metadata.
When the peer that accepted the task (its *owner*) leaves the server's view of the mesh while
the server cannot reach it, the server stops following the task there (it closes its channel
to that peer: no subscription for the task is in flight afterwards) and submits it again to a
live peer: same idempotency key, a new (globally unique) task id, and ``SUPERSEDES`` =
``<old id>@<old owner>`` in its metadata (``@<old owner>`` alone when a submit died in flight:
the old owner may or may not have accepted it). From then on only the new task is followed;
the server answers the editor with its one final result.

Why nothing runs twice to completion:

- **The old owner is alive, only cut off from the editor** (a partition; the peers still reach
  each other). The peer that accepts the new copy first asks the old owner, peer to peer over
  the mesh's mTLS, to supersede its copy (``SupersedeTask``, mesh peers only:
  ``dispatch/coordinator/supersede.py``). An unfinished old copy is cancelled (its runner
  fenced) and the new one runs; a finished one answers with its final result, which the new
  copy returns instead of running again. Either way the key completes once in the mesh.
- **The old owner is dead** (or unreachable from the new owner too): the new copy first asks its
  own machine's result journal and the live peers of its view whether the old copy finished (the
  machine that ran it journaled the result before reporting it: ``dispatch/result_journal.py``,
  ``coordinator/journal_ask.py``); if it did, the new copy returns that result without running.
  Otherwise the new copy runs, and the ask is repeated until the old owner is back. A restarted
  coordinator recovers its unfinished tasks from its store, but one whose metadata has
  ``FAILOVER`` is *held* (kept, not queued) until a client watches it again (WatchResults) — the
  server does that only if it has *not* resubmitted it (it re-attaches to a peer that came back
  before it gave up on it), and never after. So a held copy never runs: the repeated ask cancels
  it (so does the server, once the old owner is in its view again), or it ends at its deadline. A
  star (one coordinator) keeps its restart behaviour: tasks without ``FAILOVER`` are re-queued at
  once.

Limit (docs/mesh.md): an owner cut off from *every* peer that finishes its copy on its own
machine (its local fallback, or a worker on its side of the cut) while the new copy finishes
too completes the task twice; the editor still gets one result (the copy it follows), and the
old copy's result is never delivered to it. A copy the dead owner ran on its own machine, a
failure, or a result the journal does not hold (over 1 MB, older than 10 min, on a machine out
of the new owner's view) runs again.
"""

from __future__ import annotations

FAILOVER = "swarm-lsp.failover"  # metadata: "1" — hold this task on recovery until watched
SUPERSEDES = "swarm-lsp.supersedes"  # metadata: "<old task id>@<old owner address>"


def superseded_copy(value: str) -> tuple[str, str] | None:
    """``SUPERSEDES``'s (old task id, old owner address); None when it names no owner.

    The id may be empty (a submit that died in flight); addresses hold no ``@``.
    """
    old_id, at, owner = value.rpartition("@")
    if not at or not owner:
        return None
    return old_id, owner
