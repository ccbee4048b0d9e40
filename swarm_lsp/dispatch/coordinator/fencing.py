"""Fencing: lease epochs, and the bound that keeps a task from running on two workers at once.

Every lease carries an epoch, unique across coordinator restarts: the coordinator's start
count (kept in ``<state>/epoch``, one more per start) in the high 32 bits, a per-start counter
in the low 32. A result, completion or failure is applied only when it carries the epoch of
the task's current lease; any other is refused and logged.

The bound (see the package README): a worker stops every task it runs once it has heard no
heartbeat acknowledgement for ``fence_ms`` (counted from when it *sent* the last acknowledged
heartbeat). The coordinator re-leases a lost worker's tasks no sooner than
``lease_timeout_ms`` after that worker's last message. Since the acknowledged heartbeat was
sent before the coordinator received anything after it, the worker has stopped at least
``lease_timeout_ms - fence_ms`` (the margin, for killing the task and timer slack) before
any other worker may start the task.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MIN_MARGIN_MS = 200


def fence_ms(lease_timeout_ms: int) -> int:
    """How long a worker keeps running without word from the coordinator (< the lease timeout).

    30% of the lease timeout (at least 200 ms) is left as margin: 1400 ms of 2000 ms by default.
    """
    margin = max(MIN_MARGIN_MS, lease_timeout_ms * 3 // 10)
    return max(1, lease_timeout_ms - margin)


class Epochs:
    """Lease epochs: (start count << 32) | lease counter, only ever growing."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / "epoch"
        previous = 0
        with contextlib.suppress(OSError, ValueError):
            previous = int(path.read_text(encoding="ascii").strip() or 0)
        self.generation = previous + 1
        scratch = path.with_name(f"epoch.{os.getpid()}.tmp")
        with open(scratch, "w", encoding="ascii") as out:
            out.write(str(self.generation))
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
        self._counter = 0

    def next(self) -> int:
        self._counter += 1
        return (self.generation << 32) | self._counter
