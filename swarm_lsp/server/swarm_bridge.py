"""The server's connection to the swarm: connect, or start a swarm of one; status; shutdown.

On ``initialized``: with ``swarm.coordinator`` set, connect to it (the locality guard and TLS
checks happen in the dispatch client); otherwise, with ``swarm.autostart``, start a
:class:`LocalSwarm` (coordinator and workers as child processes on 127.0.0.1) and connect to
it. With several peers listed (or none, when a mesh answers on the LAN and TLS is set up),
the server follows the mesh's membership (``swarm_mesh``) and talks to the first live peer,
moving to another the moment it leaves the view. A poller asks the coordinator for its status
every few seconds and sends ``swarm/status`` when it changes; a lost coordinator turns the
state to ``down`` and the poller reconnects. A local coordinator this server started that
exits (crash, kill, a failed store) is restarted on the same port with its store recovered
(``swarm_shared``); when the server that started it is gone, one of the servers still using it
does. The local swarm stops with the last server using it. Nothing here blocks a request for
long: callers wait for the connection with a bound and get a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Coroutine
from typing import Any

from lsprotocol import types

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient, SwarmStatus
from swarm_lsp.dispatch.local_swarm import LocalSwarm
from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.mesh.membership import Peer
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.swarm_mesh import DISCOVER_S, MeshPeers, can_discover
from swarm_lsp.server.swarm_shared import (  # noqa: F401 - the restart limits, importable here too
    LOCAL_START_TIMEOUT_S,
    RESTART_BACKOFF_S,
    RESTART_WINDOW_S,
    RESTARTS,
    SharedLocalSwarm,
)
from swarm_lsp.server.swarm_status import (
    STATUS_NOTIFICATION,
    mesh_params,
    roles_available,
    status_params,
)

POLL_INTERVAL_S = 2.0
MESH_WAIT_S = 10.0  # how long the first live peer of a configured list is waited for
DOWN_GRACE_S = 2.0  # how long a task waits for a swarm that is down before saying so


class SwarmUnavailable(DispatchError):
    """No coordinator to send a task to (none configured, starting too long, or down)."""


@dataclasses.dataclass
class _Connection:
    client: DispatchClient
    address: str


class SwarmBridge:
    """One per server: the dispatch client, the local swarm if we started one, the status."""

    def __init__(self, ls: SwarmLanguageServer) -> None:
        self.ls = ls
        self.state = "starting"
        self.message = ""
        self.local_swarm: SharedLocalSwarm | None = None  # the project's, when in use
        self._connection: _Connection | None = None
        self._connected = asyncio.Event()
        self._settled = asyncio.Event()  # the first start attempt is over (either way)
        self._poller: asyncio.Task[None] | None = None
        self._stopping = False
        self.status: dict[str, Any] = status_params("starting", "", None)
        self._sent: dict[str, Any] | None = None
        self.mesh: MeshPeers | None = None  # several peers (or a discovered mesh)
        self._target = ""  # the swarm.coordinator value in use
        self._tasks: set[asyncio.Future[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def client(self) -> DispatchClient | None:
        return self._connection.client if self._connection else None

    @property
    def address(self) -> str:
        return self._connection.address if self._connection else ""

    @property
    def local(self) -> LocalSwarm | None:
        """The local swarm's processes this server runs (started, or taken over)."""
        return self.local_swarm.local if self.local_swarm else None

    @property
    def _local_target(self) -> tuple[Settings, str] | None:
        return self.local_swarm.target if self.local_swarm else None

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def start(self) -> None:
        """Connect or start a local swarm; never raises (failures become the ``down`` state)."""
        self._publish()
        try:
            await self._connect_or_start()
        except SwarmError as err:
            self.set_state("down", str(err))
            self.ls.notify_user(
                f"swarm-lsp: the swarm is not available: {err}", types.MessageType.Warning
            )
        except Exception as err:  # a bug here must not take the server down
            self.set_state("down", f"unexpected error: {err}")
            self.ls.log(f"swarm: start failed: {err!r}", types.MessageType.Error)
        finally:
            self._settled.set()
        if not self._stopping and (self._connection or self._configured()):
            self._poller = asyncio.ensure_future(self._poll())

    def _configured(self) -> bool:
        return bool(self.ls.settings.swarm.coordinator) or self.mesh is not None

    async def _connect_or_start(self) -> None:
        settings = self.ls.settings
        self._target = settings.swarm.coordinator
        peers = list(settings.swarm.coordinators)
        if len(peers) > 1:
            await self._start_mesh(settings, peers, discover=False, wait=MESH_WAIT_S)
            return
        if peers:
            await self.connect(settings, peers[0])
            return
        if can_discover(settings) and await self._start_mesh(
            settings, [], discover=True, wait=DISCOVER_S
        ):
            return
        if not settings.swarm.autostart:
            self.set_state(
                "down", "no coordinator configured (swarm.coordinator) and swarm.autostart is off"
            )
            return
        await self._start_local(settings)

    async def _start_local(self, settings: Settings) -> None:
        """Attach to the project's shared local swarm, or start it (see ``swarm_shared``)."""
        root = self.ls.workspace_root
        base = paths.workspace_cache_dir(root) if root else paths.user_cache_dir()
        self.local_swarm = SharedLocalSwarm(self, base, settings)
        self.message = "starting a local swarm of one"
        self._publish()
        await self.local_swarm.attach_or_start()

    async def _start_mesh(
        self, settings: Settings, peers: list[str], *, discover: bool, wait: float
    ) -> bool:
        """Follow the mesh and connect to a live peer; False when discovery found none."""
        self.message = "looking for a mesh on the LAN" if discover else "waiting for a peer"
        self._publish()
        mesh = MeshPeers(settings, peers, discover=discover, on_change=self._mesh_changed)
        self.mesh = mesh
        await mesh.start()
        refused = mesh.refused()
        why = "; ".join(f"{address}: {problem}" for address, problem in refused.items())
        if peers and len(refused) == len(set(peers)):
            raise DispatchError(f"no usable peer in swarm.coordinator ({why})")
        if not await mesh.wait_for_peer(wait):
            if discover:
                self.mesh = None
                await mesh.stop()
                return False
            ignored = f"; ignored {why}" if why else ""
            raise DispatchError(f"none of the peers {', '.join(peers)} answers (yet){ignored}")
        if self._stopping:
            return True
        await self._connect_mesh()
        self.ls.log(f"swarm: mesh of {len(mesh.alive())} peer(s); using {self.address}")
        return True

    async def _connect_mesh(self, avoid: str = "") -> None:
        """Connect to the first live peer that answers (``avoid`` last)."""
        mesh = self.mesh
        assert mesh is not None
        peers = sorted(mesh.alive(), key=lambda p: p.address == avoid)
        problems = []
        for peer in peers:
            try:
                client = await mesh.client(peer.address)
                # It must answer as a coordinator (credentials, token), not only be alive.
                await client.status(recent=0)
            except SwarmError as err:
                problems.append(f"{peer.address}: {err}")
                continue
            if self._stopping or self.mesh is not mesh:
                return
            if self._connection is not None:  # another try connected meanwhile: keep it
                return
            self._connection = _Connection(client, peer.address)
            self._connected.set()
            self.spawn(self.refresh())  # not awaited: a failure there is a new lost, no loop
            return
        problems += [f"{address}: {why}" for address, why in mesh.refused().items()]
        raise DispatchError(
            "no live peer of the mesh answers" + (f": {'; '.join(problems)}" if problems else "")
        )

    def _mesh_changed(self, event: str, peer: Peer) -> None:
        if event != "joined":
            self.ls.log(f"swarm: mesh peer {peer.id} {event} ({peer.address})")
        if event != "joined" and peer.address == self.address:
            self._connection = None
            self._connected.clear()
            self.spawn(self._reconnect())
        elif self._connection is None and self._settled.is_set():
            # (During the start, ``_start_mesh`` connects by itself, to the first configured
            # peer once it joins: a reconnect set off by another peer's join would race it.)
            self.spawn(self._reconnect())
        else:
            self.spawn(self.refresh())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._stopping:
            coro.close()
            return
        future = asyncio.ensure_future(coro)
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)

    async def _release_local(self) -> None:
        """Detach from the shared local swarm; the last server to leave stops it."""
        local_swarm, self.local_swarm = self.local_swarm, None
        if local_swarm is not None:
            await local_swarm.release()

    async def connect(self, settings: Settings, address: str) -> None:
        client = await DispatchClient.connect(settings, address)
        if self._stopping:
            await client.close()
            return
        old, self._connection = self._connection, _Connection(client, address)
        self._connected.set()
        if old is not None:  # the poller and the local swarm's watcher both reconnected
            with contextlib.suppress(Exception):
                await old.client.close()
        await self.refresh()

    def wants_switch(self, settings: Settings) -> bool:
        """Whether new settings name another coordinator than the one in use."""
        if not self._settled.is_set() or self._stopping:
            return False
        target = settings.swarm.coordinator
        if target:
            return target != self._target or self._local_target is not None
        return self._local_target is None and settings.swarm.autostart and self.client is None

    async def switch(self) -> None:
        """Drop the current connection (and local swarm) and start over with the settings now."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        connection, self._connection = self._connection, None
        self._connected.clear()
        if connection is not None and self.mesh is None:
            with contextlib.suppress(Exception):
                await connection.client.close()
        await self._stop_mesh()
        await self._release_local()
        self._settled.clear()
        self.state, self.message = (
            "starting",
            f"connecting to {self.ls.settings.swarm.coordinator or 'a local swarm'}",
        )
        self.status = status_params("starting", "", None, self.message)
        await self.start()

    async def stop(self) -> None:
        """Stop polling, close the client, stop the local swarm (and remove its state)."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
        if self._connection is not None and self.mesh is None:
            with contextlib.suppress(Exception):
                await self._connection.client.close()
        self._connection = None
        for task in list(self._tasks):
            task.cancel()
        await self._stop_mesh()
        await self._release_local()

    async def _stop_mesh(self) -> None:
        mesh, self.mesh = self.mesh, None
        if mesh is not None:
            await mesh.stop()

    # -- use -----------------------------------------------------------------------------
    async def require_client(self, timeout: float, *, patient: bool = False) -> DispatchClient:
        """The connected client, waiting up to ``timeout`` s for it; else SwarmUnavailable.

        A swarm known to be down is given only a short grace unless ``patient`` (the user
        chose to wait).
        """
        if self.client is None and not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout=timeout)
        can_reconnect = self._configured() or self._local_target is not None
        if self.client is None and can_reconnect and not self._stopping:
            wait = timeout if patient or self.state != "down" else min(timeout, DOWN_GRACE_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), timeout=wait)
        client = self.client
        if client is None:
            why = self.message or "the swarm is still starting"
            raise SwarmUnavailable(f"the swarm is not available: {why}")
        return client

    def roles(self) -> set[str]:
        return roles_available(self.status) if self.state != "down" else set()

    # -- status --------------------------------------------------------------------------
    async def refresh(self) -> dict[str, Any]:
        """Ask the coordinator for its status now; publish it if it changed."""
        client = self.client
        if client is None:
            self._publish()
            return self.status
        statuses: dict[str, object] = {}
        if self.mesh is not None:
            address = self.address
            statuses = await self.mesh.statuses()
            if self.address != address:  # moved to another peer meanwhile
                return self.status
            answer = statuses.get(address)
            if answer is None:  # not in the view yet: ask it directly
                try:
                    answer = await client.status(recent=10)
                except SwarmError as err:
                    answer = err
            if not isinstance(answer, SwarmStatus):
                await self.lost(str(answer))
                return self.status
            status = answer
        else:
            try:
                status = await client.status(recent=10)
            except SwarmError as err:
                await self.lost(str(err))
                return self.status
        state = "ready" if status.machines else "degraded"
        self.state = state
        self.message = "" if status.machines else "no worker is connected"
        self.status = status_params(state, self.address, status, self.message)
        if self.mesh is not None:
            self.status = mesh_params(self.status, self.mesh.alive(), statuses, self.address)
        self.state = self.status["state"]
        self._publish()
        return self.status

    async def lost(self, why: str) -> None:
        connection, self._connection = self._connection, None
        self._connected.clear()
        if self.mesh is not None:
            # The membership decides whether the peer is dead (and closes its client); the
            # server moves on to another live peer now.
            failed = connection.address if connection else ""
            self.ls.log(f"swarm: peer {failed} did not answer: {why}", types.MessageType.Warning)
            try:
                await self._connect_mesh(avoid=failed)
            except SwarmError as err:
                self.set_state("down", f"{why}; {err}", failed)
            return
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.client.close()
            self.ls.log(
                f"swarm: lost the coordinator {connection.address}: {why}",
                types.MessageType.Warning,
            )
        self.set_state("down", why, connection.address if connection else "")

    async def _poll(self) -> None:
        while not self._stopping:
            await asyncio.sleep(POLL_INTERVAL_S)
            if self._connection is not None:
                await self.refresh()
                continue
            await self._reconnect()

    async def _reconnect(self) -> None:
        settings = self.ls.settings
        try:
            if self.mesh is not None:
                if self._connection is None:
                    await self._connect_mesh()
            elif settings.swarm.coordinator:
                await self.connect(settings, settings.swarm.first_coordinator)
            elif self.local_swarm is not None and self.local_swarm.target is not None:
                try:
                    await self.connect(*self.local_swarm.target)
                except SwarmError:
                    # Its coordinator may have exited with no server left to restart it.
                    if not await self.local_swarm.take_over():
                        raise
        except SwarmError as err:
            self.message = str(err)

    def set_state(self, state: str, message: str, address: str = "") -> None:
        self.state = state
        self.message = message
        self.status = status_params(state, address or self.address, None, message)
        self._publish()

    def _publish(self) -> None:
        params = dict(self.status)
        params["state"] = self.state
        params["message"] = self.message
        if params == self._sent:
            return
        self._sent = params
        with contextlib.suppress(Exception):  # before initialize completes there is no client
            self.ls.protocol.notify(STATUS_NOTIFICATION, params)
