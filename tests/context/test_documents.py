"""Open documents: UTF-16 positions, clamping, and incremental trees equal to fresh parses."""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_sitter import Node, Tree

from swarm_lsp.context import languages
from swarm_lsp.context.documents import DocumentStore, path_to_uri, uri_to_path
from swarm_lsp.context.text import LineIndex, point_at, utf16_len

URI = "file:///work/x.py"


def shape(tree: Tree) -> list[tuple[object, ...]]:
    """Every node with its type and exact byte/point span, in document order."""
    out: list[tuple[object, ...]] = []
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        out.append(
            (
                node.type,
                node.start_byte,
                node.end_byte,
                tuple(node.start_point),
                tuple(node.end_point),
                node.is_missing,
                node.has_error,
            )
        )
        stack.extend(reversed(node.children))
    return out


def fresh(language: str, text: str) -> Tree:
    return languages.get_parser(language).parse(text.encode("utf-8"))


def lsp_lines(text: str) -> list[tuple[int, str]]:
    """(char offset of the line start, line content) per LSP line."""
    out = []
    start = 0
    for match in re.finditer(r"\r\n|\r|\n", text):
        out.append((start, text[start : match.start()]))
        start = match.end()
    out.append((start, text[start:]))
    return out


def test_ascii_edit_updates_text_and_tree() -> None:
    store = DocumentStore()
    store.open(URI, "def f(x):\n    return x\n", "python")
    doc = store.apply_change(URI, 1, 11, 1, 12, "x + 1")
    assert doc.text == "def f(x):\n    return x + 1\n"
    assert doc.version == 1
    assert shape(doc.tree) == shape(fresh("python", doc.text))  # type: ignore[arg-type]


def test_utf16_columns_with_astral_characters() -> None:
    # "😀" is two UTF-16 units and four UTF-8 bytes; "é" is one unit and two bytes.
    store = DocumentStore()
    store.open(URI, "s = '😀é'\nt = 1\n", "python")
    # Insert after the emoji: column 5 + 2 = 7 in UTF-16 units.
    doc = store.apply_change(URI, 0, 7, 0, 7, "X")
    assert doc.text == "s = '😀Xé'\nt = 1\n"
    # Replace "é" (now at UTF-16 column 8..9).
    doc = store.apply_change(URI, 0, 8, 0, 9, "ü")
    assert doc.text == "s = '😀Xü'\nt = 1\n"
    assert shape(doc.tree) == shape(fresh("python", doc.text))  # type: ignore[arg-type]


def test_out_of_range_positions_clamp() -> None:
    store = DocumentStore()
    store.open(URI, "a = 1\nb = 2", "python")
    doc = store.apply_change(URI, 0, 999, 0, 999, "0")  # past the end of line 0
    assert doc.text == "a = 10\nb = 2"
    doc = store.apply_change(URI, 99, 0, 120, 5, "\nc = 3")  # past the last line
    assert doc.text == "a = 10\nb = 2\nc = 3"
    doc = store.apply_change(URI, -3, -1, 0, 1, "x")  # negative: start of document
    assert doc.text == "x = 10\nb = 2\nc = 3"
    doc = store.apply_change(URI, 1, 5, 1, 0, "B")  # reversed range is swapped
    assert doc.text == "x = 10\nB\nc = 3"
    assert shape(doc.tree) == shape(fresh("python", doc.text))  # type: ignore[arg-type]


def test_middle_of_surrogate_pair_rounds_down() -> None:
    store = DocumentStore()
    store.open(URI, "😀😀", "python")
    doc = store.apply_change(URI, 0, 3, 0, 3, "|")  # column 3 is inside the 2nd emoji
    assert doc.text == "😀|😀"


def test_crlf_and_lone_cr_lines() -> None:
    store = DocumentStore()
    store.open(URI, "a = 1\r\nb = 2\rc = 3\n", "python")
    doc = store.apply_change(URI, 2, 0, 2, 1, "z")
    assert doc.text == "a = 1\r\nb = 2\rz = 3\n"
    doc = store.apply_change(URI, 0, 50, 0, 50, "9")  # clamps before the \r\n
    assert doc.text == "a = 19\r\nb = 2\rz = 3\n"
    assert shape(doc.tree) == shape(fresh("python", doc.text))  # type: ignore[arg-type]


def test_old_snapshot_keeps_its_tree() -> None:
    store = DocumentStore()
    first = store.open(URI, "x = 1\n", "python")
    before = shape(first.tree)  # type: ignore[arg-type]
    store.apply_change(URI, 0, 0, 0, 0, "def g(): pass\n")
    assert shape(first.tree) == before  # type: ignore[arg-type]
    assert first.text == "x = 1\n"


def test_replace_close_get_and_unknown_languages() -> None:
    store = DocumentStore()
    store.open(URI, "x = 1\n", "python")
    doc = store.replace(URI, "y = 2\n")
    assert doc.text == "y = 2\n" and doc.version == 1
    assert shape(doc.tree) == shape(fresh("python", "y = 2\n"))  # type: ignore[arg-type]
    store.close(URI)
    assert store.get(URI) is None
    store.close(URI)  # closing twice is harmless
    plain = store.open("untitled:Untitled-1", "hello", "plaintext")
    assert plain.tree is None and plain.language is None
    plain = store.apply_change("untitled:Untitled-1", 0, 5, 0, 5, " world")
    assert plain.text == "hello world"
    # A change for a document that was never opened starts from empty text.
    ghost = store.apply_change("file:///ghost.py", 3, 3, 3, 3, "z = 1")
    assert ghost.text == "z = 1" and ghost.tree is not None


def test_documents_over_the_parse_limit_keep_text_without_a_tree() -> None:
    store = DocumentStore(max_parse_bytes=100)
    doc = store.open(URI, "x = 1\n" * 50, "python")
    assert doc.tree is None and doc.text.count("\n") == 50
    doc = store.apply_change(URI, 0, 0, 50, 0, "x = 2\n")
    assert doc.tree is not None  # small enough again


def test_uri_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "dir with space" / "é.py"
    uri = path_to_uri(path)
    assert uri.startswith("file:///") and "%20" in uri
    assert uri_to_path(uri) == path.resolve()
    assert uri_to_path("untitled:Untitled-1") is None


def test_line_index_positions_round_trip() -> None:
    text = "a😀b\r\né\rz\n"
    index = LineIndex(text.encode())
    assert index.line_count == 4
    assert index.position(index.offset(0, 3)) == (0, 3)
    assert index.offset(0, 3) == 5  # "a" + 4-byte emoji
    assert index.position(len(text.encode())) == (3, 0)
    assert index.offset(1, 1) == index.line_start(1) + 2


# -- property: random edit sequences ------------------------------------------------------

FRAGMENTS = [
    "def f(x):\n",
    "    return x + 1\n",
    "class C:\n",
    "    pass\n",
    "s = 'é😀日本'\n",
    "# ü comment 🎉\n",
    "(",
    ")",
    "'",
    '"',
    ":",
    " ",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "x",
    "é",
    "😀",
    "\U0001d4b3",  # astral letter
    "if a:\n        b()\n",
]
text_strategy = st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join)


@st.composite
def position(draw: st.DrawFn, text: str) -> tuple[int, int, int]:
    """(line, UTF-16 column, absolute char offset) of a valid position in ``text``."""
    lines = lsp_lines(text)
    line = draw(st.integers(0, len(lines) - 1))
    start, content = lines[line]
    index = draw(st.integers(0, len(content)))
    return line, utf16_len(content[:index]), start + index


EXAMPLES = int(os.environ.get("CONTEXT_PROPERTY_EXAMPLES", "120"))  # 2000 for a soak
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Complete statements: any concatenation is a valid program (no syntax errors).
VALID_STATEMENTS = {
    "python": [
        "x = 1\n",
        "s = 'é😀日本\U0001d4b3'\n",
        "# ü comment 🎉\n",
        "def f(x):\n    return x + 1\n",
        "class C:\n    def m(self):\n        return 'ñ'\n",
        "if a:\n    b()\n",
        "\n",
    ],
    "javascript": [
        "let x = 1;\n",
        "const s = 'é😀日本\U0001d4b3';\n",
        "// ü comment 🎉\n",
        "function f(x) { return x + 1; }\n",
        "class C { m() { return 'ñ'; } }\n",
        "if (a) { b(); }\n",
        "\n",
    ],
}


def assert_consistent(tree: Tree, source: bytes) -> None:
    """Every node's points agree with its bytes, and children nest in order inside parents.

    A wrong byte offset or point given to ``Tree.edit`` shows up here, in reused nodes.
    """
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        assert 0 <= node.start_byte <= node.end_byte <= len(source), node
        assert tuple(node.start_point) == tuple(point_at(source, node.start_byte)), node
        assert tuple(node.end_point) == tuple(point_at(source, node.end_byte)), node
        previous_end = node.start_byte
        for child in node.children:
            assert previous_end <= child.start_byte and child.end_byte <= node.end_byte, child
            previous_end = child.end_byte
        stack.extend(node.children)


def lsp_position(text: str, offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 character) of char ``offset`` in ``text`` (not inside a CRLF)."""
    for line, (start, content) in reversed(list(enumerate(lsp_lines(text)))):
        if start <= offset:
            return line, utf16_len(content[: offset - start])
    return 0, 0


@PROPERTY_SETTINGS
@given(
    language=st.sampled_from(["python", "javascript"]),
    initial=text_strategy,
    data=st.data(),
)
def test_incremental_trees_after_random_edits(
    language: str, initial: str, data: st.DataObject
) -> None:
    """After each edit: text, line index and tree are right; the tree equals a fresh parse
    whenever the text is valid (with syntax errors tree-sitter's recovery may legitimately
    differ from a fresh parse, as its own randomized tests allow; the tree must still be
    consistent, and the undo test below checks it converges back)."""
    store = DocumentStore()
    uri = "file:///prop/x." + ("py" if language == "python" else "js")
    store.open(uri, initial, language)
    model = initial
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        sl, sc, a = data.draw(position(model), label="start")
        el, ec, b = data.draw(position(model), label="end")
        new_text = data.draw(text_strategy, label="new_text")
        doc = store.apply_change(uri, sl, sc, el, ec, new_text)
        lo, hi = min(a, b), max(a, b)
        model = model[:lo] + new_text + model[hi:]
        assert doc.text == model
        assert doc.source == model.encode("utf-8")
        assert doc.lines == LineIndex(doc.source)  # the incrementally updated line index
        assert doc.tree is not None
        assert_consistent(doc.tree, doc.source)
        expected = fresh(language, model)
        if not expected.root_node.has_error:
            assert shape(doc.tree) == shape(expected)


@PROPERTY_SETTINGS
@given(language=st.sampled_from(["python", "javascript"]), data=st.data())
def test_undoing_random_edits_gives_back_the_fresh_tree(language: str, data: st.DataObject) -> None:
    """Valid program → random (often breaking) edits → undo them all, incrementally:
    the tree equals a fresh parse of the original, as in tree-sitter's own corpus tests."""
    statements = st.lists(st.sampled_from(VALID_STATEMENTS[language]), min_size=1, max_size=10)
    initial = data.draw(statements.map("".join), label="initial")
    edit_text = st.lists(st.sampled_from([f for f in FRAGMENTS if "\r" not in f]), max_size=6).map(
        "".join
    )
    store = DocumentStore()
    uri = "file:///prop/undo." + ("py" if language == "python" else "js")
    store.open(uri, initial, language)
    model = initial
    undo: list[tuple[int, int, str]] = []  # (char offset, inserted length, removed text)
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        sl, sc, a = data.draw(position(model), label="start")
        el, ec, b = data.draw(position(model), label="end")
        new_text = data.draw(edit_text, label="new_text")
        lo, hi = min(a, b), max(a, b)
        undo.append((lo, len(new_text), model[lo:hi]))
        store.apply_change(uri, sl, sc, el, ec, new_text)
        model = model[:lo] + new_text + model[hi:]
    for lo, length, removed in reversed(undo):
        start = lsp_position(model, lo)
        end = lsp_position(model, lo + length)
        doc = store.apply_change(uri, *start, *end, removed)
        model = model[:lo] + removed + model[lo + length :]
        assert doc.text == model
    final = store.get(uri)
    assert final is not None and final.text == initial and final.tree is not None
    assert_consistent(final.tree, final.source)
    assert shape(final.tree) == shape(fresh(language, initial))


@given(text_strategy, st.data())
def test_line_index_points_match_tree_sitter_rows(text: str, data: st.DataObject) -> None:
    source = text.encode()
    index = LineIndex(source)
    offset = data.draw(st.integers(-2, len(source) + 2))
    assert index.point(offset) == point_at(source, max(0, min(offset, len(source))))
