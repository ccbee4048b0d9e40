"""The server's view of the mesh: which peers are alive, a client for each, the one in use.

Used when ``swarm.coordinator`` lists several peers, or lists none and a mesh is found on the
LAN (docs/mesh.md). The failure detector is the mesh's own (``swarm_lsp.mesh.membership``,
browsing mDNS without advertising: the server is a client, not a peer): each peer answers a
gRPC health check over mTLS every 0.5 s, and two failures in a row (or a goodbye) take it out.
A peer out of the view has its client closed at once, so no call to it stays in flight: the
tasks it owned are resubmitted elsewhere by ``swarm_tasks`` (``dispatch/failover.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient, RpcFailure
from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.mesh.membership import Membership, Peer

DISCOVER_S = 2.0  # how long an unconfigured server looks for a mesh before starting its own
PEER_CONNECT_S = 3.0


def can_discover(settings: Settings) -> bool:
    """Mesh peers talk mTLS only: without a certificate there is no mesh to join."""
    swarm = settings.swarm
    return bool(swarm.tls_ca and swarm.tls_cert and swarm.tls_key)


class MeshPeers:
    """Membership (seeds: the configured peers and ``swarm.peers``; mDNS when discovering)."""

    def __init__(
        self,
        settings: Settings,
        configured: list[str],
        *,
        discover: bool,
        on_change: Callable[[str, Peer], None],
    ) -> None:
        self.settings = settings
        self.configured = configured
        self.discover = discover
        self._on_change = on_change
        self.clients: dict[str, DispatchClient] = {}
        self.changed = asyncio.Event()
        self._closing: set[asyncio.Future[None]] = set()
        self._cancelling: set[asyncio.Future[None]] = set()  # _cancel_superseded runs
        self._stopped = False
        # owner address -> ids of tasks resubmitted elsewhere: cancelled there once it is back
        self.superseded: dict[str, set[str]] = {}
        self.membership = Membership(
            node_id=f"lsp-server-{os.getpid()}",
            address="",
            roles=(),
            settings=settings.swarm,
            seeds=(*configured, *settings.swarm.peers),
            mdns=discover,
            advertise=False,
            listener=self._changed,
        )

    async def start(self) -> None:
        await self.membership.start()

    async def stop(self) -> None:
        self._stopped = True  # no client is made after this (none would ever be closed)
        for task in list(self._cancelling):
            task.cancel()
        await self.membership.stop()
        for address in list(self.clients):
            await self.drop(address)

    def _changed(self, event: str, peer: Peer) -> None:
        if event != "joined":
            # Closed now: the tasks it owned see CANCELLED and fail over; nothing stays in flight.
            self._spawn(self.drop(peer.address))
        elif peer.address in self.superseded:
            self._cancelling.add(self._spawn(self._cancel_superseded(peer.address)))
        self.changed.set()
        self.changed = asyncio.Event()
        self._on_change(event, peer)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        task.add_done_callback(self._cancelling.discard)
        return task

    def supersede(self, owner: str, task_id: str) -> None:
        """``task_id`` (owned by ``owner``) was resubmitted elsewhere: cancel it when back."""
        self.superseded.setdefault(owner, set()).add(task_id)

    async def _cancel_superseded(self, owner: str, tries: int = 5) -> None:
        """Cancel the held copies on their returned owner, retried while it stays in the view
        (best effort: a held copy would end at its deadline anyway; dispatch/failover.py)."""
        for attempt in range(tries):
            for task_id in sorted(self.superseded.get(owner, ())):
                try:
                    await (await self.client(owner)).cancel(task_id)
                except RpcFailure as err:
                    if err.code != "NOT_FOUND":
                        continue
                except SwarmError:
                    continue
                self.superseded[owner].discard(task_id)
            if not self.superseded.get(owner):
                self.superseded.pop(owner, None)
                return
            if attempt + 1 < tries and self.in_view(owner):
                await asyncio.sleep(1.0)

    def refused(self) -> dict[str, str]:
        """The configured peers the membership never probes (garbage, not owned), and why."""
        refused = self.membership.refused
        return {a: refused[a] for a in dict.fromkeys(self.configured) if a in refused}

    def in_view(self, address: str) -> bool:
        return address in self.membership.view

    def alive(self) -> list[Peer]:
        """Live peers, the configured ones first (in their order), then by latency."""
        order = {address: i for i, address in enumerate(self.configured)}
        return sorted(
            self.membership.view.values(),
            key=lambda p: (order.get(p.address, len(order)), p.rtt_ms, p.address),
        )

    async def wait_for_peer(self, timeout: float, first_grace: float = 1.0) -> bool:
        """True once some peer is in the view (False after ``timeout``).

        The first configured peer is given ``first_grace`` more seconds to join (the seeds are
        probed at once: it is usually a matter of milliseconds), so the order is honoured.
        """
        if not await self.wait_until(lambda: bool(self.membership.view), timeout):
            return False
        if self.configured:
            first = self.configured[0]
            await self.wait_until(lambda: first in self.membership.view, first_grace)
        return True

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """True once ``predicate()`` holds after a change of the view (False after timeout)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            left = end - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=left)
        return True

    async def wait_lost(self, address: str, timeout: float) -> bool:
        """True once ``address`` is out of the view (False if still in it after ``timeout``)."""
        return await self.wait_until(lambda: not self.in_view(address), timeout)

    async def client(self, address: str) -> DispatchClient:
        """The client of ``address`` (connected on first use); DispatchError if unreachable."""
        client = self.clients.get(address)
        if client is None:
            if self._stopped:
                raise DispatchError(f"not connecting to {address}: the mesh is stopped")
            client = await DispatchClient.connect(self.settings, address, timeout=PEER_CONNECT_S)
            if self._stopped:
                await client.close()
                raise DispatchError(f"not connecting to {address}: the mesh is stopped")
            if address in self.clients:  # connected twice at once: keep the first
                await client.close()
                return self.clients[address]
            self.clients[address] = client
        return client

    async def drop(self, address: str) -> None:
        client = self.clients.pop(address, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def statuses(self, timeout: float = 2.0) -> dict[str, object]:
        """Each live peer's swarm status (or the error asking it), concurrently."""
        peers = self.alive()

        async def one(address: str) -> object:
            try:
                client = await self.client(address)
                return await asyncio.wait_for(client.status(recent=0), timeout=timeout)
            except (SwarmError, TimeoutError) as err:
                return err

        answers = await asyncio.gather(*(one(p.address) for p in peers))
        return dict(zip((p.address for p in peers), answers, strict=True))
