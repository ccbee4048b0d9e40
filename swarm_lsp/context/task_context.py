"""Context for a remote task: a repo map, the full text of the most relevant definitions,
and the current file around the cursor, packed into a token budget."""

from __future__ import annotations

from swarm_lsp.context.files import WorkspaceFiles
from swarm_lsp.context.packing import PackedContext, TokenCounter, fit_count, keep_head, keep_tail
from swarm_lsp.context.preamble import definitions_for, names_near_cursor
from swarm_lsp.context.repomap import ITERATIONS, RepoMap
from swarm_lsp.context.tags import Tag
from swarm_lsp.context.text import decode

#: Bytes either side of the cursor whose identifiers pick the relevant definitions.
NAMES_WINDOW = 8000
#: Most lines of one definition's text.
DEFINITION_LINES = 80


def task_context(
    files: WorkspaceFiles,
    repomap: RepoMap,
    uri: str | None,
    line: int | None,
    character: int | None,
    budget: int,
    count: TokenCounter,
    iterations: int = ITERATIONS,
) -> PackedContext:
    """Repo map, relevant definitions in full, and the current file around the cursor.

    ``iterations`` bounds the repo map's PageRank (fewer for dictionary training samples).
    """
    packed = PackedContext(budget=budget)
    doc = files.document(uri) if uri else None
    display = files.display_path(uri, doc) if uri else ""
    language = doc.language if doc is not None else None
    offset = doc.offset_at(line or 0, character or 0) if doc is not None else 0

    names: list[str] = []
    if doc is not None:
        before = decode(doc.source[max(0, offset - NAMES_WINDOW) : offset])
        after = decode(doc.source[offset : offset + NAMES_WINDOW])
        names = names_near_cursor(before, after)

    root = files.index.root
    header = f"Workspace: {root.name if root else '(none)'}\n"
    if doc is not None:
        header += f"Current file: {display} ({language or 'plain text'})"
        if line is not None:
            header += f", cursor at line {line + 1}"
        header += "\n"
    packed.add("header", header + "\n", count)
    left = budget - packed.tokens

    map_budget = int(left * (0.3 if doc is not None else 1.0))
    focus_files = [display] if doc is not None else []
    map_text, _ = repomap.fit(
        map_budget, focus_files, names, focus_files, count, iterations=iterations
    )
    if map_text:
        packed.add("repo map", "Repository map (signatures):\n" + map_text + "\n", count)
    if doc is None:
        return packed

    left = budget - packed.tokens
    defs_budget = int(left * 0.45)
    defs = outermost(definitions_for(files.index, names, display, per_name=1)[:64])
    blocks = [b for b in (definition_block(files, t) for t in defs) if b]
    if blocks:

        def render(k: int) -> str:
            return "Relevant definitions:\n" + "".join(blocks[:k]) + "\n" if k else ""

        _, text = fit_count(len(blocks), render, defs_budget, count)
        if text:
            packed.add("definitions", text, count)

    left = budget - packed.tokens
    title = f"--- {display} ---\n"
    left -= count(title)
    if left > 0:
        before = decode(doc.source[:offset])
        after = decode(doc.source[offset:])
        after_part = keep_head(after, left // 3, count)
        before_part = keep_tail(before, left - count(after_part), count)
        packed.add("current file", title + before_part + after_part, count)
    return packed


def definition_block(files: WorkspaceFiles, tag: Tag, max_lines: int = DEFINITION_LINES) -> str:
    """A definition's text under a ``--- path lines a-b ---`` title ("" when unreadable)."""
    text = files.text(tag.path)
    if text is None:
        return ""
    lines = text.splitlines()
    start = max(0, min(tag.start_line, len(lines)))
    end = min(len(lines), tag.end_line + 1, start + max_lines)
    body = "\n".join(lines[start:end])
    more = " (truncated)" if tag.end_line + 1 > end else ""
    return f"--- {tag.path} lines {start + 1}-{end}{more} ---\n{body}\n"


def outermost(tags: list[Tag]) -> list[Tag]:
    """``tags`` without those inside another one of them (a method of a listed class)."""
    kept: list[Tag] = []
    for tag in tags:
        inside = any(
            other is not tag
            and other.path == tag.path
            and other.start_line <= tag.start_line
            and tag.end_line <= other.end_line
            and (other.start_line, other.end_line) != (tag.start_line, tag.end_line)
            for other in tags
        )
        if not inside:
            kept.append(tag)
    return kept
