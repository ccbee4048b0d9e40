"""How a worker waits between sessions, and what it says about it.

A lost coordinator (restart, network blip) is retried quickly: 0.1 s doubling up to 2 s. A
refusal (wrong token, a certificate the coordinator does not accept, a peer we refuse) will
not fix itself in seconds: it backs off exponentially from 1 s up to a minute. Either way the
log gets one line when the reason changes and one when a session works again, never a line
per retry.
"""

from __future__ import annotations

import asyncio
import logging
import random

import grpc

from swarm_lsp.config import SwarmSettings
from swarm_lsp.dispatch import tls_probe

FAST_FIRST_S = 0.1
FAST_CAP_S = 2.0
REFUSED_FIRST_S = 1.0
REFUSED_CAP_S = 60.0
STABLE_SESSION_S = 5.0  # a session that lasted this long was a success: start over quickly


class Reconnect:
    """Backoff and logging for one worker's sessions with ``target``."""

    def __init__(
        self,
        target: str,
        log: logging.Logger,
        *,
        refused_cap_s: float = REFUSED_CAP_S,
        fast_cap_s: float = FAST_CAP_S,
    ) -> None:
        self.target = target
        self.log = log
        self.refused_cap_s = refused_cap_s
        self.fast_cap_s = fast_cap_s
        self._backoff = FAST_FIRST_S
        self._reason: tuple[bool, str] | None = None  # what the last logged line was about
        self.failures = 0

    def failed(self, reason: str, *, refused: bool, key: str = "", lasted_s: float = 0.0) -> float:
        """A session ended (or never started); the delay before the next try.

        ``key`` groups reasons whose text varies (ports, timings) into one "change".
        """
        if lasted_s > STABLE_SESSION_S:
            self._backoff = FAST_FIRST_S
        this = (refused, key or reason)
        if this != self._reason:
            if refused:
                self._backoff = max(self._backoff, REFUSED_FIRST_S)
                self.log.warning(
                    "refused by the coordinator %s: %s; retrying in %.0fs, backing off up to "
                    "%.0fs (logged again only when this changes)",
                    self.target,
                    reason,
                    self._backoff,
                    self.refused_cap_s,
                )
            else:
                self.log.warning(
                    "session with %s ended: %s; reconnecting (logged again only when this changes)",
                    self.target,
                    reason,
                )
            self._reason = this
        self.failures += 1
        cap = self.refused_cap_s if refused else self.fast_cap_s
        delay = min(self._backoff, cap)
        self._backoff = min(self._backoff * 2, cap)
        return delay * (0.75 + random.random() / 2)

    def succeeded(self) -> None:
        """A session registered: say so if a failure was logged, and reset the backoff."""
        if self._reason is not None:
            self.log.warning(
                "registered with %s again after %d failed attempt%s",
                self.target,
                self.failures,
                "" if self.failures == 1 else "s",
            )
        self._reason = None
        self.failures = 0
        self._backoff = FAST_FIRST_S


def describe(err: BaseException) -> str:
    """One line about why a call or a session failed."""
    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err) or type(err).__name__


async def explain(
    err: BaseException, target: str, swarm: SwarmSettings, *, registered: bool
) -> tuple[str, bool, str]:
    """(what went wrong, whether the coordinator refused us, a key that stays the same)."""
    if isinstance(err, grpc.aio.AioRpcError):
        code = err.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return describe(err), True, f"{code.name}: {err.details()}"
        if code == grpc.StatusCode.UNAVAILABLE and not registered:
            # Never registered: maybe a TLS handshake gRPC does not explain.
            why = await asyncio.to_thread(tls_probe.diagnose, target, swarm)
            if why:
                return why, True, why
        return describe(err), False, code.name
    return describe(err), False, type(err).__name__
