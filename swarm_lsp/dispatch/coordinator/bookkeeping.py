"""The task store's upkeep: batched start records, hourly pruning, the store-size quota."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from swarm_lsp.dispatch.coordinator.model import RequestError
from swarm_lsp.dispatch.store import TaskRecord, TaskStore, now_ms

CHECK_EVERY = 256  # admissions between looks at the task store's size ...
CHECK_BYTES = 1024 * 1024  # ... or fewer, once they (and results) bring this much


class StoreKeeper:
    def __init__(self, store: TaskStore, *, max_bytes: int, keep_finished_ms: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.keep_finished_ms = keep_finished_ms
        self._unsaved: dict[str, TaskRecord] = {}  # task id -> a start not written yet
        self._check = 0  # admissions until the next look at the store's size
        self._added = 0  # bytes of contexts and results stored since the last look
        self._full = False

    # -- starts: not needed for durability (RUNNING goes back to QUEUED on restart), so
    # written in batches by ``flush_forever``, or with the task's next state change.

    def started(self, record: TaskRecord) -> None:
        self._unsaved[record.id] = record

    def start_fields(self, task_id: str) -> dict[str, Any]:
        """The unsaved start of ``task_id`` as columns for its next update (then forgotten)."""
        record = self._unsaved.pop(task_id, None)
        if record is None:
            return {}
        return {
            "attempt": record.attempt,
            "worker": record.worker,
            "fallback": record.fallback,
            "started_ms": record.started_ms,
        }

    def save(self) -> None:
        if not self._unsaved:
            return
        records = list(self._unsaved.values())
        self._unsaved.clear()
        with self.store.transaction():
            for record in records:
                self.store.update(
                    record.id,
                    state=record.state,
                    attempt=record.attempt,
                    worker=record.worker,
                    fallback=record.fallback,
                    started_ms=record.started_ms,
                )

    async def flush_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(0.1)
            self.save()
            ticks += 1
            if ticks % 36_000 == 0:  # hourly
                self.store.prune(now_ms() - self.keep_finished_ms)

    # -- the size quota ---------------------------------------------------------------------

    def added(self, size: int) -> None:
        """``size`` bytes (a context, a result) go into the store."""
        self._added += size

    def check_room(self) -> None:
        """Refuse new tasks while the task store is over its cap after pruning.

        The size is looked at every few hundred admissions (or megabyte), and at every one
        while full; finished tasks go oldest first to make room.
        """
        cap = self.max_bytes
        self._check -= 1
        due = self._check <= 0 or self._added >= min(CHECK_BYTES, cap // 8)
        if not (due or self._full):
            return
        self._check = CHECK_EVERY
        self._added = 0
        while self.store.live_bytes() > cap:
            self.save()
            if not self.store.prune_oldest(64):
                self._full = True
                raise RequestError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the task store is full ({cap} bytes of waiting and running tasks); "
                    "try again when some have finished",
                )
        self._full = False
