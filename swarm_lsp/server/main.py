"""``swarm-lsp serve``: the language server over stdio (default), TCP or WebSocket (with a token),
or a Unix socket only this user can open."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import BinaryIO

from swarm_lsp.server.framing import DEFAULT_MAX_MESSAGE_BYTES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    door = parser.add_mutually_exclusive_group()
    door.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (default)")
    door.add_argument(
        "--tcp",
        action="store_true",
        help="listen for one client on TCP; it must send initializationOptions.swarmToken",
    )
    door.add_argument(
        "--socket",
        default="",
        metavar="PATH",
        help="listen for one client on a Unix socket at PATH that only this user can open",
    )
    door.add_argument(
        "--ws",
        default="",
        metavar="[HOST:]PORT",
        help="listen for one client on WebSocket (loopback unless HOST is given); it must send "
        "initializationOptions.swarmToken",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="--ws: a browser origin (e.g. http://127.0.0.1:8080) whose pages may connect; "
        "repeatable. Other browser origins get 403; clients without an Origin are let through",
    )
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument(
        "--token-file",
        default="",
        metavar="PATH",
        help="the TCP/WebSocket token file (default: serve-token in the cache folder, created "
        "0600 on first use; $SWARM_LSP_SERVE_TOKEN overrides it)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        metavar="N",
        help=f"refuse LSP messages larger than N bytes (default {DEFAULT_MAX_MESSAGE_BYTES:,})",
    )
    parser.add_argument("--log-file", default="", help="write the server log to this file")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from swarm_lsp.dispatch.locality import check_peer
    from swarm_lsp.errors import ConfigError
    from swarm_lsp.server import transport
    from swarm_lsp.server.app import create_server
    from swarm_lsp.server.serve_token import load_token

    if args.max_message_bytes < 1024:
        raise ConfigError("--max-message-bytes must be at least 1024")

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers = [logging.FileHandler(args.log_file)]
    # Never log to stdout: it carries the protocol.
    logging.basicConfig(level=args.log_level, handlers=handlers, force=True)
    if args.log_level != "DEBUG":
        # pygls logs every message body at INFO; a 5 MB document would flood the log.
        logging.getLogger("pygls").setLevel(logging.WARNING)
    limit = args.max_message_bytes
    if args.tcp:
        check_peer(f"{args.host}:{args.port}")
        token, where = load_token(Path(args.token_file) if args.token_file else None)
        transport.serve_tcp(create_server(), args.host, args.port, limit, token, where)
    elif args.ws:
        from swarm_lsp.server.ws_transport import serve_websocket
        from swarm_lsp.webdoor import OriginPolicy, authority, parse_listen

        host, port = parse_listen(args.ws)
        check_peer(authority(host, port))
        token, where = load_token(Path(args.token_file) if args.token_file else None)
        origins = OriginPolicy(args.allow_origin)
        serve_websocket(create_server(), host, port, limit, token, where, origins)
    elif args.socket:
        transport.serve_unix(create_server(), Path(args.socket), limit)
    else:
        server = create_server()
        transport.serve_stdio(server, sys.stdin.buffer, protocol_stdout(), limit)
    return 0


def protocol_stdout() -> BinaryIO:
    """A private handle on the real stdout for LSP messages; fd 1 then points at stderr.

    llama.cpp (and llama-cpp-python while it loads a model quietly) write to, or briefly
    redirect, file descriptor 1. Were the protocol on fd 1, a message sent during a model
    load would vanish and its client would wait forever; stray prints would corrupt the
    stream. The protocol keeps its own duplicate of the descriptor instead.
    """
    import os

    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(os.dup(2), "w", buffering=1)
    return os.fdopen(private, "wb", buffering=0)
