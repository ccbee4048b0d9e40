"""``swarm-lsp node``: run one peer of the mesh until SIGINT/SIGTERM (docs/mesh.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default="0.0.0.0:50051",
        help="address to listen on and advertise (not loopback: peers need TLS) [%(default)s]",
    )
    parser.add_argument("--name", default="", help="this peer's id [host name and address]")
    parser.add_argument(
        "--role", action="append", default=[], help="a worker role this machine offers (repeat)"
    )
    parser.add_argument(
        "--peer", action="append", default=[], help="a seed peer HOST:PORT (plus swarm.peers)"
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=2,
        help="tasks this machine runs at once, for all peers together [%(default)s]",
    )
    parser.add_argument(
        "--no-work-for-peers",
        action="store_true",
        help="advertise the roles but run no worker for the peers (nor for this one)",
    )
    parser.add_argument(
        "--no-work-for-self",
        action="store_true",
        help="run no worker for this peer's own coordinator (its workers are started elsewhere)",
    )
    parser.add_argument("--no-mdns", action="store_true", help="seeds only, no LAN discovery")
    parser.add_argument("--state-dir", type=Path, help="task store, blobs and mesh.json")
    parser.add_argument("--routing-table", help="routing TOML (default: swarm.routingTable)")
    parser.add_argument("--heartbeat-ms", type=int, default=500, help="worker heartbeat")
    parser.add_argument("--lease-timeout-ms", type=int, default=2000, help="worker lease")
    parser.add_argument(
        "--local-capacity", type=int, default=2, help="tasks this peer runs itself [%(default)s]"
    )
    parser.add_argument("--no-local-fallback", action="store_true", help="run no tasks here")
    parser.add_argument(
        "--check-interval-ms", type=int, default=500, help="peer health check period"
    )
    parser.add_argument(
        "--check-deadline-ms", type=int, default=700, help="peer health check deadline"
    )
    parser.add_argument("--ready-file", type=Path, help="write host:port here once listening")
    parser.add_argument("--token-file", type=Path, help="read the shared token from this file")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from swarm_lsp.dispatch.server_main import load_settings
    from swarm_lsp.mesh.node import NodeOptions, serve_node

    settings = load_settings(token_file=args.token_file)
    options = NodeOptions(
        listen=args.listen,
        name=args.name,
        roles=tuple(args.role),
        seeds=tuple(args.peer),
        state_dir=args.state_dir,
        routing_table=args.routing_table,
        heartbeat_ms=args.heartbeat_ms,
        lease_timeout_ms=args.lease_timeout_ms,
        local_capacity=args.local_capacity,
        local_fallback=not args.no_local_fallback,
        ready_file=args.ready_file,
        check_interval_ms=args.check_interval_ms,
        check_deadline_ms=args.check_deadline_ms,
        mdns=not args.no_mdns,
        work_for_peers=not args.no_work_for_peers,
        work_for_self=not args.no_work_for_self,
        capacity=args.capacity,
    )
    return asyncio.run(serve_node(settings, options))
