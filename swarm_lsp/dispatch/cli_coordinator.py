"""``swarm-lsp coordinator``: run the gRPC coordinator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default="127.0.0.1:50051",
        help="address to listen on (port 0 picks one; non-loopback needs TLS) [%(default)s]",
    )
    parser.add_argument("--state-dir", type=Path, help="task store and blobs (default: cache)")
    parser.add_argument("--routing-table", help="routing TOML (default: swarm.routingTable)")
    parser.add_argument(
        "--heartbeat-ms", type=int, default=500, help="worker heartbeat interval [%(default)s]"
    )
    parser.add_argument(
        "--lease-timeout-ms",
        type=int,
        default=2000,
        help="a worker silent this long loses its tasks [%(default)s]",
    )
    parser.add_argument(
        "--local-capacity",
        type=int,
        default=2,
        help="tasks the coordinator runs itself when no worker has the role [%(default)s]",
    )
    parser.add_argument(
        "--no-local-fallback", action="store_true", help="never run tasks in the coordinator"
    )
    parser.add_argument("--max-context-bytes", type=int, default=0, help="decompressed cap")
    parser.add_argument("--ready-file", type=Path, help="write host:port here once listening")
    parser.add_argument("--token-file", type=Path, help="read the shared token from this file")
    parser.add_argument(
        "--tokens-file",
        type=Path,
        help="per-credential tokens (`swarm-lsp token`) [<state-dir>/tokens.json]",
    )
    parser.add_argument(
        "--max-worker-capacity",
        type=int,
        default=64,
        help="slots one worker may claim, whatever it asks [%(default)s]",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from swarm_lsp.dispatch.server_main import load_settings, serve_coordinator

    settings = load_settings(token_file=args.token_file)
    return asyncio.run(
        serve_coordinator(
            settings,
            listen=args.listen,
            state_dir=args.state_dir,
            routing_table=args.routing_table,
            heartbeat_ms=args.heartbeat_ms,
            lease_timeout_ms=args.lease_timeout_ms,
            local_capacity=args.local_capacity,
            local_fallback=not args.no_local_fallback,
            max_context_bytes=args.max_context_bytes,
            ready_file=args.ready_file,
            tokens_file=args.tokens_file,
            max_worker_capacity=args.max_worker_capacity,
        )
    )
