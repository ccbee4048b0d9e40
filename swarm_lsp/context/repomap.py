"""Repo map: which definitions in the workspace matter most from where the user is.

Files are nodes; a file that references (or imports) a name defined in another file gets an
edge to it, weighted by how often and how telling the name is. A personalised PageRank
(small power iteration, no networkx) toward the current file and the names near the cursor
ranks files; each file's rank then flows along its edges to the definitions it uses, which
ranks definitions. The map renders the best definitions as signatures only, grouped by file,
and is fitted to a token budget by binary search over how many definitions to show.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from swarm_lsp.context.index import SymbolIndex
from swarm_lsp.context.packing import TokenCounter, estimate_tokens, fit_count
from swarm_lsp.context.tags import Tag

#: Names defined in more files than this say little about which file is meant; skipping
#: them keeps the graph small on big workspaces (``get``, ``run``, ``__init__`` …).
MAX_DEFINING_FILES = 24
DAMPING = 0.85
ITERATIONS = 40
TOLERANCE = 1e-7


def name_weight(name: str, defining_files: int) -> float:
    """How much a reference to ``name`` says about the file that defines it."""
    weight = 1.0
    if name.startswith("_"):
        weight *= 0.1
    if len(name) >= 8 and ("_" in name.strip("_") or any(c.isupper() for c in name[1:])):
        weight *= 4.0  # long snake_case / camelCase names are specific
    if defining_files > 5:
        weight *= 0.1
    return weight


def pagerank(
    edges: Mapping[int, Mapping[int, float]],
    size: int,
    personalization: Mapping[int, float] | None = None,
    damping: float = DAMPING,
    iterations: int = ITERATIONS,
    tolerance: float = TOLERANCE,
) -> list[float]:
    """Personalised PageRank by power iteration over weighted out-edges.

    Rank leaving a node is split by edge weight; dangling nodes and the teleport step go to
    the personalization vector (uniform when none is given). Ranks sum to 1.
    """
    if size == 0:
        return []
    if personalization:
        total_p = sum(v for v in personalization.values() if v > 0)
        teleport = [0.0] * size
        for node, value in personalization.items():
            if value > 0 and 0 <= node < size:
                teleport[node] = value / total_p
        if not any(teleport):
            teleport = [1.0 / size] * size
    else:
        teleport = [1.0 / size] * size
    out: list[list[tuple[int, float]]] = [[] for _ in range(size)]
    for src, dsts in edges.items():
        total_w = sum(w for w in dsts.values() if w > 0)
        if total_w > 0:
            out[src] = [(dst, w / total_w) for dst, w in dsts.items() if w > 0]
    rank = list(teleport)
    for _ in range(iterations):
        new = [0.0] * size
        dangling = 0.0
        for src in range(size):
            r = rank[src]
            if not r:
                continue
            targets = out[src]
            if not targets:
                dangling += r
                continue
            share = damping * r
            for dst, w in targets:
                new[dst] += share * w
        spill = damping * dangling + (1.0 - damping)
        for node in range(size):
            new[node] += spill * teleport[node]
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < tolerance:
            break
    return rank


@dataclass(frozen=True)
class _Graph:
    files: list[str]
    position: dict[str, int]
    edges: dict[int, dict[int, float]]  # src → dst → weight
    uses: dict[int, list[tuple[int, str, float]]]  # src → (dst, name, weight)


class RepoMap:
    """Ranks and renders the definitions of a :class:`SymbolIndex`."""

    def __init__(self, index: SymbolIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._graph: _Graph | None = None
        self._generation = -1
        self._parents: dict[Tag, list[Tag]] = {}
        self._parents_generation = -1

    def graph(self) -> _Graph:
        """The reference graph, rebuilt only when the index changed."""
        with self._lock:
            if self._graph is not None and self._generation == self.index.generation:
                return self._graph
            generation = self.index.generation
            self._graph = self._build()
            self._generation = generation
            return self._graph

    def _build(self) -> _Graph:
        entries = self.index.entries()
        files = sorted(entry.path for entry in entries)
        position = {path: i for i, path in enumerate(files)}
        definers: dict[str, set[int]] = defaultdict(set)
        for entry in entries:
            for tag in entry.definitions:
                definers[tag.name].add(position[entry.path])
        edges: dict[int, dict[int, float]] = {}
        uses: dict[int, list[tuple[int, str, float]]] = {}
        for entry in entries:
            src = position[entry.path]
            mentions = dict(entry.references)
            for tag in entry.imports:
                if tag.kind != "module":
                    mentions[tag.name] = mentions.get(tag.name, 0) + 1
            out: dict[int, float] = {}
            used: list[tuple[int, str, float]] = []
            for name, count in mentions.items():
                dsts = definers.get(name)
                if not dsts or len(dsts) > MAX_DEFINING_FILES:
                    continue
                targets = [d for d in dsts if d != src]
                if not targets:
                    continue
                weight = name_weight(name, len(dsts)) * math.sqrt(count) / len(targets)
                for dst in targets:
                    out[dst] = out.get(dst, 0.0) + weight
                    used.append((dst, name, weight))
            if out:
                edges[src] = out
                uses[src] = used
        return _Graph(files, position, edges, uses)

    def rank_files(
        self, focus_files: Iterable[str] = (), focus_names: Iterable[str] = ()
    ) -> dict[str, float]:
        """PageRank of every indexed file, personalised toward the focus files and names."""
        graph = self.graph()
        personalization = self._personalization(graph, focus_files, focus_names)
        ranks = pagerank(graph.edges, len(graph.files), personalization)
        return {path: ranks[i] for i, path in enumerate(graph.files)}

    def _personalization(
        self, graph: _Graph, focus_files: Iterable[str], focus_names: Iterable[str]
    ) -> dict[int, float]:
        weights: dict[int, float] = {}
        for path in focus_files:
            i = graph.position.get(self.index.relative(path))
            if i is not None:
                weights[i] = weights.get(i, 0.0) + 1.0
        names = set(focus_names)
        for name in names:
            tags = self.index.definitions(name)
            for tag in tags:
                i = graph.position.get(tag.path)
                if i is not None:
                    weights[i] = weights.get(i, 0.0) + 0.5 / len(tags)
        return weights

    def ranked_definitions(
        self,
        focus_files: Iterable[str] = (),
        focus_names: Iterable[str] = (),
        exclude_files: Iterable[str] = (),
    ) -> list[Tag]:
        """Definitions, best first: rank flowing along the references that use them."""
        focus_files = list(focus_files)
        focus_names = set(focus_names)
        graph = self.graph()
        personalization = self._personalization(graph, focus_files, focus_names)
        ranks = pagerank(graph.edges, len(graph.files), personalization)
        def_rank: dict[tuple[int, str], float] = defaultdict(float)
        for src, used in graph.uses.items():
            total = sum(graph.edges[src].values())
            if total <= 0:
                continue
            for dst, name, weight in used:
                def_rank[(dst, name)] += ranks[src] * weight / total
        excluded = {self.index.relative(p) for p in exclude_files}
        scored: list[tuple[float, str, int, Tag]] = []
        for entry in self.index.entries():
            if entry.path in excluded:
                continue
            i = graph.position.get(entry.path)
            if i is None:
                continue
            for tag in entry.definitions:
                score = def_rank.get((i, tag.name), 0.0) + 1e-3 * ranks[i]
                if tag.name in focus_names:
                    score *= 10.0
                scored.append((-score, tag.path, tag.line, tag))
        scored.sort(key=lambda item: (item[0], item[1], item[2]))
        return [item[3] for item in scored]

    def parents_of(self, tag: Tag) -> list[Tag]:
        """Enclosing definitions of ``tag`` (memoised until the index changes)."""
        if self._parents_generation != self.index.generation:
            self._parents.clear()
            self._parents_generation = self.index.generation
        chain = self._parents.get(tag)
        if chain is None:
            entry = self.index.get(tag.path)
            chain = enclosing_definitions(tag, entry.definitions) if entry else []
            self._parents[tag] = chain
        return chain

    def render(self, tags: Iterable[Tag]) -> str:
        """Signatures grouped by file (files in first-appearance order), parents included."""
        return render_signatures(tags, self.parents_of)

    def fit(
        self,
        budget: int,
        focus_files: Iterable[str] = (),
        focus_names: Iterable[str] = (),
        exclude_files: Iterable[str] = (),
        count_tokens: TokenCounter | None = None,
    ) -> tuple[str, list[Tag]]:
        """The largest repo map (by ranked definitions) that fits ``budget`` tokens."""
        count = count_tokens or estimate_tokens
        ranked = self.ranked_definitions(focus_files, focus_names, exclude_files)
        ranked = ranked[: max(1, budget)]  # a signature costs at least a token
        k, text = fit_count(len(ranked), lambda k: self.render(ranked[:k]), budget, count)
        return text, ranked[:k]


def enclosing_definitions(tag: Tag, definitions: Iterable[Tag]) -> list[Tag]:
    """Enclosing definitions of ``tag`` among its file's ``definitions``, outermost first."""
    by_name: dict[str, list[Tag]] = defaultdict(list)
    for t in definitions:
        by_name[t.name].append(t)
    chain: list[Tag] = []
    current = tag
    while current.scope and len(chain) < 8:
        parent = next(
            (
                t
                for t in by_name.get(current.scope, ())
                if t.start_line <= current.start_line
                and t.end_line >= current.end_line
                and t != current
            ),
            None,
        )
        if parent is None or parent in chain:
            break
        chain.append(parent)
        current = parent
    return list(reversed(chain))


def render_signatures(tags: Iterable[Tag], parents_of: Callable[[Tag], list[Tag]]) -> str:
    """Render definitions as an indented outline per file, enclosing definitions included::

    shapes/geometry.py:
      def area_of_circle(radius: float) -> float:
      class Rectangle:
        def area(self) -> float:
    """
    order: list[str] = []
    grouped: dict[str, set[Tag]] = {}
    for tag in tags:
        if tag.path not in grouped:
            grouped[tag.path] = set()
            order.append(tag.path)
        grouped[tag.path].add(tag)
        grouped[tag.path].update(parents_of(tag))
    lines: list[str] = []
    for path in order:
        lines.append(f"{path}:")
        members = grouped[path]
        for tag in sorted(members, key=lambda t: (t.start_line, t.line, t.column)):
            depth = sum(1 for p in parents_of(tag) if p in members)
            lines.append("  " + "  " * depth + tag.signature)
    return "\n".join(lines) + "\n" if lines else ""
