"""Where a failing test's bug probably is: the code under test, not the test's own line.

Two clues, best first:

1. the deepest traceback frame in the project's non-test code (the exception came from there);
2. for a plain assertion (the traceback ends in the test), pytest's introspection names the
   function whose result was wrong (``where 5 = perimeter()``, ``<bound method
   Rectangle.perimeter of ...>``): its ``def`` in the project's non-test files.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs"})
_TEST_NAME = re.compile(r"^(test_.*|.*_test|.*[._]spec|.*\.test|conftest)$")
# pytest assertion introspection: "+  where 5 = perimeter()" / "<bound method C.perimeter of"
_WHERE_CALL = re.compile(r"^\s*E?\s*\+\s+where .+? = (?P<name>[A-Za-z_]\w*)\(", re.M)
_BOUND_METHOD = re.compile(r"<bound method (?:[\w.]+\.)?(?P<name>[A-Za-z_]\w*) of ")
_SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"})
MAX_FILES = 2000


def is_test_path(rel: str) -> bool:
    """Whether the project-relative ``rel`` is test code (a tests folder or a test file)."""
    parts = PurePosixPath(rel).parts
    if any(part in _TEST_DIRS for part in parts[:-1]):
        return True
    return bool(parts) and bool(_TEST_NAME.match(PurePosixPath(parts[-1]).stem))


def _called_names(text: str) -> list[str]:
    names: list[str] = []
    for pattern in (_BOUND_METHOD, _WHERE_CALL):
        for match in pattern.finditer(text):
            if match["name"] not in names:
                names.append(match["name"])
    return names


def _definition(name: str, root: Path) -> tuple[str, int] | None:
    """(relative path, 1-based line) of ``def name`` in the project's non-test Python files."""
    pattern = re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", re.M)
    seen = 0
    for file in sorted(root.rglob("*.py")):
        rel_parts = file.relative_to(root).parts
        if any(part in _SKIP_DIRS for part in rel_parts):
            continue
        seen += 1
        if seen > MAX_FILES:
            break
        rel = PurePosixPath(*rel_parts).as_posix()
        if is_test_path(rel):
            continue
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = pattern.search(text)
        if found:
            return rel, text.count("\n", 0, found.start()) + 1
    return None


def suspect(
    text: str, frames: list[tuple[str, int, str]], root: Path
) -> tuple[str, int, str, bool] | None:
    """(path, 1-based line, what, from_frame) where the bug behind a failure probably is."""
    in_code = [frame for frame in frames if not is_test_path(frame[0])]
    if in_code:
        path, line, where = in_code[-1]
        return path, line, where or "module", True
    for name in _called_names(text):
        found = _definition(name, root)
        if found is not None:
            return found[0], found[1], f"{name}()", False
    return None
