"""Rebase a worker's edit over changes the user made after the task was sent.

A task carries the exact text of each document at the version it was sent (the *base*). When
the result comes back the document may have moved on (the *current* text). The edits are
line-granular LSP TextEdits against the base. An edit still applies when every base line it
touches (and, for a pure insertion, the lines on both sides of it) is unchanged in the current
text; it is then moved to where those lines are now. If any edit touches a changed region the
whole result is stale: :func:`rebase_edits` returns None and the caller drops it with a
message. Nothing here knows about LSP transport; edits are plain JSON dicts.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any


@dataclasses.dataclass(frozen=True)
class _Block:
    base: int  # first base line
    current: int  # the same line in the current text
    size: int


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _blocks(base: list[str], current: list[str]) -> list[_Block]:
    matcher = difflib.SequenceMatcher(a=base, b=current, autojunk=False)
    return [_Block(a, b, n) for a, b, n in matcher.get_matching_blocks() if n]


def _span(edit: dict[str, Any], base_len: int) -> tuple[int, int]:
    """Base lines ``[first, last)`` the edit replaces (first == last: insertion before first)."""
    start, end = edit["range"]["start"], edit["range"]["end"]
    first = int(start["line"])
    last = int(end["line"])
    if int(end["character"]) > 0 or last < first:
        last += 1  # the end line itself is (partly) replaced
    if int(start["character"]) > 0 and last == first:
        last = first + 1
    return min(first, base_len), min(max(last, first), base_len)


def _line_map(
    blocks: list[_Block], first: int, last: int, base_len: int, cur_len: int
) -> int | None:
    """Current line of base line ``first`` if base lines ``[first, last)`` are untouched.

    For an insertion (``first == last``) the neighbouring lines ``first - 1`` and ``first``
    must both be unchanged and still adjacent (at the start or end of the text, the one
    neighbour that exists and the text's edge).
    """
    if first < last:
        for block in blocks:
            if block.base <= first and last <= block.base + block.size:
                return block.current + (first - block.base)
        return None
    at = first
    if base_len == 0:
        return 0 if cur_len == 0 else None
    for block in blocks:
        end = block.base + block.size
        if at == 0:
            if block.base == 0 and block.current == 0:
                return 0
            continue
        if at == base_len:
            if end == base_len and block.current + block.size == cur_len:
                return cur_len
            continue
        if block.base <= at - 1 and at < end:
            return block.current + (at - block.base)
    return None


def rebase_edits(
    base: str, current: str, edits: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """``edits`` (against ``base``) moved onto ``current``, or None when any no longer applies.

    Characters inside a line are kept: a touched line is unchanged, so offsets in it are too.
    """
    if base == current:
        return [dict(edit) for edit in edits]
    base_lines, cur_lines = _lines(base), _lines(current)
    blocks = _blocks(base_lines, cur_lines)
    moved: list[dict[str, Any]] = []
    for edit in edits:
        try:
            first, last = _span(edit, len(base_lines))
        except (KeyError, TypeError, ValueError):
            return None
        target = _line_map(blocks, first, last, len(base_lines), len(cur_lines))
        if target is None:
            return None
        shift = target - first
        start, end = edit["range"]["start"], edit["range"]["end"]
        moved.append(
            {
                **edit,
                "range": {
                    "start": {"line": int(start["line"]) + shift, "character": start["character"]},
                    "end": {"line": int(end["line"]) + shift, "character": end["character"]},
                },
            }
        )
    if _overlapping(moved):
        return None
    return moved


def _overlapping(edits: list[dict[str, Any]]) -> bool:
    def key(position: dict[str, Any]) -> tuple[int, int]:
        return int(position["line"]), int(position["character"])

    spans = sorted((key(e["range"]["start"]), key(e["range"]["end"])) for e in edits)
    return any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1))


@dataclasses.dataclass(frozen=True)
class DocumentEditOutcome:
    """What became of one document's edits: applied as is, rebased, or dropped."""

    uri: str
    state: str  # "current" | "rebased" | "stale"
    edits: list[dict[str, Any]] | None
    version: int | None


def settle_document_edit(
    uri: str,
    sent_version: int | None,
    base_text: str,
    current_version: int | None,
    current_text: str,
    edits: list[dict[str, Any]],
) -> DocumentEditOutcome:
    """Decide what to do with a document's edits given its version now."""
    if sent_version == current_version and base_text == current_text:
        return DocumentEditOutcome(uri, "current", edits, current_version)
    rebased = rebase_edits(base_text, current_text, edits)
    if rebased is None:
        return DocumentEditOutcome(uri, "stale", None, current_version)
    return DocumentEditOutcome(uri, "rebased", rebased, current_version)
