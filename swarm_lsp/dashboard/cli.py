"""``swarm-lsp dashboard``: a live web page of the swarm, on loopback, behind a fresh token.

It reaches the coordinator as ``swarm-lsp status`` does (``--coordinator``, else
``swarm.coordinator``, else 127.0.0.1:50051; the swarm of one's token is found by port), and
prints the page's address with its token in the URL fragment.
"""

from __future__ import annotations

import argparse

DEFAULT_LISTEN = "127.0.0.1:8765"
TOKEN_ENV = "SWARM_LSP_DASHBOARD_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--coordinator",
        default="",
        help="HOST:PORT (default: swarm.coordinator or 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="[HOST:]PORT",
        help=f"where the page is served (default {DEFAULT_LISTEN}; port 0: any free port)",
    )
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between status polls [%(default)s]"
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os
    import secrets
    import sys

    from swarm_lsp.dashboard.board import Board
    from swarm_lsp.dashboard.web import DashboardDoor, listen
    from swarm_lsp.dispatch.client import DispatchClient
    from swarm_lsp.dispatch.locality import check_peer
    from swarm_lsp.dispatch.server_main import load_settings
    from swarm_lsp.errors import ConfigError
    from swarm_lsp.webdoor import OriginPolicy, authority, parse_listen

    logging.basicConfig(level=os.environ.get("SWARM_LSP_LOG", "WARNING").upper())
    if not 0.1 <= args.interval <= 60:
        raise ConfigError("--interval must be between 0.1 and 60 seconds")
    host, port = parse_listen(args.listen)
    check_peer(authority(host, port))
    settings = load_settings()
    target = args.coordinator or settings.swarm.first_coordinator or "127.0.0.1:50051"
    token = os.environ.get(TOKEN_ENV, "").strip() or secrets.token_urlsafe(32)

    async def main() -> None:
        client = await DispatchClient.connect(settings, target)
        board = Board(client, interval=args.interval)
        door = DashboardDoor(board, token, OriginPolicy())
        server = await listen(door, host, port)
        bound = port or int(next(iter(server.sockets)).getsockname()[1])
        door.origins = OriginPolicy.own_page(host, bound)
        door.hosts = door.origins.hosts()
        board.start()
        print(
            f"swarm-lsp dashboard of {target}: http://{authority(host, bound)}/#token={token}",
            flush=True,
        )
        try:
            async with server:
                await server.serve_forever()
        finally:
            await board.stop()
            await client.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("", file=sys.stderr)
    return 0
