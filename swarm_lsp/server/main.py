"""``swarm-lsp serve``: the language server over stdio (default) or TCP."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (default)")
    parser.add_argument("--tcp", action="store_true", help="listen for one client on TCP")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument("--log-file", default="", help="write the server log to this file")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from swarm_lsp.dispatch.locality import check_peer
    from swarm_lsp.server.app import create_server

    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers = [logging.FileHandler(args.log_file)]
    # Never log to stdout: it carries the protocol.
    logging.basicConfig(level=args.log_level, handlers=handlers, force=True)
    if args.log_level != "DEBUG":
        # pygls logs every message body at INFO; a 5 MB document would flood the log.
        logging.getLogger("pygls").setLevel(logging.WARNING)
    server = create_server()
    if args.tcp:
        check_peer(f"{args.host}:{args.port}")
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0
