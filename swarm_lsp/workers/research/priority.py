"""In what order the dense fill embeds a workspace's files.

First the files the user has open (sent with the task), then the recently edited ones (newest
first, by modification time, when the files are the user's own and not a task's copy), then the
rest by their rank in the repo map (:mod:`swarm_lsp.context.repomap`: files whose definitions
the rest of the workspace uses most), so the code a question is likely about has its dense
vectors first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

RECENT_S = 3 * 24 * 3600
MAX_RECENT = 50  # a fresh checkout makes every file "recent": only the newest few count
MAX_REPOMAP_FILES = 20_000


def repomap_ranks(
    root: Path, cache_dir: Path, max_file_bytes: int, focus: Sequence[str] = ()
) -> dict[str, float]:
    """Repo-map PageRank of the workspace's source files ({} when it cannot be built)."""
    try:
        from swarm_lsp.context.index import SymbolIndex
        from swarm_lsp.context.repomap import RepoMap

        index = SymbolIndex(root, cache_dir, max_file_bytes)
        index.build()
        if len(index) > MAX_REPOMAP_FILES:
            return {}
        return RepoMap(index).rank_files(focus_files=focus)
    except Exception as err:  # ordering is an optimisation: never fail the fill for it
        log.debug("repo map for %s failed: %s", root, err)
        return {}


def file_order(
    root: Path,
    files: Iterable[str],
    *,
    focus: Sequence[str] = (),
    ranks: dict[str, float] | None = None,
    use_mtime: bool = True,
    now: float | None = None,
) -> list[str]:
    """``files`` ordered: focus, then recently modified (newest first), then by rank."""
    pool = set(files)
    first = [rel for rel in dict.fromkeys(focus) if rel in pool]
    rest = pool - set(first)
    recent: list[tuple[float, str]] = []
    if use_mtime:
        limit = (now if now is not None else time.time()) - RECENT_S
        for rel in rest:
            try:
                mtime = (root / rel).stat().st_mtime
            except OSError:
                continue
            if mtime >= limit:
                recent.append((mtime, rel))
        recent.sort(key=lambda item: (-item[0], item[1]))
    recent_files = [rel for _, rel in recent[:MAX_RECENT]]
    rest -= set(recent_files)
    ranks = ranks or {}
    ranked = sorted(rest, key=lambda rel: (-ranks.get(rel, 0.0), rel))
    return first + recent_files + ranked
