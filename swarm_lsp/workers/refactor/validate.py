"""Check a model's diff before anyone sees it.

A diff passes when (1) it touches only documents in scope (the ones sent with the task; no
deleted or renamed files, and new files only where the task sent an empty document for
them), (2) every hunk applies to the exact text of the version sent, and (3) each patched
document parses with tree-sitter with no more syntax errors than before.
Any failure is a :class:`~swarm_lsp.errors.DiffValidationError` whose message is specific
enough to hand back to the model for a second try.
"""

from __future__ import annotations

import dataclasses

from tree_sitter import Node

from swarm_lsp.context.languages import get_parser, language_for_path
from swarm_lsp.errors import DiffValidationError
from swarm_lsp.workers import diffs


@dataclasses.dataclass(frozen=True)
class Document:
    """One document as the client sent it."""

    path: str  # relative to the workspace root, "/" separated
    uri: str
    version: int | None
    text: str


def syntax_errors(text: str, language: str) -> list[tuple[int, str]]:
    """(0-based line, description) of each ERROR or MISSING node in ``text``."""
    tree = get_parser(language).parse(text.encode("utf-8"))
    found: list[tuple[int, str]] = []
    if not tree.root_node.has_error:
        return found
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append((node.start_point[0], f"missing {node.type!r}"))
        elif node.type == "ERROR":
            snippet = (node.text or b"").decode("utf-8", "replace").splitlines()
            found.append(
                (node.start_point[0], f"unexpected {snippet[0][:40]!r}" if snippet else "error")
            )
            continue
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return sorted(found)


def validate(diff_text: str, documents: dict[str, Document]) -> dict[str, str]:
    """The patched text of each document the diff changes; raises DiffValidationError."""
    patches = diffs.parse_unified_diff(diff_text)
    patched: dict[str, str] = {}
    for patch in patches:
        creates_empty = (
            patch.old_path is None
            and patch.new_path in documents
            and not documents[patch.new_path].text
        )
        if creates_empty:
            # A new file the client sent as an empty document (e.g. a test file to write).
            patch.old_path = patch.new_path
        if patch.old_path is None or patch.new_path is None:
            raise DiffValidationError(
                f"the diff creates or deletes {patch.path}; only edits to the documents sent "
                f"are allowed ({', '.join(sorted(documents))})"
            )
        if patch.old_path != patch.new_path:
            raise DiffValidationError(
                f"the diff renames {patch.old_path} to {patch.new_path}; renames are not allowed"
            )
        document = documents.get(patch.path)
        if document is None:
            raise DiffValidationError(
                f"the diff touches {patch.path}, which is not in scope; only "
                f"{', '.join(sorted(documents))} may change"
            )
        base = patched.get(patch.path, document.text)
        patched[patch.path] = diffs.apply_patch(base, patch)
    for path, text in patched.items():
        language = language_for_path(path)
        if language is None:
            continue
        before = syntax_errors(documents[path].text, language)
        after = syntax_errors(text, language)
        if len(after) > len(before):
            old = set(before)
            new = [item for item in after if item not in old] or after
            line, what = new[0]
            raise DiffValidationError(
                f"{path}: the patched file has a new syntax error at line {line + 1}: {what}"
            )
    return {path: text for path, text in patched.items() if text != documents[path].text}
