"""Cursor-local text from an open document, with LSP positions checked and clamped."""

from __future__ import annotations

import dataclasses

from lsprotocol import types
from pygls.workspace import TextDocument

# Without the context engine, how much text around the cursor the model sees.
PREFIX_CHARS = 6000
SUFFIX_CHARS = 1500


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where the cursor is, in server units (code points), and the text around it."""

    line: int
    character: int  # code points from the start of the line
    prefix: str
    suffix: str
    word: str  # identifier characters just before the cursor

    @property
    def line_prefix(self) -> str:
        return self.prefix.rsplit("\n", 1)[-1]


def cursor_at(doc: TextDocument, position: types.Position) -> Cursor | None:
    """The text around ``position``; None when the position is past the end of the document.

    A character past the end of its line is clamped to the line's end (editors send those
    while the user types faster than they sync).
    """
    lines = doc.lines
    count = len(lines)
    if position.line < 0 or position.character < 0 or position.line > count:
        return None
    if position.line == count:
        # Only the start of the (empty) line after the last newline exists there.
        if position.character > 0 and count > 0:
            return None
        line, character, line_text = count, 0, ""
    else:
        server_pos = doc.position_codec.position_from_client_units(lines, position)
        line = server_pos.line
        line_text = lines[line]
        character = min(server_pos.character, len(line_text.rstrip("\r\n")))
    offset = sum(len(text) for text in lines[:line]) + character
    source = doc.source
    prefix = source[max(0, offset - PREFIX_CHARS) : offset]
    suffix = source[offset : offset + SUFFIX_CHARS]
    word_chars = []
    for ch in reversed(line_text[:character]):
        if not (ch.isalnum() or ch == "_"):
            break
        word_chars.append(ch)
    return Cursor(line, character, prefix, suffix, "".join(reversed(word_chars)))
