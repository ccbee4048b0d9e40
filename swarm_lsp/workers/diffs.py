"""Unified diffs: find one in a model's reply, parse it, apply it strictly, and turn text
changes into LSP edits.

Applying is strict about content and lenient about numbers, like ``patch`` without fuzz: every
context and removed line of a hunk must match the document exactly, but a hunk may sit a few
lines away from where its header says (models miscount), and header counts are recomputed
from the hunk's lines. A hunk that matches nowhere is an error naming the first line that
differs.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Any

from swarm_lsp.errors import DiffValidationError

MAX_OFFSET = 60

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_FENCE = re.compile(r"```[ \t]*(diff|patch|udiff)?[ \t]*\n(.*?)```", re.S)


@dataclasses.dataclass
class Hunk:
    old_start: int  # 1-based as in the header (0 for an insertion at the top)
    new_start: int
    lines: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (" "|"-"|"+", text)
    no_newline_at_end: bool = False  # the new side's last line has no newline

    @property
    def old_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag in " -"]

    @property
    def new_lines(self) -> list[str]:
        return [text for tag, text in self.lines if tag in " +"]


@dataclasses.dataclass
class FilePatch:
    old_path: str | None  # None for /dev/null
    new_path: str | None
    hunks: list[Hunk] = dataclasses.field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


def extract_diff(reply: str) -> tuple[str, str]:
    """(diff text, the rest of the reply as explanation). The diff may be empty."""
    for match in _FENCE.finditer(reply):
        body = match.group(2)
        if "@@" in body and ("--- " in body or "+++ " in body):
            explanation = (reply[: match.start()] + reply[match.end() :]).strip()
            return body, explanation
    lines = reply.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith(("--- ", "diff --git ")):
            end = number
            while end < len(lines) and (
                lines[end][:1] in {" ", "+", "-", "@", "\\", "\n", "\r"}
                or lines[end].startswith(("diff --git", "index "))
            ):
                end += 1
            explanation = "".join(lines[:number] + lines[end:]).strip()
            return "".join(lines[number:end]), explanation
    return "", reply.strip()


def _strip_prefix(raw: str) -> str | None:
    name = raw.split("\t", 1)[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        name = name[2:]
    return name.lstrip("./") if name.startswith("./") else name


def parse_unified_diff(text: str) -> list[FilePatch]:
    """Parse ``text``; raises DiffValidationError when it holds no usable file patch."""
    patches: list[FilePatch] = []
    current: FilePatch | None = None
    hunk: Hunk | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if (
            line.startswith("--- ")
            and index + 1 < len(lines)
            and lines[index + 1].startswith("+++ ")
        ):
            current = FilePatch(_strip_prefix(line[4:]), _strip_prefix(lines[index + 1][4:]))
            patches.append(current)
            hunk = None
            index += 2
            continue
        header = _HUNK_HEADER.match(line)
        if header:
            if current is None:
                raise DiffValidationError(
                    "the diff has a hunk before any '--- a/file' / '+++ b/file' header"
                )
            hunk = Hunk(int(header[1]), int(header[3]))
            current.hunks.append(hunk)
            index += 1
            continue
        if hunk is not None:
            if line.startswith("\\"):
                if hunk.lines and hunk.lines[-1][0] in " +":
                    hunk.no_newline_at_end = True
            elif line[:1] in {" ", "-", "+"}:
                hunk.lines.append((line[0], line[1:]))
            elif line == "":
                hunk.lines.append((" ", ""))  # a blank context line that lost its space
            else:
                hunk = None
        index += 1
    for patch in patches:
        for item in patch.hunks:
            while item.lines and item.lines[-1] == (" ", ""):
                item.lines.pop()  # trailing blank lines are usually the end of the reply
        patch.hunks = [h for h in patch.hunks if h.lines]
    patches = [p for p in patches if p.hunks]
    if not patches:
        raise DiffValidationError(
            "no unified diff found: expected '--- a/path', '+++ b/path' and '@@' hunks"
        )
    return patches


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text[:10000] else "\n"


def _find(doc: list[str], wanted: list[str], near: int, floor: int) -> int | None:
    if not wanted:
        return max(floor, min(near, len(doc)))
    for distance in range(MAX_OFFSET + 1):
        for start in (near - distance, near + distance) if distance else (near,):
            if start < floor or start + len(wanted) > len(doc):
                continue
            if doc[start : start + len(wanted)] == wanted:
                return start
    return None


def _closest(doc: list[str], wanted: list[str], near: int, floor: int) -> int:
    """Where the hunk matches best (most equal lines, then nearest): for the error message."""
    best, best_key = max(floor, min(near, len(doc) - 1, 0) if doc else 0), (-1, 0)
    for start in range(floor, max(floor, len(doc) - len(wanted)) + 1):
        same = sum(1 for a, b in zip(doc[start:], wanted, strict=False) if a == b)
        key = (same, -abs(start - near))
        if key > best_key:
            best, best_key = start, key
    return best


def _first_difference(doc: list[str], wanted: list[str], at: int) -> str:
    for offset, expected in enumerate(wanted):
        position = at + offset
        found = doc[position] if 0 <= position < len(doc) else "<end of file>"
        if found != expected:
            return f"line {position + 1}: expected {expected!r}, found {found!r}"
    return f"at line {at + 1}"


def apply_patch(text: str, patch: FilePatch) -> str:
    """The document ``text`` with ``patch`` applied; DiffValidationError if it does not apply."""
    eol = _eol(text)
    ends_with_newline = text.endswith(("\n", "\r"))
    doc = text.splitlines()
    out: list[str] = []
    cursor = 0  # next unconsumed document line
    no_newline = False
    touches_end = False
    for number, hunk in enumerate(patch.hunks, start=1):
        wanted = hunk.old_lines
        near = max(0, hunk.old_start - 1) if wanted else max(0, hunk.old_start)
        start = _find(doc, wanted, near, cursor)
        if start is None:
            where = _first_difference(doc, wanted, _closest(doc, wanted, near, cursor))
            raise DiffValidationError(
                f"{patch.path}: hunk {number} (@@ -{hunk.old_start} @@) does not apply to the "
                f"document as sent: {where}"
            )
        out.extend(doc[cursor:start])
        out.extend(hunk.new_lines)
        cursor = start + len(wanted)
        touches_end = cursor >= len(doc)
        no_newline = hunk.no_newline_at_end
    out.extend(doc[cursor:])
    if not out:
        return ""
    # The last line keeps the document's final newline unless the hunk that rewrote the end
    # says "\ No newline at end of file".
    trailing = eol if ends_with_newline and not (touches_end and no_newline) else ""
    return eol.join(out) + trailing


def unified_diff(path: str, old: str, new: str, context: int = 3) -> str:
    """A unified diff of one file with ``a/`` and ``b/`` prefixes."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{path}",
            tofile=f"b/{path}",
            n=context,
        )
    )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _position(lines: list[str], index: int) -> dict[str, int]:
    """LSP position of the start of line ``index`` (or the very end of the document)."""
    if index < len(lines):
        return {"line": index, "character": 0}
    if not lines:
        return {"line": 0, "character": 0}
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return {"line": len(lines), "character": 0}
    return {"line": len(lines) - 1, "character": _utf16_len(last)}


def text_edits(old: str, new: str) -> list[dict[str, Any]]:
    """Line-granular LSP TextEdits that turn ``old`` into ``new`` (non-overlapping, in order)."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    edits: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            {
                "range": {"start": _position(old_lines, i1), "end": _position(old_lines, i2)},
                "newText": "".join(new_lines[j1:j2]),
            }
        )
    return edits


def apply_text_edits(text: str, edits: list[dict[str, Any]]) -> str:
    """Apply LSP TextEdits (as produced by :func:`text_edits`) to ``text``; used to check them."""
    lines = text.splitlines(keepends=True)

    def offset(position: dict[str, int]) -> int:
        line = position["line"]
        before = sum(len(item) for item in lines[:line])
        if line >= len(lines):
            return before
        prefix = lines[line].encode("utf-16-le")[: 2 * position["character"]].decode("utf-16-le")
        return before + len(prefix)

    result = text
    for edit in sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True):
        start = offset(edit["range"]["start"])
        end = offset(edit["range"]["end"])
        result = result[:start] + edit["newText"] + result[end:]
    return result


def workspace_edit(changes: list[tuple[str, int | None, str, str]]) -> dict[str, Any]:
    """WorkspaceEdit JSON with versioned TextDocumentEdits from (uri, version, old, new).

    A document with no version and no text is a file that may not exist yet: a CreateFile
    (ignored when the file exists) comes before its edit.
    """
    document_changes: list[dict[str, Any]] = []
    for uri, version, old, new in changes:
        if old == new:
            continue
        if version is None and not old:
            document_changes.append(
                {"kind": "create", "uri": uri, "options": {"ignoreIfExists": True}}
            )
        document_changes.append(
            {"textDocument": {"uri": uri, "version": version}, "edits": text_edits(old, new)}
        )
    return {"documentChanges": document_changes}
