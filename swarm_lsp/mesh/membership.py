"""Mesh membership: DNS-SD over mDNS (``zeroconf``) finds peers, gRPC health over mTLS keeps them.

Every peer advertises ``<id>._swarm-lsp._tcp.local.`` with its gRPC address and roles, and
browses for the others. A discovered address (or one from the static seed list
``swarm.peers``) is only a *candidate*: it must be an address the user owns (the locality
guard) and answer ``grpc.health.v1.Health/Check`` over the swarm's mTLS channel (our
certificate accepted, theirs signed by our CA) before it enters the view. A candidate that
fails either is ignored with one log line, and probed again later (it may be starting).

Peers in the view are checked every ``interval`` seconds with a ``deadline``; a failed check is
retried at once, and ``max_failures`` failures in a row, or a zeroconf goodbye, take a peer out.
Why this and not eclipse-zenoh: docs/mesh.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from swarm_lsp.config import SwarmSettings
from swarm_lsp.dispatch.locality import is_owned_address, split_host_port
from swarm_lsp.dispatch.security import open_channel
from swarm_lsp.errors import ConfigError, LocalityError

log = logging.getLogger(__name__)

SERVICE_TYPE = "_swarm-lsp._tcp.local."
PROTOCOL_VERSION = "1"


@dataclass
class Peer:
    """A peer in the view (keyed by its gRPC address ``host:port``)."""

    address: str
    id: str
    roles: tuple[str, ...]
    source: str  # "mdns" or "seed"
    joined_at: float
    rtt_ms: float = 0.0
    failures: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "id": self.id,
            "roles": list(self.roles),
            "source": self.source,
            "rtt_ms": round(self.rtt_ms, 2),
        }


@dataclass
class _Candidate:
    address: str
    id: str
    roles: tuple[str, ...]
    source: str
    name: str = ""  # the mDNS instance name, when discovered that way
    next_probe: float = 0.0
    probing: bool = False
    channel: grpc.aio.Channel | None = field(default=None, repr=False)


def instance_name(node_id: str) -> str:
    """A DNS-SD instance label for ``node_id`` (letters, digits, '-', at most 63 bytes)."""
    label = re.sub(r"[^A-Za-z0-9-]+", "-", node_id).strip("-")[:63] or "peer"
    return f"{label}.{SERVICE_TYPE}"


Listener = Callable[[str, Peer], None]  # ("joined" | "left" | "failed", peer)


class Membership:
    """Advertise this peer, discover the others, and keep a view of the live ones."""

    def __init__(
        self,
        *,
        node_id: str,
        address: str,
        roles: Iterable[str],
        settings: SwarmSettings,
        seeds: Iterable[str] = (),
        interval: float = 0.5,
        deadline: float = 0.7,
        max_failures: int = 2,
        probe_timeout: float = 5.0,
        retry: float = 2.0,
        mdns: bool = True,
        advertise: bool = True,
        listener: Listener | None = None,
    ) -> None:
        self.node_id = node_id
        self.address = address
        self.roles = tuple(roles)
        self.settings = settings
        self.interval = interval
        self.deadline = deadline
        self.max_failures = max_failures
        self.probe_timeout = probe_timeout
        self.retry = retry
        self.mdns = mdns
        self.advertise = advertise  # False: browse only (an editor's server, not a peer)
        self.listener = listener
        self.view: dict[str, Peer] = {}
        self._candidates: dict[str, _Candidate] = {}
        self._ignored: set[str] = set()
        self.refused: dict[str, str] = {}  # address -> why it is never probed (not owned...)
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        for seed in seeds:
            self.add_candidate(seed, seed, (), "seed")

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.mdns:
            await self._start_mdns()
        self._loop_task = asyncio.create_task(self._run(), name="mesh-membership")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._zc is not None:
            await self._zc.async_unregister_all_services()  # goodbye packets: peers drop us now
            await self._zc.async_close()
        for candidate in self._candidates.values():
            await _close(candidate)

    async def _start_mdns(self) -> None:
        if not self.advertise:
            self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
            self._browser = AsyncServiceBrowser(
                self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_service]
            )
            return
        host, port = split_host_port(self.address)
        ip = ipaddress.ip_address(host)
        interfaces: list[str] | None = None if ip.is_unspecified else [host]
        self._zc = (
            AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            if interfaces
            else AsyncZeroconf(ip_version=IPVersion.V4Only)
        )
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            instance_name(self.node_id),
            addresses=[ip.packed] if not ip.is_unspecified else None,
            port=port,
            properties={"id": self.node_id, "roles": ",".join(self.roles), "v": PROTOCOL_VERSION},
        )
        self._own_name = info.name
        await self._zc.async_register_service(info)
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_service]
        )

    # ---- discovery --------------------------------------------------------------------------

    def _on_service(
        self,
        zeroconf: object,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if name == getattr(self, "_own_name", None):
            return
        if state_change is ServiceStateChange.Removed:
            for candidate in [c for c in self._candidates.values() if c.name == name]:
                self._forget(candidate.address, "left")
            return
        self._spawn(self._resolve(name))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str) -> None:
        assert self._zc is not None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zc.zeroconf, 3000) or not info.port:
            return
        props = {
            (k or b"").decode(errors="replace"): (v or b"").decode(errors="replace")
            for k, v in info.properties.items()
        }
        peer_id = props.get("id") or name.removesuffix("." + SERVICE_TYPE)
        roles = tuple(r for r in props.get("roles", "").split(",") if r)
        for host in info.parsed_addresses(IPVersion.V4Only):
            self.add_candidate(f"{host}:{info.port}", peer_id, roles, "mdns", name=name)

    def add_candidate(
        self, address: str, peer_id: str, roles: tuple[str, ...], source: str, name: str = ""
    ) -> None:
        """An address heard of (mDNS or a seed): guarded, then probed by the loop."""
        if address == self.address or peer_id == self.node_id:
            return
        known = self._candidates.get(address)
        if known is not None:
            known.id, known.roles, known.name = peer_id, roles or known.roles, name or known.name
            if address in self.view:
                self.view[address].id, self.view[address].roles = peer_id, known.roles
            return
        problem = self._locality_problem(address)
        if problem:
            self.refused[address] = problem
            self._ignore(address, peer_id, problem)
            return
        self._candidates[address] = _Candidate(address, peer_id, roles, source, name)

    def _locality_problem(self, address: str) -> str:
        try:
            host, port = split_host_port(address)
            ip = ipaddress.ip_address(host)
        except (ValueError, LocalityError) as err:
            return f"not an address: {err}"
        if port is None:
            return "no port"
        if not is_owned_address(ip, self.settings.allowed_hosts):
            return "not an address you own (loopback, private, link-local or swarm.allowedHosts)"
        return ""

    def _ignore(self, address: str, peer_id: str, why: str) -> None:
        if address not in self._ignored:
            self._ignored.add(address)
            log.warning("mesh: ignoring peer %s at %s: %s", peer_id, address, why)

    # ---- liveness ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            checks = []
            for candidate in list(self._candidates.values()):
                if candidate.address in self.view:
                    checks.append(self._check(candidate))
                elif not candidate.probing and now >= candidate.next_probe:
                    candidate.probing = True  # a slow first contact must not delay the checks
                    self._spawn(self._check(candidate))
            await asyncio.gather(*checks)
            if not any(p.failures for p in self.view.values()):
                await asyncio.sleep(self.interval)
            # else: a peer just failed a check; check again at once (the bound is
            # interval + max_failures x deadline: 0.5 + 2 x 0.7 s by default)

    async def _check(self, candidate: _Candidate) -> None:
        try:
            await self._check_once(candidate)
        finally:
            candidate.probing = False

    async def _check_once(self, candidate: _Candidate) -> None:
        in_view = candidate.address in self.view
        timeout = self.deadline if in_view else self.probe_timeout
        started = time.monotonic()
        try:
            if candidate.channel is None:
                candidate.channel = open_channel(candidate.address, self.settings)
            stub = health_pb2_grpc.HealthStub(candidate.channel)
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            ok = answer.status == health_pb2.HealthCheckResponse.SERVING
            why = "" if ok else "not serving"
        except (grpc.RpcError, LocalityError, ConfigError) as err:
            ok, why = False, _reason(err)
        rtt = (time.monotonic() - started) * 1000
        if ok:
            self._alive(candidate, rtt)
        elif in_view:
            peer = self.view[candidate.address]
            peer.failures += 1
            if peer.failures >= self.max_failures:
                self._drop(candidate.address, "failed")
                self._ignored.add(candidate.address)  # "failed" said it; no "ignoring" line
                candidate.next_probe = time.monotonic() + self.retry
                await _close(candidate)
        else:
            candidate.next_probe = time.monotonic() + self.retry
            self._ignore(candidate.address, candidate.id, why)
            await _close(candidate)

    def _alive(self, candidate: _Candidate, rtt: float) -> None:
        peer = self.view.get(candidate.address)
        if peer is None:
            self._ignored.discard(candidate.address)
            peer = Peer(
                candidate.address, candidate.id, candidate.roles, candidate.source, time.time()
            )
            self.view[candidate.address] = peer
            self._notify("joined", peer)
        peer.failures = 0
        peer.rtt_ms = rtt if not peer.rtt_ms else 0.8 * peer.rtt_ms + 0.2 * rtt

    def _drop(self, address: str, event: str) -> None:
        peer = self.view.pop(address, None)
        if peer is not None:
            self._notify(event, peer)

    def _forget(self, address: str, event: str) -> None:
        self._drop(address, event)
        candidate = self._candidates.pop(address, None)
        if candidate is not None:
            self._spawn(_close(candidate))

    def _notify(self, event: str, peer: Peer) -> None:
        log.info("mesh: peer %s %s at %s", peer.id, event, peer.address)
        if self.listener is not None:
            self.listener(event, peer)

    def peers(self) -> list[Peer]:
        return sorted(self.view.values(), key=lambda p: p.address)


def _reason(err: BaseException) -> str:
    if isinstance(err, grpc.RpcError):
        details = err.details() if hasattr(err, "details") else ""
        code = err.code() if hasattr(err, "code") else None
        name = code.name if code is not None else "error"
        return f"{name}: {(details or '').splitlines()[0][:200] if details else ''}"
    return str(err)


async def _close(candidate: _Candidate) -> None:
    channel, candidate.channel = candidate.channel, None
    if channel is not None:
        with contextlib.suppress(Exception):
            await channel.close()
