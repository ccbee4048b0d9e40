"""Log lines that repeat are summed up: one per key per quiet period, with a count."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

MAX_KEYS = 4096  # a flood of distinct keys starts over rather than growing without bound


class QuietLog:
    """Whether a line about ``key`` is due, and how many were held back since the last one.

    The same key within ``quiet_s`` of its last line is counted, not logged again, so a
    misconfigured or hostile peer cannot flood the log. Safe to call from any thread.
    """

    def __init__(self, quiet_s: float = 10.0) -> None:
        self.quiet_s = quiet_s
        self._last: dict[Hashable, tuple[float, int]] = {}  # key -> (logged at, held back)
        self._lock = threading.Lock()

    def due(self, key: Hashable) -> int | None:
        """None: stay quiet (counted); otherwise log now, ``held`` lines were held back."""
        now = time.monotonic()
        with self._lock:
            logged_at, held = self._last.get(key, (0.0, 0))
            if logged_at and now - logged_at < self.quiet_s:
                self._last[key] = (logged_at, held + 1)
                return None
            if len(self._last) > MAX_KEYS:
                self._last.clear()
            self._last[key] = (now, 0)
        return held


def held_note(held: int) -> str:
    """What a summed-up line adds: how many like it were held back."""
    return f" ({held} more from this host since the last line)" if held else ""
