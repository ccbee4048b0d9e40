"""Grammar loading: every language parses, unknown names degrade cleanly."""

from __future__ import annotations

import threading

import pytest

from swarm_lsp.context import languages
from swarm_lsp.errors import ContextError

SNIPPETS = {
    "python": b"def f(x):\n    return x\n",
    "javascript": b"function f(x) { return x; }\n",
    "typescript": b"function f(x: number): number { return x; }\n",
    "tsx": b"const A = () => <div>{1}</div>;\n",
    "go": b"package main\nfunc f(x int) int { return x }\n",
    "rust": b"fn f(x: i32) -> i32 { x }\n",
    "java": b"class A { int f(int x) { return x; } }\n",
    "c": b"int f(int x) { return x; }\n",
    "cpp": b"namespace n { int f(int x) { return x; } }\n",
    "lua": b"local function f(x) return x end\n",
}


@pytest.mark.parametrize("name", languages.LANGUAGES)
def test_every_language_parses_without_errors(name: str) -> None:
    tree = languages.get_parser(name).parse(SNIPPETS[name])
    assert tree.root_node.child_count > 0
    assert not tree.root_node.has_error, str(tree.root_node)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.py", "python"),
        ("x.TSX", "tsx"),
        ("x.ts", "typescript"),
        ("x.jsx", "javascript"),
        ("x.hpp", "cpp"),
        ("x.h", "c"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("A.java", "java"),
        ("init.lua", "lua"),
        ("README.md", None),
        ("Makefile", None),
    ],
)
def test_language_for_path(path: str, expected: str | None) -> None:
    assert languages.language_for_path(path) == expected


def test_language_for_id_maps_lsp_ids() -> None:
    assert languages.language_for_id("typescriptreact") == "tsx"
    assert languages.language_for_id("javascriptreact") == "javascript"
    assert languages.language_for_id("Python") == "python"
    assert languages.language_for_id("plaintext") is None
    assert languages.language_for_id("") is None
    assert languages.language_of("x.rs", "plaintext") == "rust"


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ContextError, match="no tree-sitter grammar for language 'cobol'"):
        languages.get_language("cobol")
    with pytest.raises(ContextError):
        languages.get_parser("cobol")


def test_language_is_cached_and_parsers_are_per_thread() -> None:
    assert languages.get_language("python") is languages.get_language("python")
    main = languages.get_parser("python")
    assert languages.get_parser("python") is main
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(languages.get_parser("python")))
    thread.start()
    thread.join()
    assert seen and seen[0] is not main
