"""``swarm-lsp index PATH``: index a folder for research (Qdrant Edge), with progress bars.

Keywords (sparse BM25) first: the folder is searchable after that bar. Then the semantic
(dense) vectors, recently edited files first, with a second bar.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="folder to index (default: .)")
    parser.add_argument(
        "--rebuild", action="store_true", help="drop the index and embed every file again"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument(
        "--show-skipped", action="store_true", help="list the files that were skipped and why"
    )
    parser.add_argument(
        "--here",
        action="store_true",
        help="index in this process even when a swarm's research worker runs",
    )


class ProgressBar:
    """A one-line text progress bar on a terminal stream (plain lines when not a terminal)."""

    def __init__(self, stream: TextIO, width: int = 30, what: str = "files") -> None:
        self.stream = stream
        self.width = width
        self.what = what
        self.tty = stream.isatty()
        self._last_pct = -1

    def __call__(self, done: int, total: int, label: str) -> None:
        pct = int(done * 100 / max(total, 1))
        if not self.tty:
            if pct // 10 != self._last_pct // 10 or done == total:
                self.stream.write(f"indexing: {pct:3d}% ({done}/{total} {self.what})\n")
                self._last_pct = pct
            return
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {pct:3d}% {done}/{total} {label[-40:]:<40}")
        self.stream.flush()
        self._last_pct = pct

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from swarm_lsp import config
    from swarm_lsp.workers.research import priority
    from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients
    from swarm_lsp.workers.research.role import summarize

    root = Path(args.path).expanduser()
    settings = config.load(root if root.is_dir() else None)
    if not args.here and root.is_dir():
        from swarm_lsp.workers.research.cli_swarm import index_swarm

        bar = None if args.quiet else ProgressBar(sys.stderr, what="%")
        done = index_swarm(settings, root, args.rebuild, bar)
        if done is not None:
            if bar is not None:
                bar.finish()
            print(f"indexed {root.resolve()} (by the swarm's research worker): {done['summary']}")
            return 0
    bar = None if args.quiet else ProgressBar(sys.stderr)
    vectors = None if args.quiet else ProgressBar(sys.stderr, what="chunks embedded")
    try:
        index = WorkspaceIndex(root, settings)
        try:
            stats = index.update(rebuild=args.rebuild, progress=bar, dense=False)
            if bar is not None:
                bar.finish()
                sys.stderr.write(
                    f"searchable now (keywords) after {stats.sparse_seconds:.1f}s; "
                    "adding semantic vectors\n"
                )
            started = time.perf_counter()
            stats.dense_chunks = index.fill_dense(
                order=priority.file_order(index.root, index.missing_dense()), progress=vectors
            )
            if stats.dense_chunks:
                index.optimize()
            cover = index.coverage()
            stats.points, stats.dense_points = cover.points, cover.dense_points
            stats.seconds = stats.sparse_seconds + time.perf_counter() - started
        finally:
            if vectors is not None:
                vectors.finish()
    finally:
        close_local_clients()
    print(f"indexed {root.resolve()}: {summarize(stats)}")
    if args.show_skipped:
        for path, reason in stats.skipped:
            print(f"  skipped {path}: {reason}")
    elif stats.skipped:
        print(f"  ({len(stats.skipped)} files skipped; --show-skipped lists them)")
    return 0
