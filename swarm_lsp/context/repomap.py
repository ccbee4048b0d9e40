"""Repo map: which definitions in the workspace matter most from where the user is.

Files are nodes; a file that references (or imports) a name defined in another file gets an
edge to it, weighted by how often and how telling the name is. A personalised PageRank
(small power iteration, no networkx) toward the current file and the names near the cursor
ranks files; each file's rank then flows along its edges to the definitions it uses, which
ranks definitions. The map renders the best definitions as signatures only, grouped by file,
and is fitted to a token budget by binary search over how many definitions to show.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import mul, sub

from swarm_lsp.context.index import SymbolIndex
from swarm_lsp.context.packing import TokenCounter, estimate_tokens, fit_count
from swarm_lsp.context.tags import Tag

#: Names defined in more files than this say little about which file is meant; skipping
#: them keeps the graph small on big workspaces (``get``, ``run``, ``__init__`` …).
MAX_DEFINING_FILES = 24
DAMPING = 0.85
ITERATIONS = 40
TOLERANCE = 1e-6
#: Out-edges kept per file (the strongest); the long tail changes ranks very little.
MAX_OUT_EDGES = 32
#: Unreferenced definitions are only considered in this many best-ranked files.
TOP_FILES = 64


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


@dataclass(frozen=True)
class Transition:
    """A weighted graph in "pull" form: for each node, who links to it and how strongly.

    Weights are normalised per source, so one PageRank step for a node is a dot product
    over its incoming list, which runs in C (``sum(map(mul, ...))``) instead of a Python loop.
    """

    size: int
    incoming: list[tuple[tuple[int, ...], tuple[float, ...]]]
    dangling: tuple[int, ...]  # nodes without out-edges


def transition(edges: Mapping[int, Mapping[int, float]], size: int) -> Transition:
    sources: list[list[int]] = [[] for _ in range(size)]
    weights: list[list[float]] = [[] for _ in range(size)]
    has_out = [False] * size
    for src, dsts in edges.items():
        total_w = sum(w for w in dsts.values() if w > 0)
        if total_w <= 0 or not 0 <= src < size:
            continue
        for dst, w in dsts.items():
            if w > 0 and 0 <= dst < size:
                sources[dst].append(src)
                weights[dst].append(w / total_w)
                has_out[src] = True
    incoming = [(tuple(s), tuple(w)) for s, w in zip(sources, weights, strict=True)]
    dangling = tuple(i for i in range(size) if not has_out[i])
    return Transition(size, incoming, dangling)


def pagerank(
    edges: Mapping[int, Mapping[int, float]] | Transition,
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
    graph = edges if isinstance(edges, Transition) else transition(edges, size)
    teleport = [1.0 / size] * size
    if personalization:
        total_p = sum(v for k, v in personalization.items() if v > 0 and 0 <= k < size)
        if total_p > 0:
            teleport = [0.0] * size
            for node, value in personalization.items():
                if value > 0 and 0 <= node < size:
                    teleport[node] = value / total_p
    rank = list(teleport)
    incoming = graph.incoming
    for _ in range(iterations):
        get = rank.__getitem__
        dangling_mass = sum(map(get, graph.dangling))
        spill = damping * dangling_mass + (1.0 - damping)
        new = [
            damping * sum(map(mul, map(get, srcs), ws)) + spill * t if srcs else spill * t
            for (srcs, ws), t in zip(incoming, teleport, strict=True)
        ]
        delta = sum(map(abs, map(sub, new, rank)))
        rank = new
        if delta < tolerance:
            break
    return rank


@dataclass(frozen=True)
class _Graph:
    files: list[str]
    position: dict[str, int]
    transition: Transition
    # src → [(dst, name, weight normalised by the src's total out-weight)]
    uses: dict[int, list[tuple[int, str, float]]]
    # (file index, name) → the definitions of that name in that file
    defined: dict[tuple[int, str], list[Tag]]


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
            if len(out) > MAX_OUT_EDGES:
                # Keep the strongest links: on the standard library the top 32 carry 98%
                # of each file's out-weight, and PageRank's cost is linear in the edges.
                strongest = sorted(out.items(), key=lambda item: item[1], reverse=True)
                out = dict(strongest[:MAX_OUT_EDGES])
                used = [u for u in used if u[0] in out]
            if out:
                edges[src] = out
                total = sum(out.values())
                uses[src] = [(dst, name, weight / total) for dst, name, weight in used]
        defined: dict[tuple[int, str], list[Tag]] = defaultdict(list)
        for entry in entries:
            i = position[entry.path]
            for tag in entry.definitions:
                defined[(i, tag.name)].append(tag)
        return _Graph(files, position, transition(edges, len(files)), uses, dict(defined))

    def rank_files(
        self, focus_files: Iterable[str] = (), focus_names: Iterable[str] = ()
    ) -> dict[str, float]:
        """PageRank of every indexed file, personalised toward the focus files and names."""
        graph = self.graph()
        personalization = self._personalization(graph, focus_files, focus_names)
        ranks = pagerank(graph.transition, len(graph.files), personalization)
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
        iterations: int = ITERATIONS,
        limit: int | None = None,
    ) -> list[Tag]:
        """Definitions, best first (at most ``limit``): rank flowing along the references
        that use them.

        Candidates are the definitions some file references, the definitions of the focus
        names, and everything in the best-ranked files (so a fresh, unreferenced file still
        shows up); the rest of a big workspace is never scored.
        """
        focus_files = list(focus_files)
        focus_names = set(focus_names)
        graph = self.graph()
        personalization = self._personalization(graph, focus_files, focus_names)
        ranks = pagerank(graph.transition, len(graph.files), personalization, iterations=iterations)
        floor = max(ranks, default=0.0) * 1e-9
        def_rank: dict[tuple[int, str], float] = defaultdict(float)
        for src, used in graph.uses.items():
            r = ranks[src]
            if r <= floor:
                continue
            for dst, name, weight in used:
                def_rank[(dst, name)] += r * weight
        excluded = {graph.position.get(self.index.relative(p)) for p in exclude_files}
        # Keyed by id(): tags are shared objects of the index, and hashing a 12-field
        # dataclass tens of thousands of times per query shows up in profiles.
        scores: dict[int, tuple[float, Tag]] = {}

        def consider(i: int, tags: Iterable[Tag], base: float) -> None:
            if i in excluded:
                return
            bonus = 1e-3 * ranks[i]
            for tag in tags:
                score = base + bonus
                if tag.name in focus_names:
                    score *= 10.0
                current = scores.get(id(tag))
                if current is None or score > current[0]:
                    scores[id(tag)] = (score, tag)

        for (i, name), value in def_rank.items():
            consider(i, graph.defined.get((i, name), ()), value)
        for name in focus_names:
            for tag in self.index.definitions(name):
                where = graph.position.get(tag.path)
                if where is not None:
                    consider(where, [tag], def_rank.get((where, name), 0.0))
        best_files = heapq.nlargest(TOP_FILES, range(len(ranks)), key=ranks.__getitem__)
        for i in best_files:
            entry = self.index.get(graph.files[i])
            if entry is not None:
                consider(i, [t for t in entry.definitions if id(t) not in scores], 0.0)
        values = scores.values()
        if limit is not None and limit < len(scores):
            values = heapq.nlargest(limit, values, key=lambda item: item[0])  # type: ignore[assignment]
        ordered = sorted(values, key=lambda item: (-item[0], item[1].path, item[1].line))
        return [tag for _, tag in ordered]

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
        iterations: int = ITERATIONS,
    ) -> tuple[str, list[Tag]]:
        """The largest repo map (by ranked definitions) that fits ``budget`` tokens."""
        count = count_tokens or estimate_tokens
        # A signature line costs a few tokens at least, so no more than budget/2 can fit.
        limit = max(1, budget // 2)
        ranked = self.ranked_definitions(focus_files, focus_names, exclude_files, iterations, limit)
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
