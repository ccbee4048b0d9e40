"""``swarm-lsp worker --role R [--role R2] --coordinator HOST:PORT``: serve tasks until stopped."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        help="a role to serve: echo, sleep, refactor, research, test (repeatable)",
    )
    parser.add_argument(
        "--all-roles", action="store_true", help="serve every role available in this build"
    )
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="register as the coordinator's local fallback (started by the coordinator)",
    )
    parser.add_argument(
        "--coordinator",
        default="",
        help="coordinator HOST:PORT (default: swarm.coordinator, else 127.0.0.1:50051)",
    )
    parser.add_argument("--capacity", type=int, default=2, help="tasks at once [%(default)s]")
    parser.add_argument("--name", default="", help="worker name (default: host-pid)")
    parser.add_argument(
        "--model-size",
        action="append",
        default=[],
        help="model sizes this machine runs: 7B 13B 70B 180B (repeatable; default: any)",
    )
    parser.add_argument("--cache-dir", type=Path, help="blob cache and task folders")
    parser.add_argument("--token-file", type=Path, help="read the shared token from this file")
    parser.add_argument(
        "--machine-slots",
        type=Path,
        help="share this machine's capacity with its other workers through this folder's slot "
        "files (a mesh node's workers; default: $SWARM_LSP_MACHINE_SLOTS, else not shared)",
    )
    parser.add_argument(
        "--result-journal",
        type=Path,
        help="journal each success here before reporting it (a mesh node's workers for the "
        "other peers: their node answers from it when the owner died; default: off)",
    )
    parser.add_argument(
        "--health-listen",
        default="",
        help="serve grpc.health.v1 here, e.g. 127.0.0.1:0 (default: off; workers dial out)",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from swarm_lsp.dispatch.locality import check_peer
    from swarm_lsp.dispatch.result_journal import ResultJournal
    from swarm_lsp.dispatch.server_main import (
        load_settings,
        on_stop_signals,
        setup_logging,
        watch_parent,
    )
    from swarm_lsp.errors import EXIT_ROLE_UNAVAILABLE, SwarmError
    from swarm_lsp.workers import machine_slots
    from swarm_lsp.workers.registry import known_roles, role_available
    from swarm_lsp.workers.runtime import WorkerRuntime

    setup_logging()
    settings = load_settings(token_file=args.token_file)
    roles = list(args.role)
    # Known roles whose extra is not installed; an unknown name fails below with the list.
    missing = [r for r in roles if r in known_roles() and not role_available(r)]
    if missing:
        print(
            f"swarm-lsp worker: role not installed in this build: {', '.join(missing)}",
            file=sys.stderr,
        )
        return EXIT_ROLE_UNAVAILABLE
    if args.all_roles:
        roles += [r for r in known_roles() if role_available(r) and r not in roles]
    if not roles:
        print("swarm-lsp worker: name a role (--role) or use --all-roles", file=sys.stderr)
        return 2
    try:
        slots = machine_slots.from_environment(args.machine_slots)
    except SwarmError as err:
        print(f"swarm-lsp worker: {err}", file=sys.stderr)
        return 1
    runtime = WorkerRuntime(
        coordinator=args.coordinator or settings.swarm.first_coordinator or "127.0.0.1:50051",
        roles=roles,
        fallback=args.fallback,
        settings=settings,
        capacity=args.capacity,
        name=args.name,
        model_sizes=args.model_size,
        cache_dir=args.cache_dir,
        machine_slots=slots,
        result_journal=ResultJournal(args.result_journal) if args.result_journal else None,
    )
    try:
        # Refuse a target we never dial (public, cloud metadata) before saying we serve it.
        check_peer(runtime.coordinator, settings.swarm.allowed_hosts)
        runtime.load_handlers()
    except SwarmError as err:
        print(f"swarm-lsp worker: {err}", file=sys.stderr)
        return 1

    async def main() -> int:
        stopping: list[asyncio.Task[None]] = []

        def stop() -> None:
            stopping.append(asyncio.ensure_future(runtime.stop()))

        on_stop_signals(stop)
        watcher = asyncio.create_task(watch_parent(stop))
        health_server = None
        if args.health_listen:
            health_server, port = await runtime.serve_health(args.health_listen)
            host = args.health_listen.rsplit(":", 1)[0]
            print(f"swarm-lsp worker {runtime.name}: health on {host}:{port}", flush=True)
        print(
            f"swarm-lsp worker {runtime.name}: roles {', '.join(runtime.roles)} -> "
            f"{runtime.coordinator}",
            flush=True,
        )
        await runtime.run()
        watcher.cancel()
        if health_server is not None:
            await health_server.stop(0.5)
        return 0

    return asyncio.run(main())
