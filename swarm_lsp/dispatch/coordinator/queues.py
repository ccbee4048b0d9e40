"""The waiting tasks: one heap per role, ordered by priority, then age, then arrival.

Entries are never removed from the middle of a heap: a task that leaves the queue (assigned,
finished, forgotten) only loses its ``queue_key``, and stale heap entries are skipped when
they come to the top.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator

from swarm_lsp.dispatch.coordinator.model import ActiveTask
from swarm_lsp.dispatch.routing import PRIORITIES

PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}

QueueKey = tuple[int, int, int, str]


class TaskQueues:
    def __init__(self) -> None:
        self._heaps: dict[str, list[QueueKey]] = {}
        self._counts: dict[tuple[str, str], int] = {}  # (role, priority) -> waiting
        self._counter = itertools.count()

    def push(self, active: ActiveTask) -> None:
        record = active.record
        key = (
            PRIORITY_RANK.get(record.priority, 1),
            record.submitted_ms,
            next(self._counter),
            record.id,
        )
        active.queue_key = key
        heapq.heappush(self._heaps.setdefault(record.role, []), key)
        count_key = (record.role, record.priority)
        self._counts[count_key] = self._counts.get(count_key, 0) + 1

    def discard(self, active: ActiveTask) -> None:
        """``active`` no longer waits (its heap entry goes stale)."""
        if active.queue_key is None:
            return
        active.queue_key = None
        count_key = (active.record.role, active.record.priority)
        self._counts[count_key] = max(0, self._counts.get(count_key, 0) - 1)

    def roles(self) -> list[str]:
        return list(self._heaps)

    def waiting(
        self, role: str, lookup: Callable[[str], ActiveTask | None]
    ) -> Iterator[ActiveTask]:
        """The tasks of ``role`` in queue order, head first; stop iterating to leave them.

        Each is at the head of the queue when it is yielded; the caller either leaves it
        there (stops iterating) or takes it with ``discard`` before asking for the next.
        """
        heap = self._heaps.get(role)
        while heap:
            key = heap[0]
            active = lookup(key[3])
            if active is None or active.record.state != "QUEUED" or active.queue_key != key:
                heapq.heappop(heap)
                continue
            yield active  # taken (discarded) by the caller, it goes stale and is popped

    def position(self, active: ActiveTask, lookup: Callable[[str], ActiveTask | None]) -> int:
        """1-based place of a waiting task in its role's queue; 0 when not waiting."""
        if active.queue_key is None or active.record.state != "QUEUED":
            return 0
        ahead = 0
        for key in self._heaps.get(active.record.role, []):
            other = lookup(key[3])
            if (
                other is not None
                and other.queue_key == key
                and other.record.state == "QUEUED"
                and key < active.queue_key
            ):
                ahead += 1
        return ahead + 1

    def quick_position(self, role: str, priority: str) -> int:
        """Place of a task just queued: everything of equal or higher priority is ahead."""
        rank = PRIORITY_RANK.get(priority, 1)
        return sum(
            count
            for (r, p), count in self._counts.items()
            if r == role and PRIORITY_RANK.get(p, 1) <= rank
        )

    def depth_by_role(self) -> dict[str, int]:
        depth: dict[str, int] = {}
        for (role, _priority), count in self._counts.items():
            depth[role] = depth.get(role, 0) + count
        return depth
