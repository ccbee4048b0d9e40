"""The cross-file preamble of a completion prompt.

Path, imports the prefix no longer shows, the signatures of the names used near the cursor
that other files define (the imported modules' first), and the headers of the scopes around
the cursor, as line comments of the document's language, within a token budget.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

from tree_sitter import Node

from swarm_lsp.context.documents import Document
from swarm_lsp.context.index import FileTags, SymbolIndex
from swarm_lsp.context.packing import TokenCounter, fit_count, keep_head
from swarm_lsp.context.repomap import MAX_DEFINING_FILES, RepoMap, render_signatures
from swarm_lsp.context.tags import Tag, signature_of
from swarm_lsp.context.text import decode

#: A name defined in more files than this is used only when an imported module defines it.
AMBIGUOUS_FILES = 4
#: Lines around the cursor whose identifiers count as "used near the cursor".
NEAR_LINES_BEFORE = 30
NEAR_LINES_AFTER = 8

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

_LINE_COMMENT = {
    "python": "#",
    "lua": "--",
}

# Top-level statements that import things, per language.
_IMPORT_NODES: dict[str, frozenset[str]] = {
    "python": frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    "javascript": frozenset({"import_statement"}),
    "typescript": frozenset({"import_statement"}),
    "tsx": frozenset({"import_statement"}),
    "go": frozenset({"package_clause", "import_declaration"}),
    "rust": frozenset({"use_declaration", "extern_crate_declaration"}),
    "java": frozenset({"package_declaration", "import_declaration"}),
    "c": frozenset({"preproc_include"}),
    "cpp": frozenset({"preproc_include", "using_declaration"}),
    "lua": frozenset(),
}

# Nodes that open a named scope whose header helps a completion inside it.
_SCOPE_NODES = frozenset(
    {
        "function_definition",
        "class_definition",
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "method_declaration",
        "constructor_declaration",
        "enum_declaration",
        "record_declaration",
        "function_item",
        "impl_item",
        "trait_item",
        "mod_item",
        "struct_item",
        "enum_item",
        "class_specifier",
        "struct_specifier",
        "namespace_definition",
        "arrow_function",
        "function_expression",
    }
)

_SOURCE_EXTENSIONS = frozenset(
    {".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".lua"}
)

_NOT_PATH_SEGMENTS = frozenset({"", ".", "..", "crate", "self", "super"})


def comment_prefix(language: str | None) -> str:
    if language is None:
        return "#"
    return _LINE_COMMENT.get(language, "//")


def comment_block(text: str, language: str | None) -> str:
    marker = comment_prefix(language)
    return "".join(f"{marker} {line}".rstrip() + "\n" for line in text.splitlines())


def completion_preamble(
    repomap: RepoMap,
    doc: Document,
    display: str,
    offset: int,
    prefix_raw: str,
    suffix_raw: str,
    head_start: int,
    budget: int,
    count: TokenCounter,
) -> tuple[str, tuple[str, ...]]:
    """Path, imports (when the prefix starts after ``head_start`` > 0), other files'
    signatures used near the cursor and enclosing scopes, within ``budget`` tokens; and the
    names whose signatures made it in."""
    language = doc.language
    header = comment_block(f"Path: {display}", language)
    if count(header) > budget:
        return "", ()
    parts = [header]
    used = count(header)
    # Imports: stable, and only worth it when the prefix no longer shows the file's top.
    if doc.tree is not None and language is not None and head_start > 0:
        imports = imports_text(doc, language)
        if imports:
            block = keep_head(imports, (budget - used) // 2, count)
            if block:
                parts.append(block if block.endswith("\n") else block + "\n")
                used += count(parts[-1])
    # Enclosing scope: cursor-local, goes last, but reserve its room now.
    scope_text = ""
    if doc.tree is not None:
        scope_text = enclosing_scope(doc, offset, head_start, language)
        if scope_text and used + count(scope_text) > budget:
            scope_text = ""
    reserve = count(scope_text)
    # Signatures of other files' definitions used near the cursor, best first.
    names = names_near_cursor(prefix_raw, suffix_raw)
    defs = definitions_for(repomap.index, names, display, per_name=2) if language else []
    chosen: tuple[str, ...] = ()
    if defs:

        def render(k: int) -> str:
            if k == 0:
                return ""
            subset = sorted(defs[:k], key=lambda t: (t.path, t.start_line, t.line))
            return comment_block(render_signatures(subset, repomap.parents_of), language)

        k, block = fit_count(len(defs), render, budget - used - reserve, count)
        if block:
            parts.append(block)
            chosen = tuple(dict.fromkeys(t.name for t in defs[:k]))
    if scope_text:
        parts.append(scope_text)
    return "".join(parts), chosen


def imports_text(doc: Document, language: str) -> str:
    """The document's top-level import statements, one per line."""
    kinds = _IMPORT_NODES.get(language, frozenset())
    root = doc.tree.root_node if doc.tree is not None else None
    if root is None:
        return ""
    pieces: list[str] = []
    for child in root.children:
        if child.type in kinds or (
            language == "lua"
            and child.type == "variable_declaration"
            and b"require" in doc.source[child.start_byte : child.end_byte]
        ):
            pieces.append(decode(doc.source[child.start_byte : child.end_byte]))
        if child.start_byte > 0 and len(pieces) > 200:
            break
    return "\n".join(pieces) + ("\n" if pieces else "")


def enclosing_scope(doc: Document, offset: int, head_start: int, language: str | None) -> str:
    """Headers of the scopes around the cursor whose first line the prefix cut off."""
    tree = doc.tree
    if tree is None:
        return ""
    node: Node | None = tree.root_node.descendant_for_byte_range(offset, offset)
    headers: list[str] = []
    while node is not None:
        if node.type in _SCOPE_NODES and node.start_byte < head_start:
            headers.append(signature_of(doc.source, node))
        node = node.parent
    if not headers:
        return ""
    lines = [f"in: {h}" for h in reversed(headers) if h]
    return comment_block("\n".join(lines), language)


def names_near_cursor(prefix_raw: str, suffix_raw: str) -> list[str]:
    """Identifiers around the cursor, nearest first."""
    before_start = len(prefix_raw)
    for _ in range(NEAR_LINES_BEFORE + 1):
        before_start = prefix_raw.rfind("\n", 0, max(0, before_start - 1))
        if before_start < 0:
            before_start = 0
            break
    after_end = 0
    for _ in range(NEAR_LINES_AFTER):
        found = suffix_raw.find("\n", after_end + 1)
        if found < 0:
            after_end = len(suffix_raw)
            break
        after_end = found
    before = [
        (len(prefix_raw) - m.end(), m.group())
        for m in _IDENTIFIER.finditer(prefix_raw, before_start)
    ]
    after = [(m.start(), m.group()) for m in _IDENTIFIER.finditer(suffix_raw, 0, after_end)]
    ordered = sorted(before + after, key=lambda item: item[0])
    return list(dict.fromkeys(name for _, name in ordered))


def definitions_for(
    index: SymbolIndex, names: Iterable[str], display: str, per_name: int
) -> list[Tag]:
    """Definitions in files other than ``display`` of ``names`` (in order), best first."""
    own = index.get(display) if index.root is not None else None
    own_names = {t.name for t in own.definitions} if own is not None else set()
    modules = imported_paths(own)
    chosen: list[Tag] = []
    for name in names:
        if name in own_names:
            continue  # the local definition is the one in use
        candidates = [t for t in index.definitions(name) if t.path != display]
        files = len({t.path for t in candidates})
        if not candidates or files > MAX_DEFINING_FILES:
            continue
        ranked = [(candidate_rank(t, display, modules), t) for t in candidates]
        ranked.sort(key=lambda item: item[0])
        if ranked[0][0][0] == 0:  # defined by a module this file imports: only those
            ranked = [item for item in ranked if item[0][0] == 0]
        elif files > AMBIGUOUS_FILES:
            continue  # a common name (get, join …) none of our imports defines: noise
        chosen.extend(t for _, t in ranked[:per_name])
    return chosen


def imported_paths(own: FileTags | None) -> list[str]:
    """Imported modules as path fragments, whatever the language spells them as.

    ``shapes.geometry`` → ``shapes/geometry``; ``./util/geometry`` → ``util/geometry``;
    ``crate::geo::shapes`` → ``geo/shapes``; ``"geometry.h"`` → ``geometry``;
    ``example.com/project/geo`` keeps its last segments usable (``…/project/geo``).
    """
    if own is None:
        return []
    out = []
    for tag in own.imports:
        if tag.kind != "module":
            continue
        name = tag.name.strip()
        stem, ext = posixpath.splitext(name)
        if ext.lower() in _SOURCE_EXTENSIONS:
            name = stem
        name = name.replace("::", "/")
        if "/" not in name:
            name = name.replace(".", "/")  # Python/Java dotted modules
        parts = [p for p in name.split("/") if p not in _NOT_PATH_SEGMENTS]
        if parts:
            out.append("/".join(parts))
    return out


def candidate_rank(tag: Tag, display: str, modules: list[str]) -> tuple[int, int, str]:
    """Sort key: defined by an imported module first, then nearer folders, then path."""
    stem = posixpath.splitext(tag.path)[0]
    folder = posixpath.dirname(tag.path)
    imported = any(
        _ends_with_path(stem, m)
        or (folder and (_ends_with_path(m, folder) or _ends_with_path(folder, m)))
        for m in modules
    )
    here = display.split("/")[:-1]
    there = tag.path.split("/")[:-1]
    shared = 0
    for a, b in zip(here, there, strict=False):
        if a != b:
            break
        shared += 1
    return (0 if imported else 1, -shared, tag.path)


def _ends_with_path(path: str, tail: str) -> bool:
    """``a/b/c`` ends with ``b/c`` (whole segments only)."""
    return path == tail or path.endswith("/" + tail)
