"""Positions in source text: LSP (line, UTF-16 column) ↔ UTF-8 byte offsets ↔ tree-sitter points.

LSP counts columns in UTF-16 code units and ends lines at ``\\r\\n``, ``\\r`` or ``\\n``;
tree-sitter counts bytes of UTF-8 and rows at ``\\n`` only. A :class:`LineIndex` is built once
per text snapshot and converts between the two. Out-of-range positions clamp; nothing here
raises ``IndexError``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add, sub

from tree_sitter import Point

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def encode(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates (possible in JSON) survive instead of raising."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    """Inverse of :func:`encode`; invalid UTF-8 decodes with replacement characters."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (astral characters count two)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_to_char_index(line: str, units: int) -> int:
    """Index into ``line`` of the character at UTF-16 column ``units`` (clamped).

    A column in the middle of a surrogate pair rounds down to the start of the character.
    """
    if units <= 0:
        return 0
    if line.isascii():
        return min(units, len(line))
    seen = 0
    for index, ch in enumerate(line):
        width = 2 if ord(ch) > 0xFFFF else 1
        if seen + width > units:
            return index
        seen += width
    return len(line)


def point_at(source: bytes, offset: int) -> Point:
    """The tree-sitter point (row by ``\\n``, byte column) of byte ``offset`` in ``source``."""
    offset = max(0, min(offset, len(source)))
    row = source.count(b"\n", 0, offset)
    column = offset - (source.rfind(b"\n", 0, offset) + 1)
    return Point(row, column)


def point_after(start: Point, inserted: bytes) -> Point:
    """The point reached by inserting ``inserted`` at ``start``."""
    rows = inserted.count(b"\n")
    if rows == 0:
        return Point(start.row, start.column + len(inserted))
    return Point(start.row + rows, len(inserted) - (inserted.rfind(b"\n") + 1))


class LineIndex:
    """Byte offsets of LSP line starts in one immutable UTF-8 text."""

    __slots__ = ("_content_ends", "_source", "_starts")

    def __init__(self, source: bytes) -> None:
        self._source = source
        starts = [0]
        content_ends: list[int] = []
        if b"\r" not in source:
            # Only "\n" breaks: lengths of the split pieces, summed in C (about 30% faster
            # than a regex on a 50 MB document, which is where it matters).
            pieces = source.split(b"\n")
            starts.extend(accumulate(map(add, map(len, pieces[:-1]), repeat(1))))
            content_ends = list(map(sub, starts[1:], repeat(1)))
        else:
            for match in _LINE_BREAK.finditer(source):
                content_ends.append(match.start())
                starts.append(match.end())
        content_ends.append(len(source))
        self._starts = starts
        self._content_ends = content_ends

    @classmethod
    def _from_parts(cls, source: bytes, starts: list[int], content_ends: list[int]) -> LineIndex:
        index = cls.__new__(cls)
        index._source = source
        index._starts = starts
        index._content_ends = content_ends
        return index

    def edited(self, start: int, end: int, inserted: bytes, new_source: bytes) -> LineIndex:
        """The index of ``new_source == old[:start] + inserted + old[end:]``.

        Only the lines around the edit are scanned again; later lines are shifted. That
        keeps a keystroke in a 5,000-line file from rescanning the whole text.
        """
        starts = self._starts
        delta = len(inserted) - (end - start)
        # Rescan from one line before the edit (an inserted "\n" can join a "\r" before
        # it) to the first line starting two bytes past its end (same, on the other side).
        first = max(0, bisect_right(starts, start) - 2)
        last = bisect_right(starts, end + 1)
        region_start = starts[first]
        region_end = starts[last] + delta if last < len(starts) else len(new_source)
        new_starts = starts[: first + 1]
        new_ends = self._content_ends[:first]
        for match in _LINE_BREAK.finditer(new_source, region_start, region_end):
            new_ends.append(match.start())
            new_starts.append(match.end())
        if last < len(starts):
            if new_starts[-1] != region_end:  # cannot happen; stay correct if it does
                return LineIndex(new_source)
            new_starts.extend(map(add, starts[last + 1 :], repeat(delta)))  # in C, not Python
            new_ends.extend(map(add, self._content_ends[last:], repeat(delta)))
        else:
            new_ends.append(len(new_source))
        return LineIndex._from_parts(new_source, new_starts, new_ends)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineIndex):
            return NotImplemented
        return (self._starts, self._content_ends) == (other._starts, other._content_ends)

    __hash__ = None  # type: ignore[assignment]

    @property
    def line_count(self) -> int:
        return len(self._starts)

    def point(self, offset: int) -> Point:
        """The tree-sitter point of byte ``offset``: a bisect when lines end in ``\n`` only."""
        if b"\r" in self._source:  # rows count "\n" only; LSP lines also break at "\r"
            return point_at(self._source, offset)
        offset = max(0, min(offset, len(self._source)))
        line = bisect_right(self._starts, offset) - 1
        return Point(line, offset - self._starts[line])

    def line_bytes(self, line: int) -> bytes:
        """Bytes of ``line`` without its terminator (empty past the end)."""
        if line < 0 or line >= len(self._starts):
            return b""
        return self._source[self._starts[line] : self._content_ends[line]]

    def line_start(self, line: int) -> int:
        line = max(0, min(line, len(self._starts) - 1))
        return self._starts[line]

    def offset(self, line: int, character: int) -> int:
        """Byte offset of LSP position (line, UTF-16 character), clamped into the text."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self._source)
        start = self._starts[line]
        raw = self._source[start : self._content_ends[line]]
        if character <= 0:
            return start
        if raw.isascii():
            return start + min(character, len(raw))
        text = decode(raw)
        index = utf16_to_char_index(text, character)
        return start + len(encode(text[:index]))

    def position(self, offset: int) -> tuple[int, int]:
        """LSP position (line, UTF-16 character) of byte ``offset`` (clamped)."""
        offset = max(0, min(offset, len(self._source)))
        line = bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        # An offset inside a line terminator (between \r and \n) belongs to the line's end.
        end = min(offset, self._content_ends[line])
        raw = self._source[start:end]
        if raw.isascii():
            return line, len(raw)
        return line, utf16_len(decode(raw))
