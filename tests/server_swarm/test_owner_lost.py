"""An owner that comes back while its task is being resubmitted still gets its copy cancelled.

Two real coordinators on loopback (``a`` owns the task, ``b`` is the live peer), the server's
real ``MeshPeers`` following them, real gRPC. ``_owner_lost`` runs as the server runs it when
``a`` leaves the view; ``a`` comes back (restarted on its address, its copy held) while the
resubmit to ``b`` is under way. ``b`` has no mesh view, so it never asks ``a`` itself: only the
server's cancel of superseded copies can stop ``a``'s copy.

The bridge is a stand-in with the three things ``_owner_lost`` uses (its mesh, a client for a
live peer, a log): the real one belongs to an LSP server, which cannot be held inside this
window from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.dispatch import routing
from swarm_lsp.dispatch.client import DispatchClient, Receipt
from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server
from swarm_lsp.dispatch.failover import FAILOVER, SUPERSEDES
from swarm_lsp.server.progress import ProgressStream
from swarm_lsp.server.swarm_mesh import MeshPeers
from swarm_lsp.server.swarm_tasks import _Followed, _owner_lost
from tests.dispatch.conftest import wait_state, wait_until

TABLE = '[types]\nsleep = "sleep"\n'


class _Peer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = "127.0.0.1:0"
        self.parts: tuple[Coordinator, Any] | None = None

    async def start(self) -> None:
        coordinator = Coordinator(
            CoordinatorConfig(
                state_dir=self.root, routing=routing.parse(TABLE), local_fallback=False
            )
        )
        server, port = await create_server(coordinator, self.address)
        await coordinator.start()
        await server.start()
        self.address, self.parts = f"127.0.0.1:{port}", (coordinator, server)

    async def stop(self) -> None:
        if self.parts is not None:
            coordinator, server = self.parts
            self.parts = None
            await server.stop(None)
            await coordinator.stop()


@dataclasses.dataclass
class _Log:
    lines: list[str] = dataclasses.field(default_factory=list)

    def log(self, text: str, *_: object) -> None:
        self.lines.append(text)


@dataclasses.dataclass
class _Bridge:
    mesh: MeshPeers
    live: str
    ls: _Log = dataclasses.field(default_factory=_Log)

    async def require_client(self, timeout: float, *, patient: bool = False) -> DispatchClient:
        """``live``'s client; with no ``live``, the first live peer's (as the bridge moves on)."""
        return await self.mesh.client(self.live or self.mesh.alive()[0].address)


METADATA: Mapping[str, str] = {FAILOVER: "1"}


async def _resubmitted(client: DispatchClient, supersedes: str) -> Receipt:
    """The task again (same key), superseding ``supersedes``, as the server resubmits it."""
    return await client.submit(
        "sleep",
        {"seconds": 60},
        idempotency_key="k",
        metadata={**METADATA, SUPERSEDES: supersedes},
    )


@dataclasses.dataclass
class _OwnerGone:
    peers: list[_Peer]
    mesh: MeshPeers
    old: Receipt  # the copy on the first peer, the owner
    followed: _Followed  # as the server followed it (its client closed)


@contextlib.asynccontextmanager
async def _owner_gone(tmp_path: Path, names: str) -> AsyncIterator[_OwnerGone]:
    """A coordinator per name, followed by a real ``MeshPeers``; a task submitted to the first,
    which is then stopped and judged lost; everything stopped on the way out."""
    peers = [_Peer(tmp_path / name) for name in names]
    for peer in peers:
        await peer.start()
    addresses = [peer.address for peer in peers]
    mesh = MeshPeers(Settings(), addresses, discover=False, on_change=lambda *_: None)
    await mesh.start()
    try:
        await mesh.wait_until(lambda: all(mesh.in_view(x) for x in addresses), 10)
        on_owner = await DispatchClient.connect(Settings(), addresses[0])
        old = await on_owner.submit(
            "sleep", {"seconds": 60}, idempotency_key="k", metadata=METADATA
        )
        await peers[0].stop()
        assert await mesh.wait_lost(addresses[0], 15)
        followed = _Followed(on_owner, old.task_id, old.deadline_ms)  # the client it followed
        await on_owner.close()
        yield _OwnerGone(peers, mesh, old, followed)
    finally:
        await mesh.stop()
        for peer in peers:
            await peer.stop()


async def test_an_owner_back_during_the_resubmit_gets_its_copy_cancelled(tmp_path: Path) -> None:
    async with _owner_gone(tmp_path, "ab") as gone:
        (a, b), mesh, old, followed = gone.peers, gone.mesh, gone.old, gone.followed

        async def resubmit(client: DispatchClient, supersedes: str) -> Receipt:
            await a.start()  # back on its address, with its store: the old copy is held
            await mesh.wait_until(lambda: mesh.in_view(a.address), 10)
            await asyncio.sleep(0.2)  # the join's cancel of superseded copies has run
            return await _resubmitted(client, supersedes)

        bridge = _Bridge(mesh, b.address)
        progress = ProgressStream(bridge.ls, None)  # type: ignore[arg-type]
        await _owner_lost(bridge, followed, resubmit, progress, 10.0)  # type: ignore[arg-type]
        assert followed.client.target == b.address and followed.task_id != old.task_id
        async with await DispatchClient.connect(Settings(), a.address) as again:
            await wait_state(again, old.task_id, {"CANCELLED"}, timeout=10)
        await wait_until(lambda: not mesh.superseded, timeout=10)


async def test_a_resubmit_that_outlives_two_peers_names_every_copy_it_left(
    tmp_path: Path,
) -> None:
    """``a`` owns the task and is gone; the resubmit goes to ``b``, which dies under it (its
    submit fails), then to ``c``. ``c``'s copy supersedes ``a``'s (``SUPERSEDES`` names one
    copy); the log and the progress line name ``b`` too, whose copy (if it took one) is not
    superseded. The log used to name only ``a``'s copy."""
    async with _owner_gone(tmp_path, "abc") as gone:
        (a, b, c), old, followed = gone.peers, gone.old, gone.followed

        async def resubmit(client: DispatchClient, supersedes: str) -> Receipt:
            if client.target == b.address:
                await b.stop()  # dies under the submit: the call fails UNAVAILABLE
            return await _resubmitted(client, supersedes)

        bridge = _Bridge(gone.mesh, "")
        progress = ProgressStream(bridge.ls, None)  # type: ignore[arg-type]
        await _owner_lost(bridge, followed, resubmit, progress, 20.0)  # type: ignore[arg-type]
        assert followed.client.target == c.address
        assert c.parts is not None
        record = c.parts[0].store.get(followed.task_id)
        assert record is not None and record.metadata[SUPERSEDES] == f"{old.task_id}@{a.address}"
        (note,) = [line for line in bridge.ls.lines if "also died" in line]
        assert note == (
            f"swarm: task {followed.task_id} on {c.address} supersedes task {old.task_id} on "
            f"{a.address}; {b.address} also died under the submit: a copy it may hold is not "
            "superseded (held if restarted, it ends at its deadline)"
        )
