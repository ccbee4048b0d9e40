"""``swarm-lsp status``: machines, roles, load, queue depth and recent tasks (``--watch``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarm_lsp.dispatch.client import SwarmStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        default="",
        help="HOST:PORT, or several (comma separated: every peer of a mesh is asked) "
        "(default: swarm.coordinator or 127.0.0.1:50051)",
    )
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument("--interval", type=float, default=1.0, help="--watch refresh seconds")
    parser.add_argument("--recent", type=int, default=10, help="recent tasks to show [%(default)s]")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--mesh-view",
        type=Path,
        help="a node's mesh.json (default: the local node's, when one runs); see docs/mesh.md",
    )
    parser.add_argument("--mesh", action="store_true", help="only the mesh's peers (no dialling)")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


def render(status: SwarmStatus) -> str:
    """The status as plain text tables."""
    now = int(time.time() * 1000)
    out = [
        f"coordinator {status.coordinator}   up {status.uptime_ms // 1000}s   "
        f"queue depth {status.queue_depth}"
    ]
    out.append("")
    machines = [
        [
            m.name,
            m.host,
            ",".join(m.roles),
            f"{m.running}/{m.capacity}",
            f"{m.load:.2f}",
            str(m.completed),
            f"{m.service_ms:.1f}ms" if m.service_ms else "-",
            f"{m.last_heartbeat_ms_ago}ms" + (" draining" if m.draining else ""),
        ]
        for m in status.machines
    ]
    out += _table(
        ["MACHINE", "HOST", "ROLES", "RUNNING", "LOAD", "DONE", "SERVICE", "HEARTBEAT"], machines
    )
    if not machines:
        out.append("(no workers connected)")
    if status.local_roles:
        out.append(f"local fallback roles: {', '.join(status.local_roles)}")
    out.append("")
    queues = [[role, str(depth)] for role, depth in sorted(status.queues.items())]
    out += _table(["QUEUE", "DEPTH"], queues) if queues else ["queues: empty"]
    out.append("")
    recent = [
        [
            t.task_id[:12],
            t.type,
            t.state,
            t.worker + (" (fallback)" if t.fallback else ""),
            f"{(now - t.submitted_ms) // 1000}s ago",
            f"{t.duration_ms}ms",
        ]
        for t in status.recent
    ]
    out += _table(["TASK", "TYPE", "STATE", "WORKER", "SUBMITTED", "TOOK"], recent)
    if status.counts:
        out.append("")
        out.append(
            "totals: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(status.counts.items()))
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from swarm_lsp.dispatch import mesh_status
    from swarm_lsp.dispatch.client import DispatchClient
    from swarm_lsp.dispatch.server_main import load_settings
    from swarm_lsp.mesh.node import VIEW_FILE, default_state_dir, read_view, render_view

    settings = load_settings()
    listed = [p for p in args.coordinator.replace(",", " ").split() if p] or list(
        settings.swarm.coordinators
    )
    target = listed[0] if listed else "127.0.0.1:50051"
    view_path = args.mesh_view or default_state_dir() / VIEW_FILE

    if args.mesh:
        view = read_view(view_path)
        if view is None:
            print(f"swarm-lsp status: no mesh view at {view_path} (is `swarm-lsp node` running?)")
            return 1
        print(json.dumps(view, indent=2) if args.json else render_view(view))
        return 0

    async def mesh_main(view: dict[str, object] | None) -> int:
        peers = mesh_status.peers_of(listed, view)
        while True:
            answers = await mesh_status.ask_all(settings, peers, args.recent)
            if args.json:
                text = json.dumps(mesh_status.to_json(answers, view), indent=2)
            else:
                text = mesh_status.render(answers) + ("\n\n" + render_view(view) if view else "")
            if args.watch and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            print(text, flush=True)
            if not args.watch:
                return 0 if any(a.status is not None for a in answers) else 1
            await asyncio.sleep(args.interval)

    async def main() -> int:
        view = read_view(view_path)
        if len(listed) > 1 or (view and view.get("peers")):
            return await mesh_main(view)
        client = await DispatchClient.connect(settings, target)
        try:
            while True:
                status = await client.status(recent=args.recent)
                view = read_view(view_path)
                if args.json:
                    text = json.dumps({**status.to_json(), "mesh": view}, indent=2)
                else:
                    text = render(status) + ("\n\n" + render_view(view) if view else "")
                if args.watch and sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                print(text, flush=True)
                if not args.watch:
                    return 0
                await asyncio.sleep(args.interval)
        finally:
            await client.close()

    return asyncio.run(main())
