"""Document and workspace symbols built from definition tags (plain data, no LSP types).

Positions are 0-based lines and UTF-16 characters, as LSP counts them, so the server only
has to copy fields into ``lsprotocol`` types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from swarm_lsp.context.tags import Tag
from swarm_lsp.context.text import utf16_len


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    character: int


@dataclass(frozen=True, slots=True)
class Range:
    start: Position
    end: Position

    def contains(self, other: Range) -> bool:
        return (self.start.line, self.start.character) <= (
            other.start.line,
            other.start.character,
        ) and (other.end.line, other.end.character) <= (self.end.line, self.end.character)


@dataclass
class Symbol:
    """A definition: ``range`` spans it, ``selection_range`` spans its name.

    ``kind`` is a plain word (``function``, ``class``, ``method``, ``interface``, ``type``,
    ``constant``, ``module``, ``macro``, ``enum``, ``constructor``, ``variable``);
    ``detail`` is its one-line signature; ``path`` is set for workspace symbols.
    """

    name: str
    kind: str
    range: Range
    selection_range: Range
    detail: str = ""
    children: list[Symbol] = field(default_factory=list)
    path: str | None = None
    container: str = ""


def symbol_of(tag: Tag, path: str | None = None) -> Symbol:
    """A childless :class:`Symbol` for a definition tag."""
    start = Position(tag.start_line, tag.start_column)
    end = Position(tag.end_line, tag.end_column)
    name_start = Position(tag.line, tag.column)
    name_end = Position(tag.line, tag.column + utf16_len(tag.name))
    if (end.line, end.character) < (name_end.line, name_end.character):
        end = name_end
    if (name_start.line, name_start.character) < (start.line, start.character):
        start = name_start
    return Symbol(
        name=tag.name,
        kind=tag.kind,
        range=Range(start, end),
        selection_range=Range(name_start, name_end),
        detail=tag.signature,
        path=path,
        container=tag.scope,
    )


def symbol_tree(definitions: Iterable[Tag]) -> list[Symbol]:
    """Nest definitions by range containment (a method inside its class)."""
    symbols = [symbol_of(tag) for tag in definitions]
    symbols.sort(
        key=lambda s: (
            s.range.start.line,
            s.range.start.character,
            -s.range.end.line,
            -s.range.end.character,
        )
    )
    roots: list[Symbol] = []
    stack: list[Symbol] = []
    for symbol in symbols:
        while stack and not stack[-1].range.contains(symbol.range):
            stack.pop()
        if stack:
            stack[-1].children.append(symbol)
        else:
            roots.append(symbol)
        stack.append(symbol)
    return roots


def match_score(query: str, name: str) -> int | None:
    """How well ``name`` matches a workspace-symbol ``query`` (higher is better), or None.

    Exact beats prefix beats substring beats an in-order subsequence; case is ignored but
    an exact-case match scores a little higher.
    """
    if not query:
        return 1
    q = query.lower()
    n = name.lower()
    bonus = 1 if query in name else 0
    if n == q:
        return 100 + bonus
    if n.startswith(q):
        return 80 + bonus
    if q in n:
        return 60 + bonus
    position = 0
    for ch in q:
        position = n.find(ch, position)
        if position < 0:
            return None
        position += 1
    return 20
