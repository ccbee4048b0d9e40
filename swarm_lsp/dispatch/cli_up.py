"""``swarm-lsp up``: a swarm of one (a mesh node + one worker per role), on 127.0.0.1 unless
``--listen``/``swarm.listen`` names an address peers can join (docs/mesh.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=50051,
        help="coordinator port on 127.0.0.1 (0: any) [%(default)s]",
    )
    parser.add_argument(
        "--role",
        action="append",
        default=[],
        help="worker roles to start (repeatable; default: refactor, research, test)",
    )
    parser.add_argument(
        "--listen",
        default="",
        help="listen here instead of 127.0.0.1 so mesh peers can join (an address of this "
        "machine, or 0.0.0.0; needs TLS) [swarm.listen]",
    )
    parser.add_argument("--capacity", type=int, default=2, help="tasks per worker [%(default)s]")
    parser.add_argument(
        "--state-dir", type=Path, help="task store, blobs and logs (default: cache/up-PORT)"
    )
    parser.add_argument("--token-file", type=Path, help="read the shared token from this file")
    parser.add_argument("--ready-file", type=Path, help="write host:port here once up")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from swarm_lsp import paths
    from swarm_lsp.dispatch.local_swarm import DEFAULT_ROLES, LocalSwarm
    from swarm_lsp.dispatch.server_main import load_settings, on_stop_signals, write_ready

    settings = load_settings(token_file=args.token_file)

    async def main() -> int:
        swarm = LocalSwarm(
            settings,
            roles=tuple(args.role) or DEFAULT_ROLES,
            port=args.port,
            # Kept across runs: accepted tasks survive a restart of `swarm-lsp up`.
            state_dir=args.state_dir or paths.user_cache_dir() / f"up-{args.port}",
            worker_capacity=args.capacity,
            token=settings.swarm.token,  # "" (none configured): a fresh random token
            listen_host=args.listen or None,
        )
        stop = asyncio.Event()
        on_stop_signals(stop.set)
        try:
            address = await swarm.start()
            print(f"swarm-lsp up: coordinator on {address}", flush=True)
            if swarm.joinable:
                print(
                    f"  a mesh node on {swarm.listen_host}: peers on the LAN can join it "
                    "(mTLS); its roles work for them too",
                    flush=True,
                )
            for role in swarm.workers:
                if role not in swarm.skipped:
                    print(f"  worker {role}: running", flush=True)
            for role, why in swarm.skipped.items():
                print(
                    f"  worker {role}: not started ({why}); the coordinator runs it locally "
                    "if it can",
                    flush=True,
                )
            if swarm.token_file.exists():
                print(
                    f"token: {swarm.token_file} (0600; local clients find it themselves)",
                    flush=True,
                )
            print(f"logs: {swarm.state_dir / 'logs'}; stop with Ctrl-C", flush=True)
            write_ready(args.ready_file, address)
            await stop.wait()
        finally:
            await swarm.stop()
        print("swarm-lsp up: stopped", flush=True)
        return 0

    return asyncio.run(main())
