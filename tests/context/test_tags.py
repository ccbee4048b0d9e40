"""Tags per language: definitions, references and imports found in real fixture files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from swarm_lsp.context import languages
from swarm_lsp.context.tags import Tag, extract_file_tags, extract_tags, get_query, tags_for_path
from swarm_lsp.errors import ContextError

FIXTURES = Path(__file__).parent / "fixtures" / "tags"

# language → (fixture, expected definitions {(name, kind)}, references, imports)
EXPECTED: dict[str, tuple[str, set[tuple[str, str]], set[str], set[str]]] = {
    "python": (
        "sample.py",
        {
            ("Shape", "class"),
            ("area", "method"),
            ("name", "method"),
            ("compute_area", "function"),
            ("LIMIT", "constant"),
        },
        {"compute_area", "load_config", "basename", "Base", "Shape", "property"},
        {"os.path", "collections", "OrderedDict", ".helpers", "load_config", "Settings"},
    ),
    "javascript": (
        "sample.js",
        {
            ("Widget", "class"),
            ("render", "method"),
            ("makeWidget", "function"),
            ("arrow", "function"),
            ("load", "function"),
        },
        {"helper", "Widget", "makeWidget", "render", "renamed", "Base"},
        {"./util.js", "lib", "fs", "Default", "helper", "ns"},
    ),
    "typescript": (
        "sample.ts",
        {
            ("Shape", "interface"),
            ("Point", "type"),
            ("Color", "enum"),
            ("Base", "class"),
            ("Circle", "class"),
            ("computeArea", "function"),
            ("makeCircle", "function"),
            ("area", "method"),
        },
        {"computeArea", "loadConfig", "Circle", "Config", "Base", "Shape"},
        {"./config", "Config", "loadConfig"},
    ),
    "tsx": (
        "sample.tsx",
        {("ButtonProps", "interface"), ("Button", "function"), ("Panel", "function")},
        {"formatLabel", "ButtonProps", "Button"},
        {"react", "React", "./labels", "formatLabel"},
    ),
    "go": (
        "sample.go",
        {
            ("Shape", "interface"),
            ("Circle", "class"),
            ("Area", "method"),
            ("square", "function"),
            ("Describe", "function"),
            ("Scale", "constant"),
        },
        {"square", "Sprintf", "Area", "Shape", "Circle"},
        {"fmt", "math", "m"},
    ),
    "rust": (
        "sample.rs",
        {
            ("Circle", "class"),
            ("Kind", "class"),
            ("Shape", "interface"),
            ("area", "method"),
            ("compute", "function"),
            ("square", "macro"),
            ("inner", "module"),
            ("LIMIT", "constant"),
        },
        {"compute", "area", "println", "new", "Shape", "HashMap"},
        {"std::collections", "HashMap", "crate::geometry", "area", "Rect"},
    ),
    "java": (
        "Sample.java",
        {
            ("Sample", "class"),
            ("Sample", "constructor"),
            ("area", "method"),
            ("make", "method"),
            ("Shape", "interface"),
            ("Color", "enum"),
        },
        {"square", "Sample", "Base", "Shape"},
        {"java.util", "List", "com.example.util", "Helper"},
    ),
    "c": (
        "sample.c",
        {
            ("square", "function"),
            ("describe", "function"),
            ("area_of", "function"),
            ("point", "class"),
            ("point_t", "type"),
            ("color", "type"),
            ("SQUARE", "macro"),
        },
        {"printf", "square", "format_point", "point_t"},
        {"stdio.h", "geometry.h"},
    ),
    "cpp": (
        "sample.cpp",
        {
            ("geo", "module"),
            ("Circle", "class"),
            ("area", "method"),
            ("scaled", "method"),
            ("Point", "class"),
            ("twice", "function"),
            ("main", "function"),
        },
        {"compute_pi", "twice", "area", "Shape"},
        {"vector", "shape.hpp"},
    ),
    "lua": (
        "sample.lua",
        {
            ("helper", "function"),
            ("area", "function"),
            ("describe", "method"),
            ("scale", "function"),
        },
        {"clamp", "helper", "encode"},
        {"util", "json"},
    ),
}


def by_role(tags: list[Tag], role: str) -> list[Tag]:
    return [tag for tag in tags if tag.role == role]


@pytest.mark.parametrize("language", languages.LANGUAGES)
def test_fixture_tags(language: str) -> None:
    fixture, defs, refs, imports = EXPECTED[language]
    path = FIXTURES / fixture
    assert languages.language_for_path(path) == language
    tags = tags_for_path(path.read_bytes(), str(path))
    found_defs = {(tag.name, tag.kind) for tag in by_role(tags, "def")}
    assert defs <= found_defs, f"missing definitions: {defs - found_defs}"
    found_refs = {tag.name for tag in by_role(tags, "ref")}
    assert refs <= found_refs, f"missing references: {refs - found_refs}"
    found_imports = {tag.name for tag in by_role(tags, "import")}
    assert imports <= found_imports, f"missing imports: {imports - found_imports}"
    # Every definition has a one-line signature containing its name; others have none.
    for tag in by_role(tags, "def"):
        assert tag.name in tag.signature and "\n" not in tag.signature, tag
        assert tag.start_line <= tag.line <= tag.end_line
    assert all(tag.signature == "" for tag in tags if tag.role != "def")
    assert all(tag.path == str(path) for tag in tags)
    # A name node is reported once: a definition is never also a reference of itself.
    spans = [(tag.line, tag.column) for tag in tags]
    assert len(spans) == len(set(spans))


def test_python_details() -> None:
    path = FIXTURES / "sample.py"
    tags = tags_for_path(path.read_bytes(), "sample.py")
    compute = next(t for t in tags if t.name == "compute_area" and t.role == "def")
    assert compute.signature == "def compute_area(shape: Shape, scale: float = 1.0) -> float:"
    assert (compute.line, compute.column, compute.start_line, compute.end_line) == (18, 4, 18, 20)
    area = next(t for t in tags if t.name == "area" and t.role == "def")
    assert area.kind == "method" and area.scope == "Shape"
    call = next(t for t in tags if t.name == "compute_area" and t.role == "ref")
    assert call.line == 11 and call.scope == "area"


def test_columns_are_utf16_units() -> None:
    source = "s = '😀é'; f = 1\ndef g(): pass\nx = '😀'; g()\n".encode()
    tags = extract_tags(source, "python", "u.py")
    f = next(t for t in tags if t.name == "f")
    assert f.column == 11  # "s = '" is 5 units, the emoji 2, then "é'; " is 4
    call = next(t for t in tags if t.name == "g" and t.role == "ref")
    assert (call.line, call.column) == (2, 10)


def test_lone_carriage_returns_count_as_lines() -> None:
    tags = extract_tags(b"a = 1\rdef g(): pass\r", "python", "cr.py")
    g = next(t for t in tags if t.name == "g")
    assert (g.line, g.column) == (1, 4)


def test_row_round_trip() -> None:
    tags = tags_for_path((FIXTURES / "sample.go").read_bytes(), "x.go")
    for tag in tags:
        assert Tag.from_row("x.go", tag.to_row()) == tag


def test_plain_text_and_unknown_languages() -> None:
    assert tags_for_path(b"hello", "notes.txt") == []
    with pytest.raises(ContextError, match="no tree-sitter grammar"):
        get_query("cobol")


def test_broken_source_still_yields_tags() -> None:
    source = (
        b"def ok(x):\n    return x\n\ndef broken(:\n    pass\n\nclass K:\n    def m(self): ok(1)\n"
    )
    tags = extract_tags(source, "python", "b.py")
    names = {t.name for t in tags if t.role == "def"}
    assert {"ok", "K", "m"} <= names


def test_invalid_utf8_does_not_crash() -> None:
    source = b"def f\xff\xfe(x):\n    return g(x)\n\xc3\x28 = 1\n"
    tags = extract_tags(source, "python", "bad.py")
    assert any(t.name == "g" and t.role == "ref" for t in tags)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.iterdir()))
def test_index_extraction_agrees_with_full_tags(fixture: str) -> None:
    source = (FIXTURES / fixture).read_bytes()
    language = languages.language_for_path(fixture)
    assert language is not None
    full = extract_tags(source, language, fixture)
    tags, counts = extract_file_tags(source, language, fixture)
    assert tags == [t for t in full if t.role != "ref"]
    expected: Counter[str] = Counter(t.name for t in full if t.role == "ref")
    assert counts == expected
