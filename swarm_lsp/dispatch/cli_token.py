"""``swarm-lsp token``: issue a per-credential token into the coordinator's token table.

Run it on the coordinator's machine: the table (``<state>/tokens.json``, 0600) keeps only the
token's sha256; the coordinator re-reads it when it changes, so the token works at once. The
token itself is written to ``--out`` (0600) or printed: hand it to that worker or client
(``swarm-lsp worker --token-file FILE``, or ``swarm.token``). Issuing a token for a name and
kind again revokes the earlier one. Once any token is issued, every call must present one.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", required=True, choices=("client", "worker", "operator"))
    parser.add_argument("--name", required=True, help="the credential's identity")
    parser.add_argument(
        "--allow-role",
        action="append",
        default=[],
        help="a task role a worker may run (repeatable; default: any)",
    )
    parser.add_argument(
        "--capacity", type=int, default=0, help="most slots a worker may claim (0: the cap)"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="the coordinator's state folder (default: cache)"
    )
    parser.add_argument("--tokens-file", type=Path, help="the token table (default: <state>/...)")
    parser.add_argument("--out", type=Path, help="write the token here (0600) instead of stdout")


def run(args: argparse.Namespace) -> int:
    from swarm_lsp import paths
    from swarm_lsp.dispatch.credentials import TABLE_FILE, issue_token, write_private

    table = args.tokens_file or (
        (args.state_dir or paths.user_cache_dir() / "coordinator") / TABLE_FILE
    )
    token = issue_token(
        table, name=args.name, kind=args.role, roles=args.allow_role, capacity=args.capacity
    )
    if args.out:
        write_private(args.out, token + "\n")
        print(f"{args.role} {args.name}: token in {args.out} (table {table})")
    else:
        print(token)
    return 0
