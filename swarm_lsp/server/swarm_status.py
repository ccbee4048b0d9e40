"""The ``swarm/status`` notification's params, built from the dispatch client's status.

Shape (what the VS Code and Neovim clients parse)::

    {"state": "starting" | "ready" | "degraded" | "down", "coordinator": "127.0.0.1:port",
     "machines": [{"id", "host", "roles", "load", "capacity", "alive"}],
     "queueDepth": int, "running": int, "recent": [{"id", "type", "state"}],
     "localRoles": [...], "message": str,
     "peers": [{"address", "id", "roles", "rttMs", "current", "load", "capacity", "running",
                "queueDepth", "error"}],
     "tasks": [{"id", "type", "state", "owner", "worker"}]}

``peers``: the mesh's live peers as this server sees them (empty with one coordinator);
``tasks``: the tasks in flight and the peer that owns each (the one that accepted it).

``ready``: at least one live worker; ``degraded``: the coordinator answers but no worker is
connected (it runs tasks on its own slower model, or queues them); ``down``: no coordinator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarm_lsp.dispatch.client import SwarmStatus
from swarm_lsp.mesh.membership import Peer

STATUS_NOTIFICATION = "swarm/status"
RECENT_TASKS = 10


def status_params(
    state: str, coordinator: str, status: SwarmStatus | None, message: str = ""
) -> dict[str, Any]:
    """The notification params for ``state``; ``status`` is None when nothing answered."""
    if status is None:
        return {
            "state": state,
            "coordinator": coordinator,
            "machines": [],
            "queueDepth": 0,
            "running": 0,
            "recent": [],
            "localRoles": [],
            "message": message,
            "peers": [],
            "tasks": [],
        }
    machines = [
        {
            "id": m.name or m.worker_id,
            "host": m.host or m.peer,
            "roles": list(m.roles),
            "load": m.running,
            "capacity": m.capacity,
            "alive": not m.draining,
        }
        for m in status.machines
    ]
    if state == "ready" and not any(m["alive"] for m in machines):
        state = "degraded"
    return {
        "state": state,
        "coordinator": status.coordinator or coordinator,
        "machines": machines,
        "queueDepth": status.queue_depth,
        "running": sum(m.running for m in status.machines),
        "recent": [
            {"id": t.task_id, "type": t.type, "state": t.state}
            for t in status.recent[:RECENT_TASKS]
        ],
        "localRoles": list(status.local_roles),
        "message": message,
        "peers": [],
        "tasks": tasks_of(status.coordinator or coordinator, status),
    }


def tasks_of(owner: str, status: SwarmStatus) -> list[dict[str, Any]]:
    return [
        {"id": t.task_id, "type": t.type, "state": t.state, "owner": owner, "worker": t.worker}
        for t in status.active
    ]


def mesh_params(
    params: dict[str, Any], peers: list[Peer], statuses: Mapping[str, object], current: str
) -> dict[str, Any]:
    """``params`` (the current peer's) with every live peer and the tasks each one owns."""
    rows: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for peer in peers:
        status = statuses.get(peer.address)
        row: dict[str, Any] = {
            "address": peer.address,
            "id": peer.id,
            "roles": list(peer.roles),
            "rttMs": round(peer.rtt_ms, 2),
            "current": peer.address == current,
        }
        if isinstance(status, SwarmStatus):
            running = sum(m.running for m in status.machines)
            capacity = sum(m.capacity for m in status.machines)
            row |= {
                "load": round(running / capacity, 2) if capacity else 0.0,
                "running": running,
                "capacity": capacity,
                "queueDepth": status.queue_depth,
                "machines": [m.name or m.worker_id for m in status.machines],
            }
            tasks += tasks_of(peer.address, status)
        else:
            row["error"] = str(status) if status is not None else "not asked yet"
        rows.append(row)
    return {**params, "peers": rows, "tasks": tasks}


def roles_available(params: dict[str, Any]) -> set[str]:
    """Roles a live worker (or the coordinator's local fallback) can run right now."""
    roles: set[str] = set(params.get("localRoles") or ())
    for machine in params.get("machines") or ():
        if machine.get("alive"):
            roles.update(machine.get("roles") or ())
    return roles
