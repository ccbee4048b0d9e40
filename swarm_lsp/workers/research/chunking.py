"""Cut files into chunks for the vector index.

Code is cut at tree-sitter definitions (functions, classes, methods, types): a definition that
fits in :data:`MAX_LINES` is one chunk named by its qualified symbol (``Class.method``); a bigger
container gives a header chunk and its members; a bigger function is split into parts. Lines
outside every definition (imports, module code) become ``<module>`` chunks. Markdown is cut at
headings, reStructuredText at underlined titles, other text files into windows of lines.

Line numbers in a :class:`Chunk` are 1-based and inclusive, as people write ``path:line``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePath

from tree_sitter import Node

from swarm_lsp.context.languages import get_parser, language_for_path

MAX_LINES = 80
WINDOW_LINES = 60
CHUNKER_VERSION = 3  # 2: a decorated definition's members; 3: a split definition's other lines

DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst"})
TEXT_SUFFIXES = frozenset(
    {".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".sh", ".proto", ".sql", ".scm", ".json"}
)

DEFINITION_TYPES = frozenset(
    {
        # python
        "function_definition",
        "class_definition",
        "decorated_definition",
        # javascript / typescript
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "method_definition",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
        # go
        "method_declaration",
        "type_declaration",
        # rust
        "function_item",
        "struct_item",
        "enum_item",
        "impl_item",
        "trait_item",
        "mod_item",
        # java
        "constructor_declaration",
        # c / c++
        "struct_specifier",
        "class_specifier",
        "namespace_definition",
        # lua
        "function_definition_statement",
    }
)

_NAME_TYPES = frozenset(
    {
        "identifier",
        "type_identifier",
        "field_identifier",
        "property_identifier",
        "qualified_identifier",
        "destructor_name",
        "namespace_identifier",
        "dot_index_expression",
        "method_index_expression",
    }
)


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A piece of one file with where it is and what it defines."""

    path: str  # relative, "/" separated
    symbol: str
    kind: str  # function | class | module | section | text | part
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str
    language: str


def _name(node: Node) -> str:
    target = node
    if node.type == "decorated_definition":
        inner = node.child_by_field_name("definition")
        if inner is not None:
            target = inner
    name = target.child_by_field_name("name")
    if name is None:
        # C-like declarators and Go type declarations keep the name deeper down.
        queue = [c for c in target.children if c.type not in {"compound_statement", "block"}]
        while queue:
            candidate = queue.pop(0)
            if candidate.type in _NAME_TYPES:
                name = candidate
                break
            if candidate.type in {"type_spec", "function_declarator", "pointer_declarator"} or (
                candidate.type.endswith("declarator")
            ):
                queue = list(candidate.children) + queue
    if name is None and target.type == "impl_item":
        type_node = target.child_by_field_name("type")
        name = type_node
    if name is None or name.text is None:
        return "<anonymous>"
    return name.text.decode("utf-8", "replace")


def _kind(node: Node) -> str:
    text = node.type
    if node.type == "decorated_definition":
        inner = node.child_by_field_name("definition")
        text = inner.type if inner is not None else text
    if "class" in text or "struct" in text or "impl" in text or "trait" in text:
        return "class"
    if "interface" in text or "type" in text or "enum" in text or "namespace" in text:
        return "type"
    return "function"


def _has_nested_definitions(node: Node) -> bool:
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.type in DEFINITION_TYPES:
            return True
        stack.extend(child.children)
    return False


@dataclasses.dataclass
class _Span:
    start: int  # 0-based inclusive
    end: int  # 0-based inclusive
    symbol: str
    kind: str


def _collect(node: Node, prefix: str, out: list[_Span], owners: list[_Span]) -> None:
    """Spans of the definitions under ``node`` into ``out``; a definition too big for one
    chunk that is split into its members goes into ``owners`` too (its other lines, such as
    class attributes between methods or a function's last lines, are chunked under its name)."""
    for child in node.children:
        if child.type not in DEFINITION_TYPES:
            _collect(child, prefix, out, owners)
            continue
        symbol = f"{prefix}{_name(child)}"
        start, end = child.start_point[0], child.end_point[0]
        if child.end_point[1] == 0 and end > start:
            end -= 1
        # A decorated definition's members are inside the definition it decorates (its own
        # children are the decorators and that definition, which would repeat the name).
        body = (
            child.child_by_field_name("definition")
            if child.type == "decorated_definition"
            else None
        )
        body = body or child
        if end - start + 1 <= MAX_LINES:
            out.append(_Span(start, end, symbol, _kind(child)))
        elif _has_nested_definitions(body):
            owners.append(_Span(start, end, symbol, _kind(child)))
            before = len(out)
            _collect(body, f"{symbol}.", out, owners)
            members = out[before:]
            header_end = min((s.start for s in members), default=end + 1) - 1
            if header_end >= start:
                out.append(
                    _Span(start, min(header_end, start + MAX_LINES - 1), symbol, _kind(child))
                )
        else:
            for part, first in enumerate(range(start, end + 1, MAX_LINES), start=1):
                last = min(end, first + MAX_LINES - 1)
                out.append(_Span(first, last, f"{symbol} (part {part})", "part"))


def _windows(
    lines: list[str], start: int, end: int, symbol: str, kind: str, size: int
) -> list[_Span]:
    spans: list[_Span] = []
    first = start
    while first <= end:
        last = min(end, first + size - 1)
        if any(line.strip() for line in lines[first : last + 1]):
            spans.append(_Span(first, last, symbol, kind))
        first = last + 1
    return spans


def _to_chunks(path: str, language: str, lines: list[str], spans: list[_Span]) -> list[Chunk]:
    chunks = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        text = "\n".join(lines[span.start : span.end + 1]).strip("\n")
        if not text.strip():
            continue
        chunks.append(
            Chunk(path, span.symbol, span.kind, span.start + 1, span.end + 1, text, language)
        )
    return chunks


def chunk_code(path: str, source: str, language: str) -> list[Chunk]:
    """Chunks of one source file cut at its definitions."""
    data = source.encode("utf-8")
    tree = get_parser(language).parse(data)
    lines = source.splitlines()
    spans: list[_Span] = []
    owners: list[_Span] = []
    _collect(tree.root_node, "", spans, owners)
    covered = [False] * (len(lines) + 1)
    for span in spans:
        for index in range(span.start, min(span.end, len(lines) - 1) + 1):
            covered[index] = True
    # The lines no span covers belong to the innermost split definition around them, or to
    # the module (owners are listed outer first, so a later one is inner).
    module = _Span(0, len(lines), "<module>", "module")
    owner = [module] * len(lines)
    for outer in owners:
        for index in range(outer.start, min(outer.end, len(lines) - 1) + 1):
            owner[index] = outer
    rest: list[_Span] = []
    index = 0
    while index < len(lines):
        if covered[index]:
            index += 1
            continue
        first, whose = index, owner[index]
        while index < len(lines) and not covered[index] and owner[index] is whose:
            index += 1
        rest.extend(_windows(lines, first, index - 1, whose.symbol, whose.kind, MAX_LINES))
    return _to_chunks(path, language, lines, spans + rest)


_FENCE = re.compile(r"^\s*(```|~~~)")
_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")


def chunk_markdown(path: str, source: str) -> list[Chunk]:
    """Sections of a Markdown file, each named by its heading trail (``Intro > Setup``)."""
    lines = source.splitlines()
    heads: list[tuple[int, str]] = []  # (line, title trail)
    trail: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            level = len(match[1])
            trail = [(lvl, title) for lvl, title in trail if lvl < level] + [(level, match[2])]
            heads.append((number, " > ".join(title for _, title in trail)))
    return _sections(path, lines, heads, "markdown")


def chunk_rst(path: str, source: str) -> list[Chunk]:
    """Sections of a reStructuredText file, cut at underlined titles."""
    lines = source.splitlines()
    heads: list[tuple[int, str]] = []
    for number in range(1, len(lines)):
        title = lines[number - 1].strip()
        if (
            title
            and _RST_UNDERLINE.match(lines[number])
            and len(lines[number].strip()) >= len(title)
        ):
            heads.append((number - 1, title))
    return _sections(path, lines, heads, "rst")


def _sections(
    path: str, lines: list[str], heads: list[tuple[int, str]], language: str
) -> list[Chunk]:
    spans: list[_Span] = []
    starts = [(0, PurePath(path).name)] if not heads or heads[0][0] > 0 else []
    bounds = starts + heads
    for index, (first, title) in enumerate(bounds):
        last = bounds[index + 1][0] - 1 if index + 1 < len(bounds) else len(lines) - 1
        spans.extend(_windows(lines, first, last, title, "section", WINDOW_LINES))
    return _to_chunks(path, language, lines, spans)


def chunk_text(path: str, source: str) -> list[Chunk]:
    """Windows of lines for text files without structure we understand."""
    lines = source.splitlines()
    spans = _windows(lines, 0, len(lines) - 1, PurePath(path).name, "text", WINDOW_LINES)
    return _to_chunks(path, "text", lines, spans)


def is_indexable(path: str) -> bool:
    """True when the file's name says it is code, documentation or a known text format."""
    suffix = PurePath(path).suffix.lower()
    return language_for_path(path) is not None or suffix in DOC_SUFFIXES or suffix in TEXT_SUFFIXES


def chunk_file(path: str, source: str) -> list[Chunk]:
    """Chunks of one file, by the kind of file it is."""
    suffix = PurePath(path).suffix.lower()
    if suffix in {".md", ".markdown"}:
        return chunk_markdown(path, source)
    if suffix == ".rst":
        return chunk_rst(path, source)
    language = language_for_path(path)
    if language is not None:
        return chunk_code(path, source, language)
    return chunk_text(path, source)
