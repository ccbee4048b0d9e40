"""``swarm-lsp node``: one peer of the mesh — the coordinator service, this machine's roles,
its store, and the membership (docs/mesh.md).

The coordinator is the same one ``swarm-lsp coordinator`` runs, so star workers and editors
dialling this address keep working. The view of the mesh is written to ``<state>/mesh.json``
on every change (``swarm-lsp status`` shows it) and each change is one log line.

A node listening on loopback (the swarm of one, ``swarm-lsp up``, by default) is a mesh of one:
no peer can reach it, so it runs no membership (and imports no zeroconf: it starts as fast
as a plain coordinator); listening on a LAN address (with TLS) it advertises itself and peers
join it like any other.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.mesh.peer_workers import PeerWorkers
from swarm_lsp.workers import machine_slots

if TYPE_CHECKING:
    from swarm_lsp.mesh.membership import Membership, Peer

VIEW_FILE = "mesh.json"
MACHINE_SLOTS = "machine-slots"  # the folder of the machine's slot files, in the state folder
# A peer out of the view keeps this machine's worker for it this long (it exits on its own if
# the peer is gone for good: nothing to dial; the peer's own workers follow its process).
WORKER_GRACE_S = 10.0


@dataclass(frozen=True, kw_only=True)
class NodeOptions:
    listen: str
    name: str = ""
    roles: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()
    state_dir: Path | None = None
    routing_table: str | None = None
    heartbeat_ms: int = 500
    lease_timeout_ms: int = 2000
    local_capacity: int = 2
    local_fallback: bool = True
    ready_file: Path | None = None
    check_interval_ms: int = 500
    check_deadline_ms: int = 700
    mdns: bool = True
    work_for_peers: bool = True  # run this machine's roles for every peer (peer_workers)
    work_for_self: bool = True  # ... and for this peer's own coordinator (`up` runs its own)
    capacity: int = 2  # tasks this machine runs at once, for every peer together


def advertised_address(listen_address: str) -> str:
    """The address peers dial: ``listen_address``, or for a wildcard this machine's first
    owned (private, not loopback) IPv4 address with the same port."""
    import ipaddress

    import ifaddr

    from swarm_lsp.dispatch.locality import is_owned_address, split_host_port

    host, port = split_host_port(listen_address)
    if not ipaddress.ip_address(host).is_unspecified:
        return listen_address
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):
                continue  # IPv6 (a tuple)
            address = ipaddress.ip_address(ip.ip)
            if not address.is_loopback and is_owned_address(address):
                return f"{address}:{port}"
    return f"127.0.0.1:{port}"


def default_state_dir() -> Path:
    return paths.user_cache_dir() / "coordinator"


class View(Protocol):
    node_id: str
    address: str
    roles: tuple[str, ...]

    def peers(self) -> list[Peer]: ...


@dataclass
class MeshOfOne:
    """The view of a node no peer can reach (it listens on loopback)."""

    node_id: str
    address: str
    roles: tuple[str, ...]
    view: dict[str, Peer] = field(default_factory=dict)

    def peers(self) -> list[Peer]:
        return []


def is_loopback_address(address: str) -> bool:
    import ipaddress

    from swarm_lsp.dispatch.locality import split_host_port

    host, _ = split_host_port(address)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def write_view(path: Path, membership: View) -> None:
    data = {
        "id": membership.node_id,
        "address": membership.address,
        "roles": list(membership.roles),
        "updated": time.time(),
        "peers": [p.to_json() for p in membership.peers()],
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def read_view(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def serve_node(settings: Settings, options: NodeOptions) -> int:
    from swarm_lsp.dispatch import routing
    from swarm_lsp.dispatch.coordinator import Coordinator, CoordinatorConfig, create_server
    from swarm_lsp.dispatch.server_main import (
        on_stop_signals,
        setup_logging,
        until_stopped,
        watch_parent,
        write_ready,
    )

    setup_logging()
    state_dir = options.state_dir or default_state_dir()
    # One capacity for the machine: every worker it starts (one per peer, and the local
    # fallback, which inherits the environment) takes one of these slots per running task.
    # A node on loopback works for no peer: its workers keep their own capacities (and no
    # worker watches the slots).
    if not is_loopback_address(options.listen):
        slots = machine_slots.prepare(state_dir / MACHINE_SLOTS, options.capacity)
        os.environ[machine_slots.ENV] = str(slots)
    coordinator = Coordinator(
        CoordinatorConfig(
            state_dir=state_dir,
            routing=routing.load(options.routing_table or settings.swarm.routing_table),
            settings=settings,
            heartbeat_interval_ms=options.heartbeat_ms,
            lease_timeout_ms=options.lease_timeout_ms,
            local_capacity=options.local_capacity,
            local_fallback=options.local_fallback,
        )
    )
    server, _port = await create_server(coordinator, options.listen)
    await coordinator.start()
    await server.start()
    view_path = state_dir / VIEW_FILE
    address = advertised_address(coordinator.address)
    node_id = options.name or f"{socket.gethostname()}-{address}"
    if options.local_fallback and not await coordinator.local_worker_ready(timeout=30):
        print(
            "swarm-lsp node: the local fallback worker did not register; see "
            f"{state_dir / 'local-worker.log'}",
            flush=True,
        )
    workers = PeerWorkers(
        node_id=node_id,
        roles=options.roles if options.work_for_peers else (),
        capacity=options.capacity,
        state_dir=state_dir,
    )
    membership: Membership | MeshOfOne
    if is_loopback_address(address):
        membership = MeshOfOne(node_id, address, options.roles)
    else:
        membership = _membership(settings, options, node_id, address, workers, view_path)
        await membership.start()
        live = membership  # its live peers' result journals (coordinator/journal_ask.py)
        coordinator.mesh_peers = lambda: [p.address for p in live.peers()]
    write_view(view_path, membership)
    if options.work_for_self:
        workers.start(address, journal=False)  # this machine's roles on its own coordinator
    stop = asyncio.Event()
    on_stop_signals(stop.set)
    parent_watch = asyncio.create_task(watch_parent(stop.set))
    alone = " (a mesh of one: loopback)" if isinstance(membership, MeshOfOne) else ""
    print(
        f"swarm-lsp node: {node_id} listening on {coordinator.address} as {address}{alone}",
        flush=True,
    )
    write_ready(options.ready_file, coordinator.address)
    code = await until_stopped(stop, coordinator.failed)
    parent_watch.cancel()
    if not isinstance(membership, MeshOfOne):
        await membership.stop()
    workers.stop_all()
    await server.stop(grace=1.0)
    await coordinator.stop()
    view_path.unlink(missing_ok=True)
    return code


def _membership(
    settings: Settings,
    options: NodeOptions,
    node_id: str,
    address: str,
    workers: PeerWorkers,
    view_path: Path,
) -> Membership:
    """This node's membership: each change is logged, written to the view, and starts (or,
    after a grace period, stops) this machine's worker for the peer."""
    from swarm_lsp.mesh.membership import Membership

    def stop_if_gone(address: str) -> None:
        if address not in membership.view:
            workers.stop(address)

    def changed(event: str, peer: Peer) -> None:
        print(f"swarm-lsp node: peer {peer.id} {event} ({peer.address})", flush=True)
        write_view(view_path, membership)
        if event == "joined":
            workers.start(peer.address)
        else:  # a passing failure (a loaded machine, a flapping link) must not kill its tasks
            asyncio.get_running_loop().call_later(WORKER_GRACE_S, stop_if_gone, peer.address)

    membership = Membership(
        node_id=node_id,
        address=address,
        roles=options.roles,
        settings=settings.swarm,
        seeds=(*settings.swarm.peers, *options.seeds),
        interval=options.check_interval_ms / 1000,
        deadline=options.check_deadline_ms / 1000,
        mdns=options.mdns,
        listener=changed,
    )
    return membership


def render_view(data: dict[str, object]) -> str:
    """The mesh view written by a node, as a plain text table for ``swarm-lsp status``."""
    peers = data.get("peers")
    rows = [
        [
            str(p.get("id", "")),
            str(p.get("address", "")),
            ",".join(p.get("roles") or []),
            f"{float(p.get('rtt_ms') or 0):.1f}ms",
            str(p.get("source", "")),
        ]
        for p in (peers if isinstance(peers, list) else [])
        if isinstance(p, dict)
    ]
    roles = data.get("roles")
    own = ",".join(roles) if isinstance(roles, list) else ""
    head = f"mesh: this peer {data.get('id', '?')} at {data.get('address', '?')} ({own or '-'})"
    if not rows:
        return head + "\n(no other peers)"
    headers = ["PEER", "ADDRESS", "ROLES", "RTT", "FOUND BY"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [head, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
