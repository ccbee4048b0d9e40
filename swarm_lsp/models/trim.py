"""Trim a raw model continuation to what an editor should insert.

A completion stops at a sensible place: the end of the current line when the cursor is in the
middle of a statement, the end of the block the cursor is in, a maximum number of lines, and
never repeats the text that already follows the cursor.
"""

from __future__ import annotations

_BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def trim_completion(text: str, prefix: str, suffix: str, *, max_lines: int) -> str:
    """Cut ``text`` (inserted between ``prefix`` and ``suffix``) to a sensible stop."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    current_line = prefix.rsplit("\n", 1)[-1]
    line_rest = suffix.split("\n", 1)[0]
    lines = text.split("\n")

    # Finish only this line when text follows the cursor on it, or when a statement is in
    # progress that does not open a block.
    mid_line = bool(line_rest.strip())
    in_statement = (
        bool(current_line.strip())
        and not current_line.rstrip().endswith(_BLOCK_OPENERS)
        and bool(lines[0].strip())
    )
    if mid_line or in_statement:
        lines = lines[:1]

    base_indent = _indent(current_line) if current_line.strip() else len(current_line)
    kept: list[str] = [lines[0]]
    for line in lines[1:]:
        if len(kept) >= max_lines:
            break
        if line.strip() and _indent(line) < base_indent:
            break  # dedented past the cursor's block: the block is finished
        if not line.strip() and kept and not kept[-1].strip():
            break  # a blank line after a blank line ends the thought
        kept.append(line)
    result = "\n".join(kept[:max_lines]).rstrip()

    # Do not repeat what already follows the cursor on this line.
    tail = line_rest.strip()
    if tail and result.rstrip().endswith(tail):
        result = result.rstrip()[: -len(tail)]
    return result
