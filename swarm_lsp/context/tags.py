"""Definitions, references and imports of a source file, from tree-sitter tag queries.

The queries live in ``queries/<language>-tags.scm`` (data, loaded with importlib.resources).
Their captures follow the tree-sitter tags convention, with the role on the *name*:

* ``@name.definition.<kind>`` on a defined name and ``@definition.<kind>`` on its node;
* ``@name.reference.<kind>`` on a referenced name and ``@reference.<kind>`` on its node;
* ``@name.import.module`` / ``@name.import.name`` on an imported module path / name, and
  ``@import`` on the import statement.

When several patterns capture the same name node, a definition wins over an import, an
import over a reference, and among equals the pattern written first wins (so a Python
method is a ``method``, not also a ``function``).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from tree_sitter import Node, Point, Query, QueryCursor, QueryError, Tree

from swarm_lsp.context import languages
from swarm_lsp.context.text import LineIndex, decode, utf16_len
from swarm_lsp.errors import ContextError

Role = Literal["def", "ref", "import"]

_ROLE_OF_CAPTURE: dict[str, Role] = {"definition": "def", "reference": "ref", "import": "import"}
_ROLE_RANK: dict[str, int] = {"def": 0, "import": 1, "ref": 2}
_SIGNATURE_MAX = 240
_WHITESPACE = re.compile(r"\s+")
#: Bump when the extracted data changes so on-disk caches are rebuilt.
TAGS_VERSION = 1


@dataclass(frozen=True, slots=True)
class Tag:
    """One definition, reference or import.

    ``line``/``column`` locate the name (0-based; column in UTF-16 code units, as LSP counts).
    ``start_line``/``start_column`` and ``end_line``/``end_column`` span the whole definition
    (or the reference/import node). ``signature`` is a one-line header for definitions and
    empty otherwise; ``scope`` names the enclosing definition (``Rectangle`` for a method).
    """

    name: str
    kind: str
    role: Role
    path: str
    line: int
    column: int
    end_line: int
    signature: str = ""
    end_column: int = 0
    start_line: int = 0
    start_column: int = 0
    scope: str = ""

    def to_row(self) -> list[object]:
        """A compact JSON-friendly row without the path (the cache stores it once per file)."""
        return [
            self.name,
            self.kind,
            self.role,
            self.line,
            self.column,
            self.end_line,
            self.signature,
            self.end_column,
            self.start_line,
            self.start_column,
            self.scope,
        ]

    @classmethod
    def from_row(cls, path: str, row: list[object]) -> Tag:
        (
            name,
            kind,
            role,
            line,
            column,
            end_line,
            signature,
            end_col,
            start_line,
            start_col,
            scope,
        ) = row
        return cls(
            name=str(name),
            kind=str(kind),
            role=role,  # type: ignore[arg-type]
            path=path,
            line=int(line),  # type: ignore[call-overload]
            column=int(column),  # type: ignore[call-overload]
            end_line=int(end_line),  # type: ignore[call-overload]
            signature=str(signature),
            end_column=int(end_col),  # type: ignore[call-overload]
            start_line=int(start_line),  # type: ignore[call-overload]
            start_column=int(start_col),  # type: ignore[call-overload]
            scope=str(scope),
        )


_query_lock = threading.Lock()
_queries: dict[str, Query] = {}


def query_source(language: str) -> str:
    """The text of ``queries/<language>-tags.scm``."""
    try:
        return (
            resources.files("swarm_lsp.context")
            .joinpath("queries", f"{language}-tags.scm")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError as err:
        raise ContextError(f"no tags query for language {language!r}") from err


def get_query(language: str) -> Query:
    """The compiled tags query for ``language`` (cached)."""
    query = _queries.get(language)
    if query is not None:
        return query
    with _query_lock:
        query = _queries.get(language)
        if query is None:
            try:
                query = Query(languages.get_language(language), query_source(language))
            except QueryError as err:
                raise ContextError(f"the {language} tags query does not compile: {err}") from err
            _queries[language] = query
    return query


class _Positions:
    """Byte offset → LSP position for one source, fast when lines end in ``\\n``."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        lone_cr = b"\r" in source and source.count(b"\r") != source.count(b"\r\n")
        self.index = LineIndex(source) if lone_cr else None

    def at(self, node_byte: int, point: Point) -> tuple[int, int]:
        if self.index is not None:
            return self.index.position(node_byte)
        row, byte_col = point.row, point.column
        prefix = self.source[node_byte - byte_col : node_byte]
        if prefix.isascii():
            return row, byte_col
        return row, utf16_len(decode(prefix))


def node_text(source: bytes, node: Node) -> str:
    return decode(source[node.start_byte : node.end_byte])


def signature_of(source: bytes, node: Node, name: str = "") -> str:
    """A one-line header of a definition: its text up to the body, whitespace collapsed."""
    body = node.child_by_field_name("body")
    if body is None:
        value = node.child_by_field_name("value")
        if value is not None:
            body = value.child_by_field_name("body")
    if body is not None and body.start_byte > node.start_byte:
        # End at the last header token before the body, so a comment between the header
        # and the body (Python allows one after the colon) stays out of the signature.
        end = body.start_byte
        for child in node.children:
            if child.start_byte >= body.start_byte:
                break
            if "comment" not in child.type:
                end = child.end_byte
        text = decode(source[node.start_byte : end])
    else:
        end = source.find(b"\n", node.start_byte, node.end_byte)
        text = decode(source[node.start_byte : node.end_byte if end < 0 else end])
    if node.type == "type_spec":
        text = "type " + text
    text = _WHITESPACE.sub(" ", text).strip()
    if text.endswith(("{", "(")) and body is None:
        text = text[:-1].rstrip()
    if name and name not in text:  # e.g. a multi-line C typedef names its type at the end
        text = f"{text} … {name}"
    if len(text) > _SIGNATURE_MAX:
        text = text[: _SIGNATURE_MAX - 1] + "…"
    return text


def _strip_import(text: str) -> str:
    return text.strip().strip("\"'`<>")


def _capture_roles(query: Query) -> dict[str, tuple[Role, str] | None]:
    """``name.definition.function`` → ("def", "function"), per capture name of a query."""
    roles: dict[str, tuple[Role, str] | None] = {}
    for index in range(query.capture_count):
        capture = query.capture_name(index)
        parts = capture.split(".")
        role = _ROLE_OF_CAPTURE.get(parts[1]) if parts[0] == "name" and len(parts) > 1 else None
        roles[capture] = None if role is None else (role, parts[2] if len(parts) > 2 else role)
    return roles


_roles_cache: dict[str, dict[str, tuple[Role, str] | None]] = {}


def extract_tags(
    source: bytes,
    language: str,
    path: str,
    tree: Tree | None = None,
) -> list[Tag]:
    """All tags of ``source`` (a ``language`` file at ``path``), in document order.

    ``tree`` is reused when given (an open document's incremental tree); otherwise the
    source is parsed here. Unknown languages raise :class:`ContextError`.
    """
    return _extract(source, language, path, tree, None)


def extract_file_tags(
    source: bytes, language: str, path: str, tree: Tree | None = None
) -> tuple[list[Tag], Counter[str]]:
    """Definitions and imports as tags, references only as name counts (for the index).

    Cheaper than :func:`extract_tags` on big workspaces: references are most of the
    captures, and the index needs only how often each name is used.
    """
    counts: Counter[str] = Counter()
    return _extract(source, language, path, tree, counts), counts


def _extract(
    source: bytes,
    language: str,
    path: str,
    tree: Tree | None,
    ref_counts: Counter[str] | None,
) -> list[Tag]:
    query = get_query(language)
    roles = _roles_cache.get(language)
    if roles is None:
        roles = _roles_cache[language] = _capture_roles(query)
    if tree is None:
        tree = languages.get_parser(language).parse(source)
    positions = _Positions(source)
    best: dict[tuple[int, int], tuple[int, int, str, Role, Node, Node]] = {}
    for pattern_index, captures in QueryCursor(query).matches(tree.root_node):
        outer: Node | None = None
        named: list[tuple[tuple[Role, str], list[Node]]] = []
        for capture_name, nodes in captures.items():
            role_kind = roles.get(capture_name)
            if role_kind is not None:
                named.append((role_kind, nodes))
            elif nodes and capture_name[0] != "_" and not capture_name.startswith("name."):
                outer = nodes[0]
        for (role, kind), nodes in named:
            role_rank = _ROLE_RANK[role]
            for name_node in nodes:
                key = (name_node.start_byte, name_node.end_byte)
                current = best.get(key)
                if current is not None and (current[0], current[1]) <= (role_rank, pattern_index):
                    continue
                best[key] = (role_rank, pattern_index, kind, role, name_node, outer or name_node)

    defs_stack: list[tuple[int, str]] = []  # (end byte, name) of enclosing definitions
    tags: list[Tag] = []
    ordered = sorted(best.values(), key=lambda item: (item[5].start_byte, -item[5].end_byte))
    for _, _, kind, role, name_node, outer in ordered:
        if ref_counts is not None and role == "ref":
            ref_counts[decode(source[name_node.start_byte : name_node.end_byte])] += 1
            continue
        name = node_text(source, name_node)
        if role == "import":
            name = _strip_import(name)
        if not name:
            continue
        line, column = positions.at(name_node.start_byte, name_node.start_point)
        start_line, start_col = positions.at(outer.start_byte, outer.start_point)
        end_line, end_col = positions.at(outer.end_byte, outer.end_point)
        while defs_stack and defs_stack[-1][0] <= outer.start_byte:
            defs_stack.pop()
        scope = defs_stack[-1][1] if defs_stack else ""
        signature = ""
        if role == "def":
            signature = signature_of(source, outer, name)
            defs_stack.append((outer.end_byte, name))
        tags.append(
            Tag(
                name=name,
                kind=kind,
                role=role,
                path=path,
                line=line,
                column=column,
                end_line=end_line,
                signature=signature,
                end_column=end_col,
                start_line=start_line,
                start_column=start_col,
                scope=scope,
            )
        )
    tags.sort(key=lambda tag: (tag.line, tag.column))
    return tags


def tags_for_path(source: bytes, path: str, language: str | None = None) -> list[Tag]:
    """Tags of a file, or ``[]`` when its language has no grammar (plain text)."""
    language = language or languages.language_for_path(path)
    if language is None or not languages.is_supported(language):
        return []
    return extract_tags(source, language, path)
