"""``swarm-lsp status`` over a mesh: every peer asked at once; peers, load, latency, owners.

Used when ``--coordinator`` (or ``swarm.coordinator``) lists several peers, or when this
machine runs a node whose view (``mesh.json``) lists others. A peer that does not answer
within the bound is shown with its error; the others are shown all the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.client import DispatchClient, SwarmStatus
from swarm_lsp.errors import SwarmError

ASK_TIMEOUT_S = 5.0


@dataclass
class PeerAnswer:
    address: str
    status: SwarmStatus | None
    error: str
    latency_ms: float  # the status call's round trip, connection set-up excluded


def peers_of(listed: Iterable[str], view: dict[str, object] | None) -> list[str]:
    """The listed peers, then the view's own address and its peers (each once)."""
    found = [*listed]
    if view:
        found.append(str(view.get("address") or ""))
        peers = view.get("peers")
        for peer in peers if isinstance(peers, list) else []:
            if isinstance(peer, dict):
                found.append(str(peer.get("address") or ""))
    return list(dict.fromkeys(p for p in found if p))


async def ask_all(settings: Settings, peers: list[str], recent: int) -> list[PeerAnswer]:
    async def one(address: str) -> PeerAnswer:
        try:
            async with await DispatchClient.connect(
                settings, address, timeout=ASK_TIMEOUT_S, call_timeout=ASK_TIMEOUT_S
            ) as client:
                started = time.monotonic()
                status = await client.status(recent=recent)
                return PeerAnswer(address, status, "", (time.monotonic() - started) * 1000)
        except SwarmError as err:
            return PeerAnswer(address, None, str(err), 0.0)

    return list(await asyncio.gather(*(one(p) for p in peers)))


def _roles(status: SwarmStatus) -> list[str]:
    return sorted({r for m in status.machines for r in m.roles} | set(status.local_roles))


def to_json(answers: list[PeerAnswer], view: dict[str, object] | None) -> dict[str, Any]:
    peers: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for answer in answers:
        row: dict[str, Any] = {"address": answer.address, "error": answer.error}
        status = answer.status
        if status is not None:
            running = sum(m.running for m in status.machines)
            capacity = sum(m.capacity for m in status.machines)
            row |= {
                "roles": _roles(status),
                "machines": [m.name for m in status.machines],
                "running": running,
                "capacity": capacity,
                "queueDepth": status.queue_depth,
                "latencyMs": round(answer.latency_ms, 2),
            }
            tasks += [
                {
                    "taskId": t.task_id,
                    "type": t.type,
                    "state": t.state,
                    "owner": answer.address,
                    "worker": t.worker,
                }
                for t in status.active
            ]
        peers.append(row)
    return {
        "peers": peers,
        "tasks": tasks,
        "statuses": {a.address: a.status.to_json() for a in answers if a.status is not None},
        "mesh": view,
    }


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def render(answers: list[PeerAnswer]) -> str:
    """Peers (roles of the machines working for each, load, latency) and who owns what."""
    rows = []
    for a in answers:
        if a.status is None:
            rows.append([a.address, "-", "-", "-", "-", f"unreachable: {a.error[:60]}"])
            continue
        running = sum(m.running for m in a.status.machines)
        capacity = sum(m.capacity for m in a.status.machines)
        rows.append(
            [
                a.address,
                ",".join(_roles(a.status)) or "-",
                f"{running}/{capacity}",
                str(a.status.queue_depth),
                f"{a.latency_ms:.1f}ms",
                ",".join(m.name for m in a.status.machines) or "(no workers)",
            ]
        )
    out = _table(["PEER", "ROLES", "RUNNING", "QUEUED", "LATENCY", "MACHINES"], rows)
    tasks = [
        [t.task_id[:12], t.type, t.state, a.address, t.worker or "-"]
        for a in answers
        if a.status is not None
        for t in a.status.active
    ]
    out.append("")
    if tasks:
        out += _table(["TASK", "TYPE", "STATE", "OWNER", "WORKER"], tasks)
    else:
        out.append("(no task in flight)")
    return "\n".join(out)
