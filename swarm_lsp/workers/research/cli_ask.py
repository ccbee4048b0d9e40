"""``swarm-lsp ask "question"``: answer from the indexed folder, citing path:line; streams."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", help="what to ask about the code")
    parser.add_argument("--path", default=".", help="the indexed folder (default: .)")
    parser.add_argument("--top-k", type=int, default=5, help="chunks to retrieve (default: 5)")
    parser.add_argument(
        "--no-model",
        action="store_true",
        help="only retrieve and list the sources; do not run the chat model",
    )
    parser.add_argument(
        "--here",
        action="store_true",
        help="answer in this process even when a swarm's research worker runs",
    )


class _StdoutReporter:
    """Prints streamed tokens as they come; progress goes to stderr."""

    async def partial(self, text: str, data: dict[str, Any] | None = None) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    async def progress(self, message: str, percentage: int | None = None) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{message[:70]:<70}")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from swarm_lsp import config
    from swarm_lsp.workers.base import TaskRequest
    from swarm_lsp.workers.research.index import close_local_clients
    from swarm_lsp.workers.research.role import ResearchRole

    root = Path(args.path).expanduser()
    settings = config.load(root if root.is_dir() else None)
    role = ResearchRole(settings, background_fill=False)
    task = TaskRequest(
        id="cli-ask",
        type="research",
        payload={"question": args.question, "root": str(root), "top_k": args.top_k},
    )
    reporter = _StdoutReporter()
    if not args.no_model and not args.here and root.is_dir():
        from swarm_lsp.workers.research.cli_swarm import ask_swarm

        answered = ask_swarm(settings, root, args.question, args.top_k)
        if answered is not None:
            coverage = float(answered.get("coverage", 1.0))
            if coverage < 1.0:
                sys.stdout.write(f"\n\n(index {coverage:.0%} complete)")
            sys.stdout.write("\n")
            return 0
    try:
        if args.no_model:
            from swarm_lsp.workers.research import answer
            from swarm_lsp.workers.research.index import WorkspaceIndex

            index = WorkspaceIndex(root, settings)
            index.update(dense=False)
            hits = index.search(args.question, args.top_k)
            text = answer.extractive_answer(args.question, hits)
            if hits.partial:
                text += f"\n\n{hits.note()}; `swarm-lsp index` completes it"
            print(text + answer.sources_section(hits))
            return 0
        asyncio.run(role.run(task, reporter))
    finally:
        role.close()
        close_local_clients()
    sys.stdout.write("\n")
    return 0
