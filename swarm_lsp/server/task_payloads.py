"""What a task carries: documents at their versions, the selection, packed context, snapshots.

Plain functions over the server's documents and the workspace folder; no LSP transport.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
from pathlib import Path
from typing import Any

import pathspec

from swarm_lsp.context.documents import uri_to_path
from swarm_lsp.context.index import SKIP_DIRS
from swarm_lsp.errors import SwarmError
from swarm_lsp.server.app import SwarmLanguageServer

MAX_SNAPSHOT_FILE_BYTES = 2 * 1024 * 1024
MAX_SNAPSHOT_FILES = 20_000
MAX_SNAPSHOT_BYTES = 200 * 1024 * 1024
_EXTRA_SKIP = frozenset({"dist", "build", ".eggs", ".cache"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def current_document(ls: SwarmLanguageServer, uri: str) -> tuple[str, int | None] | None:
    """(text, version) of an open document, or (disk text, None); None if neither exists."""
    doc = ls.workspace.text_documents.get(uri)
    if doc is not None:
        return doc.source, doc.version
    path = uri_to_path(uri)
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8"), None
    except (OSError, UnicodeDecodeError):
        return None


def relative_path(ls: SwarmLanguageServer, uri: str) -> str:
    """The document's path relative to the workspace root (POSIX), or its file name."""
    path = uri_to_path(uri)
    if path is None:
        return uri.rsplit("/", 1)[-1]
    file = Path(path)
    root = ls.workspace_root
    if root is not None:
        with contextlib.suppress(ValueError):
            return file.resolve().relative_to(root.resolve()).as_posix()
    return file.name


def document_entry(ls: SwarmLanguageServer, uri: str) -> dict[str, Any]:
    """``{"path", "uri", "version", "text"}`` for a task payload; SwarmError if unreadable."""
    found = current_document(ls, uri)
    if found is None:
        raise SwarmError(f"cannot read {uri}: it is not open and not a readable file")
    text, version = found
    return {"path": relative_path(ls, uri), "uri": uri, "version": version, "text": text}


def packed_context(ls: SwarmLanguageServer, uri: str, line: int, character: int) -> str:
    """The context engine's packed task context around a position ('' without an engine)."""
    engine = ls.context
    if engine is None:
        return ""
    try:
        return engine.task_context(uri, line, character, count_tokens=ls.models.count_tokens).text
    except SwarmError as err:
        ls.log(f"context: {err}; sending the task without packed context")
        return ""
    except Exception as err:  # context is a help, never a reason to fail the task
        ls.log(f"context failed: {err!r}")
        return ""


def word_at(text: str, line: int, character: int) -> str:
    """The identifier under (or just before) the position, or ''."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return ""
    current = lines[line]
    for match in _WORD.finditer(current):
        if match.start() <= character <= match.end():
            return match.group(0)
    return ""


# Words that introduce a symbol rather than name one (a selection usually starts on them).
_KEYWORDS = frozenset(keyword.kwlist) | {
    "fn", "func", "function", "let", "const", "var", "pub", "static", "struct", "impl",
    "interface", "type", "export", "default", "public", "private", "protected", "self",
}  # fmt: skip


def symbol_at(text: str, line: int, character: int) -> str:
    """The symbol a request at (line, character) is about: the identifier there, else the
    first identifier after it on the line that is not a keyword (``def perimeter`` → perimeter).
    """
    word = word_at(text, line, character)
    if word and word not in _KEYWORDS:
        return word
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return ""
    for match in _WORD.finditer(lines[line]):
        if match.end() > character and match.group(0) not in _KEYWORDS:
            return match.group(0)
    return ""


def selected_text(text: str, start_line: int, end_line: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[max(start_line, 0) : max(end_line, start_line) + 1])


def _root_ignore(root: Path) -> pathspec.PathSpec | None:
    lines: list[str] = []
    for name in (".gitignore", ".git/info/exclude"):
        with contextlib.suppress(OSError):
            lines += (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec if len(spec) else None


def workspace_snapshot(root: Path, overlay: dict[str, str] | None = None) -> dict[str, bytes]:
    """Files under ``root`` (relative POSIX path → bytes), honouring the root's .gitignore.

    ``overlay`` replaces files with the editor's unsaved text. Version-control folders,
    virtual environments and caches are skipped, and so are files over 2 MiB; the dispatch
    client uploads only the blobs the coordinator lacks.
    """
    spec = _root_ignore(root)
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        rel_dir = folder.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in SKIP_DIRS or name in _EXTRA_SKIP or name.endswith(".egg-info"):
                continue
            if spec is not None and spec.match_file(rel + "/"):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if spec is not None and spec.match_file(rel):
                continue
            path = folder / name
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                if path.stat().st_size > MAX_SNAPSHOT_FILE_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            files[rel] = data
            total += len(data)
            if len(files) >= MAX_SNAPSHOT_FILES or total >= MAX_SNAPSHOT_BYTES:
                raise SwarmError(
                    f"the workspace is too large to send as a snapshot ({len(files)} files, "
                    f"{total // (1024 * 1024)} MiB); add folders to .gitignore"
                )
    for rel, text in (overlay or {}).items():
        files[rel] = text.encode("utf-8")
    return files


def open_overlay(ls: SwarmLanguageServer) -> dict[str, str]:
    """Unsaved text of open documents inside the workspace, by relative path."""
    root = ls.workspace_root
    if root is None:
        return {}
    overlay: dict[str, str] = {}
    for uri, doc in ls.workspace.text_documents.items():
        path = uri_to_path(uri)
        if path is None:
            continue
        with contextlib.suppress(ValueError):
            rel = Path(path).resolve().relative_to(root.resolve()).as_posix()
            overlay[rel] = doc.source
    return overlay


def where_tests_go(root: Path | None, rel: str) -> str:
    """Where tests for ``rel`` belong: an existing test file, else ``tests/test_<stem>.py``."""
    file = Path(rel)
    stem, suffix = file.stem, file.suffix or ".py"
    if stem.startswith("test_"):
        return rel
    candidates = [
        Path("tests") / f"test_{stem}{suffix}",
        file.parent / f"test_{stem}{suffix}",
        file.parent / "tests" / f"test_{stem}{suffix}",
    ]
    if root is not None:
        for candidate in candidates:
            if (root / candidate).is_file():
                return candidate.as_posix()
    return candidates[0].as_posix()
