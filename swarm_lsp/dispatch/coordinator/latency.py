"""Service-time estimates per worker identity, for latency-aware routing.

For each identity (a worker's credential, else its declared name: an estimate survives
reconnects) the coordinator keeps
an EWMA of lease-to-complete time minus the handler's own run time (network both ways, the
worker's queueing, snapshot fetches) and of the heartbeat round trip the worker reports; their
sum is the identity's service time. Run times are kept per identity and role. Immediate tasks
go to the free worker with the lowest expected completion time: service time plus expected
run time (see ``scheduler.expected_completion``).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

ALPHA = 0.3  # weight of the newest sample
MAX_IDENTITIES = 4096  # forget the oldest beyond this (identities come and go)


class _Worker(Protocol):
    identity: str
    name: str


def identity_of(worker: _Worker) -> str:
    """The key of a worker's estimate: its identity (credential), else its declared name."""
    return worker.identity or worker.name


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else (1 - ALPHA) * previous + ALPHA * sample


@dataclasses.dataclass
class ServiceEstimate:
    overhead_ms: float | None = None  # lease-to-complete minus run time
    rtt_ms: float | None = None  # heartbeat round trip
    run_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # role -> run time

    @property
    def service_ms(self) -> float:
        """Expected time beyond the handler's run: 0 until something was measured."""
        return (self.overhead_ms or 0.0) + (self.rtt_ms or 0.0)

    def expected_ms(self, role: str, default_run_ms: float) -> float:
        """Expected lease-to-complete time of a task of ``role`` on this identity."""
        return self.service_ms + self.run_ms.get(role, default_run_ms)


class ServiceEstimates:
    def __init__(self) -> None:
        self._by_identity: dict[str, ServiceEstimate] = {}

    def get(self, identity: str) -> ServiceEstimate:
        """The identity's estimate (an empty one when nothing is known yet)."""
        return self._by_identity.get(identity) or ServiceEstimate()

    def _entry(self, identity: str) -> ServiceEstimate:
        entry = self._by_identity.pop(identity, None) or ServiceEstimate()
        self._by_identity[identity] = entry  # most recently used last
        while len(self._by_identity) > MAX_IDENTITIES:
            del self._by_identity[next(iter(self._by_identity))]
        return entry

    def completed(
        self, identity: str, role: str, lease_to_complete_ms: float, run_ms: float
    ) -> None:
        entry = self._entry(identity)
        run = max(0.0, min(run_ms, lease_to_complete_ms))
        entry.overhead_ms = _ewma(entry.overhead_ms, lease_to_complete_ms - run)
        entry.run_ms[role] = _ewma(entry.run_ms.get(role), run)

    def round_trip(self, identity: str, rtt_ms: float) -> None:
        if rtt_ms > 0:
            entry = self._entry(identity)
            entry.rtt_ms = _ewma(entry.rtt_ms, rtt_ms)
