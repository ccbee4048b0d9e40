"""``swarm-lsp serve``: the language server over stdio (default) or TCP."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO


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
        server.start_io(sys.stdin.buffer, protocol_stdout())
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
