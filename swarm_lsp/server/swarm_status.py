"""The ``swarm/status`` notification's params, built from the dispatch client's status.

Shape (what the VS Code and Neovim clients parse)::

    {"state": "starting" | "ready" | "degraded" | "down", "coordinator": "127.0.0.1:port",
     "machines": [{"id", "host", "roles", "load", "capacity", "alive"}],
     "queueDepth": int, "running": int, "recent": [{"id", "type", "state"}],
     "localRoles": [...], "message": str}

``ready``: at least one live worker; ``degraded``: the coordinator answers but no worker is
connected (it runs tasks on its own slower model, or queues them); ``down``: no coordinator.
"""

from __future__ import annotations

from typing import Any

from swarm_lsp.dispatch.client import SwarmStatus

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
    }


def roles_available(params: dict[str, Any]) -> set[str]:
    """Roles a live worker (or the coordinator's local fallback) can run right now."""
    roles: set[str] = set(params.get("localRoles") or ())
    for machine in params.get("machines") or ():
        if machine.get("alive"):
            roles.update(machine.get("roles") or ())
    return roles
