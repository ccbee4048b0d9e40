"""A worker's side of fencing: which heartbeats the coordinator acknowledged, and when.

Every heartbeat carries a sequence number and every one is acknowledged. The send time of
the last acknowledged heartbeat (or of the registration) is the last moment the coordinator
is known to have heard this worker: a worker silent for the coordinator's ``fence_ms`` since
then stops its tasks before the coordinator may give them to another worker.
"""

from __future__ import annotations

import asyncio
import time

MAX_UNANSWERED = 64  # heartbeats remembered; unanswered for that long, the fence has acted


class Contact:
    """Heartbeat sequence numbers, their round trip, and the fence's clock."""

    def __init__(self) -> None:
        self._beat = 0
        self._sent: dict[int, float] = {}  # heartbeat sequence -> when it was sent
        self.heard_at = 0.0  # monotonic: the coordinator had heard us by then
        self.rtt_ms = 0

    def restart(self) -> None:
        """A new session: the clock starts now, earlier heartbeats are forgotten."""
        self.heard_at = time.monotonic()
        self._sent.clear()

    def heard_now(self) -> None:
        """The coordinator has heard us now (it answered the registration)."""
        self.heard_at = time.monotonic()

    def next_beat(self) -> int:
        """The sequence number of a heartbeat sent now."""
        self._beat += 1
        self._sent[self._beat] = time.monotonic()
        while len(self._sent) > MAX_UNANSWERED:
            del self._sent[next(iter(self._sent))]
        return self._beat

    def acknowledged(self, sequence: int) -> bool:
        """Heartbeat ``sequence`` was answered; False when it is not one we wait for."""
        sent = self._sent.get(sequence)
        if sent is None:
            return False
        self.heard_at = max(self.heard_at, sent)
        self.rtt_ms = max(1, round((time.monotonic() - sent) * 1000))
        for beat in [b for b in self._sent if b <= sequence]:
            del self._sent[beat]
        return True

    async def silent_for(self, fence_s: float) -> None:
        """Returns once the coordinator has not heard us for ``fence_s``."""
        while (left := self.heard_at + fence_s - time.monotonic()) > 0:
            await asyncio.sleep(left)
