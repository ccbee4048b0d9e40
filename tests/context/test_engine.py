"""The engine facade on real multi-file projects: completion and task context, symbols."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from swarm_lsp.config import ContextSettings
from swarm_lsp.context import compression
from swarm_lsp.context.documents import path_to_uri
from swarm_lsp.context.engine import ContextEngine
from swarm_lsp.context.packing import estimate_tokens
from swarm_lsp.errors import CompressionError

FIXTURES = Path(__file__).parent / "fixtures"


def make_engine(root: Path | None, tmp_path: Path, **settings: int) -> ContextEngine:
    engine = ContextEngine(root, ContextSettings(**settings), tmp_path / "cache")  # type: ignore[arg-type]
    engine.index_workspace()
    return engine


def open_file(engine: ContextEngine, path: Path, language_id: str) -> str:
    uri = path_to_uri(path)
    engine.documents.open(uri, path.read_text(encoding="utf-8"), language_id)
    return uri


def cursor_after(text: str, needle: str) -> tuple[int, int]:
    """(line, character) just after the first ``needle`` (ASCII fixtures)."""
    index = text.index(needle) + len(needle)
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)


# -- completion --------------------------------------------------------------------------


def test_completion_includes_signature_from_another_file(
    sample_project: Path, tmp_path: Path
) -> None:
    engine = make_engine(sample_project, tmp_path)
    report = sample_project / "shapes" / "report.py"
    uri = open_file(engine, report, "python")
    line, char = cursor_after(report.read_text(), "circle = area_of_circle(")
    ctx = engine.completion_context(uri, line, char)

    assert ctx.language == "python" and ctx.path == "shapes/report.py"
    assert "def area_of_circle(radius: float) -> float:" in ctx.preamble
    assert "shapes/geometry.py" in ctx.preamble
    assert "area_of_circle" in ctx.symbols
    # Definitions from the current file are not repeated in the preamble.
    assert "def describe_rectangle" not in ctx.preamble
    # Stable first: the path comment opens the preamble; the cursor splits prefix/suffix.
    assert ctx.preamble.startswith("# Path: shapes/report.py\n")
    assert ctx.prefix.endswith("circle = area_of_circle(")
    assert ctx.suffix.startswith("radius)\n")
    assert ctx.prompt_prefix == ctx.preamble + ctx.prefix
    assert ctx.tokens <= ContextSettings().completion_budget_tokens


def test_completion_in_a_long_file_brings_imports_and_enclosing_scope(
    sample_project: Path, tmp_path: Path
) -> None:
    report = sample_project / "shapes" / "report.py"
    filler = "".join(f"    value_{i} = {i}  # padding line\n" for i in range(400))
    report.write_text(
        "from shapes.geometry import Rectangle, area_of_circle, scale\n\n\n"
        "def long_summary(radius: float, rect: Rectangle) -> str:\n"
        + filler
        + "    bigger = scale(rect, 2)\n    return str(bigger)\n"
    )
    engine = make_engine(sample_project, tmp_path)
    uri = open_file(engine, report, "python")
    line, char = cursor_after(report.read_text(), "bigger = scale(")
    ctx = engine.completion_context(uri, line, char, budget_tokens=300)

    assert estimate_tokens(ctx.preamble + ctx.prefix + ctx.suffix) <= 300
    assert "long_summary" not in ctx.prefix  # the header is far above the prefix window
    assert "from shapes.geometry import Rectangle, area_of_circle, scale" in ctx.preamble
    assert "def scale(rect: Rectangle, factor: float) -> Rectangle:" in ctx.preamble
    assert "# in: def long_summary(radius: float, rect: Rectangle) -> str:" in ctx.preamble
    # Order: path, imports, signatures, then the cursor-local scope.
    assert (
        ctx.preamble.index("# Path:")
        < ctx.preamble.index("from shapes")
        < ctx.preamble.index("def scale")
        < ctx.preamble.index("# in:")
    )
    assert ctx.prefix.endswith("bigger = scale(")


@pytest.mark.parametrize(
    ("project", "file", "language_id", "needle", "signature", "comment"),
    [
        (
            "project_ts",
            "src/report.ts",
            "typescript",
            "const area = areaOfCircle(",
            "export function areaOfCircle(radius: number): number",
            "//",
        ),
        (
            "project_go",
            "main.go",
            "go",
            "h := geo.Hypot(",
            "func Hypot(a, b float64) float64",
            "//",
        ),
    ],
)
def test_completion_cross_file_in_other_languages(
    tmp_path: Path,
    project: str,
    file: str,
    language_id: str,
    needle: str,
    signature: str,
    comment: str,
) -> None:
    root = tmp_path / project
    shutil.copytree(FIXTURES / project, root)
    engine = make_engine(root, tmp_path)
    path = root / file
    uri = open_file(engine, path, language_id)
    line, char = cursor_after(path.read_text(), needle)
    ctx = engine.completion_context(uri, line, char)
    assert signature.removeprefix("export ") in ctx.preamble
    assert ctx.preamble.startswith(f"{comment} Path: {file}\n")


def test_completion_respects_a_real_token_counter(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    uri = open_file(engine, sample_project / "shapes" / "report.py", "python")

    def count(text: str) -> int:  # a whitespace "tokenizer" stands in for the model's
        return len(text.split()) + text.count("\n")

    for budget in (0, 5, 20, 60, 200):
        ctx = engine.completion_context(uri, 10, 12, budget_tokens=budget, count_tokens=count)
        assert count(ctx.preamble) + count(ctx.prefix) + count(ctx.suffix) <= budget


def test_completion_tracks_edits_and_clamps_positions(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    uri = open_file(engine, sample_project / "shapes" / "report.py", "python")
    engine.documents.apply_change(uri, 18, 0, 18, 0, "\ndef extra() -> float:\n    return sca")
    ctx = engine.completion_context(uri, 20, 14)
    assert ctx.prefix.endswith("    return sca") and ctx.suffix == ""
    assert "def scale(rect: Rectangle, factor: float) -> Rectangle:" in ctx.preamble
    far = engine.completion_context(uri, 10_000, 10_000)
    assert far.suffix == "" and far.prefix.endswith("return sca")
    neg = engine.completion_context(uri, -5, -5)
    assert neg.prefix == "" and neg.suffix.startswith('"""Format')


def test_plain_text_unopened_and_missing_documents(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    engine.documents.open("untitled:Untitled-1", "hello area_of_circle world", "plaintext")
    ctx = engine.completion_context("untitled:Untitled-1", 0, 5)
    assert (ctx.prefix, ctx.suffix, ctx.language) == ("hello", " area_of_circle world", None)
    assert engine.document_symbols("untitled:Untitled-1") == []
    # Not open: read from disk.
    geometry = path_to_uri(sample_project / "shapes" / "geometry.py")
    ctx = engine.completion_context(geometry, 6, 0)
    assert ctx.prefix.endswith("\n\n") and ctx.suffix.startswith("def area_of_circle")
    # Neither open nor on disk: empty context, no error.
    missing = path_to_uri(sample_project / "nope.py")
    assert engine.completion_context(missing, 0, 0).prefix == ""
    assert engine.task_context(missing, 0, 0).section("current file") is None


def test_huge_open_document_degrades_to_plain_text(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    uri = path_to_uri(sample_project / "big.py")
    text = "x = area_of_circle(1)\n" * (50 * 1024 * 1024 // 22)  # about 50 MB
    doc = engine.documents.open(uri, text, "python")
    assert doc.tree is None  # over max_file_bytes: no parse
    started = time.perf_counter()
    ctx = engine.completion_context(uri, 1_000_000, 5)
    # Building the line index of 2.4 million lines is the cost; generous for a busy machine.
    assert time.perf_counter() - started < 5.0
    assert ctx.prefix.endswith("x = a") and ctx.tokens <= 768
    doc = engine.documents.apply_change(uri, 0, 0, 0, 0, "# edited\n")
    assert doc.text.startswith("# edited\nx = ")


def test_file_events_update_completions(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    report = sample_project / "shapes" / "report.py"
    uri = open_file(engine, report, "python")
    engine.documents.apply_change(uri, 18, 0, 18, 0, "\nvalue = fancy_function(")
    helper = sample_project / "shapes" / "fancy.py"
    helper.write_text("def fancy_function(a: int, b: int = 2) -> int:\n    return a + b\n")
    assert "fancy_function" not in engine.completion_context(uri, 19, 23).preamble
    engine.file_changed(helper)
    assert "def fancy_function(a: int, b: int = 2) -> int:" in (
        engine.completion_context(uri, 19, 23).preamble
    )
    helper.unlink()
    engine.file_deleted(helper)
    assert "fancy_function(a" not in engine.completion_context(uri, 19, 23).preamble


# -- task context ------------------------------------------------------------------------


def test_task_context_sections(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    report = sample_project / "shapes" / "report.py"
    uri = open_file(engine, report, "python")
    line, char = cursor_after(report.read_text(), "circle = area_of_circle(")
    packed = engine.task_context(uri, line, char, budget_tokens=2000)
    names = [s.name for s in packed.sections]
    assert names == ["header", "repo map", "definitions", "current file"]
    assert packed.tokens <= 2000
    repo_map = packed.section("repo map")
    assert repo_map is not None and "def area_of_circle(radius: float) -> float:" in repo_map.text
    definitions = packed.section("definitions")
    assert definitions is not None
    assert "return math.pi * radius * radius" in definitions.text  # full text, not signature
    current = packed.section("current file")
    assert current is not None and "def summary(radius: float" in current.text

    tight = engine.task_context(uri, line, char, budget_tokens=120)
    assert tight.tokens <= 120


def test_task_context_without_a_document_is_a_repo_map(
    sample_project: Path, tmp_path: Path
) -> None:
    engine = make_engine(sample_project, tmp_path)
    packed = engine.task_context(None, None, None, budget_tokens=500)
    assert [s.name for s in packed.sections] == ["header", "repo map"]
    assert "shapes/geometry.py:" in packed.text


def test_task_context_bytes_with_the_trained_dictionary(
    sample_project: Path, tmp_path: Path
) -> None:
    engine = make_engine(sample_project, tmp_path)
    assert engine.dictionary_id is None  # the sample is too small to train on by itself
    uri = open_file(engine, sample_project / "shapes" / "report.py", "python")
    trained = engine.train_dictionary()  # on task payloads of this workspace
    assert engine.dictionary_id == trained and trained in engine.dictionaries
    blob, ident = engine.task_context_bytes(uri, 10, 20)
    assert ident == trained
    text = engine.task_context(uri, 10, 20).text
    assert engine.decompress(blob).decode() == text
    plain = compression.compress(text.encode())
    assert len(blob) < len(plain)

    # A restart finds the stored dictionary under the same cache dir, and does not retrain.
    again = ContextEngine(sample_project, ContextSettings(), tmp_path / "cache")
    assert again.dictionary_id == trained and trained in again.dictionaries
    again.index_workspace()
    assert again.dictionary_id == trained
    assert again.decompress(blob).decode() == text

    # A peer without the dictionary gets a clear error, not garbage.
    with pytest.raises(CompressionError, match=f"dictionary id {trained}"):
        compression.decompress(blob, 1 << 20, {})


def test_tiny_workspace_sends_frames_without_a_dictionary(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    root.mkdir()
    (root / "one.py").write_text("def one():\n    return 1\n")
    engine = make_engine(root, tmp_path)
    assert engine.dictionary_id is None
    blob, ident = engine.task_context_bytes(path_to_uri(root / "one.py"), 0, 0)
    assert ident is None
    assert "def one():" in engine.decompress(blob).decode()
    # Training on explicit samples works and is used from then on.
    samples = [p.read_bytes() for p in (FIXTURES / "tags").iterdir()] * 4
    trained = engine.train_dictionary(samples)
    assert engine.task_context_bytes(path_to_uri(root / "one.py"), 0, 0)[1] == trained


# -- symbols -----------------------------------------------------------------------------


def test_document_symbols_are_hierarchical(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    uri = path_to_uri(sample_project / "shapes" / "geometry.py")  # not open: read from disk
    symbols = engine.document_symbols(uri)
    assert [(s.name, s.kind) for s in symbols] == [
        ("area_of_circle", "function"),
        ("Rectangle", "class"),
        ("scale", "function"),
    ]
    rect = symbols[1]
    assert [(c.name, c.kind) for c in rect.children] == [
        ("area", "method"),
        ("perimeter", "method"),
    ]
    area = symbols[0]
    assert (area.range.start.line, area.range.end.line) == (6, 10)
    assert (area.selection_range.start.character, area.selection_range.end.character) == (4, 18)
    assert area.detail == "def area_of_circle(radius: float) -> float:"

    # An open document's unsaved edits show up.
    open_uri = open_file(engine, sample_project / "shapes" / "geometry.py", "python")
    engine.documents.apply_change(open_uri, 0, 0, 0, 0, "def first(): pass\n")
    assert engine.document_symbols(open_uri)[0].name == "first"


def test_workspace_symbols(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    found = engine.workspace_symbols("area")
    names = [s.name for s in found]
    assert names[0] == "area"  # exact match first
    assert "area_of_circle" in names and "test_area_of_circle" in names
    area = found[0]
    assert area.container == "Rectangle" and area.kind == "method"
    assert area.path == str((sample_project / "shapes" / "geometry.py").resolve())
    assert [s.name for s in engine.workspace_symbols("aoc")] == [
        "area_of_circle",
        "test_area_of_circle",
    ]
    assert len(engine.workspace_symbols("", limit=3)) == 3
    assert engine.workspace_symbols("zzzz") == []


def test_engine_without_a_workspace(tmp_path: Path) -> None:
    engine = make_engine(None, tmp_path)
    uri = "file:///nowhere/x.py"
    engine.documents.open(uri, "def f():\n    return g(\n", "python")
    ctx = engine.completion_context(uri, 1, 13)
    assert ctx.prefix.endswith("return g(") and ctx.path == "x.py"
    assert [s.name for s in engine.document_symbols(uri)] == ["f"]
    assert engine.workspace_symbols("f") == []


def test_indexing_a_real_sized_workspace_trains_a_dictionary(tmp_path: Path) -> None:
    root = tmp_path / "mid"
    for i in range(40):
        body = "".join(
            f"def func_{i}_{j}(value: int, scale: float = {j}.5) -> float:\n"
            f'    """Scale {j} of module {i}."""\n'
            f"    return helper_{(i + 1) % 40}_{j}(value) * scale\n\n"
            for j in range(16)
        )
        body += "".join(
            f"def helper_{i}_{j}(v: int) -> int:\n    return v + {j}\n\n" for j in range(16)
        )
        path = root / f"pkg{i % 4}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    engine = make_engine(root, tmp_path)
    assert engine.dictionary_id is not None
    uri = path_to_uri(root / "pkg1" / "mod5.py")
    blob, ident = engine.task_context_bytes(uri, 3, 10, budget_tokens=1500)
    assert ident == engine.dictionary_id
    text = engine.task_context(uri, 3, 10, budget_tokens=1500).text
    assert engine.decompress(blob).decode() == text
    assert len(blob) < len(compression.compress(text.encode()))


def test_refresh_document_indexes_unsaved_text(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    geometry = sample_project / "shapes" / "geometry.py"
    uri = open_file(engine, geometry, "python")
    engine.documents.apply_change(
        uri, 0, 0, 0, 0, "def brand_new_helper(x: int) -> int:\n    return x\n"
    )
    assert engine.workspace_symbols("brand_new_helper") == []  # not saved, not refreshed
    engine.refresh_document(uri)
    found = engine.workspace_symbols("brand_new_helper")
    assert [s.name for s in found] == ["brand_new_helper"]
    # Closing without saving: re-reading the file restores the on-disk view.
    engine.documents.close(uri)
    engine.file_changed(geometry)
    assert engine.workspace_symbols("brand_new_helper") == []
    engine.refresh_document("file:///not/open.py")  # harmless


def test_concurrent_use_from_threads(sample_project: Path, tmp_path: Path) -> None:
    engine = make_engine(sample_project, tmp_path)
    report = sample_project / "shapes" / "report.py"
    uri = open_file(engine, report, "python")
    errors: list[BaseException] = []

    def guard(fn: Callable[[int], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                for i in range(40):
                    fn(i)
            except BaseException as err:  # collected and re-raised below
                errors.append(err)

        return run

    def type_keys(i: int) -> None:
        engine.documents.apply_change(uri, 18, 0, 18, 0, "x")

    jobs = [
        type_keys,
        lambda i: engine.completion_context(uri, 10, i % 30),
        lambda i: engine.task_context(uri, 10, 5, budget_tokens=400),
        lambda i: engine.file_changed(sample_project / "shapes" / "geometry.py"),
        lambda i: engine.workspace_symbols("area"),
        lambda i: engine.document_symbols(uri),
    ]
    threads = [threading.Thread(target=guard(job)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    doc = engine.documents.get(uri)
    assert doc is not None and doc.text.count("x" * 40) == 1


def test_common_names_need_an_import_to_enter_the_preamble(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    for i in range(6):
        (root / "pkg" / f"m{i}.py").write_text(f"def join(parts, sep_{i}=','):\n    pass\n")
    (root / "pkg" / "special.py").write_text("def very_specific_helper(n: int) -> int:\n    pass\n")
    plain = root / "plain.py"
    plain.write_text("x = join([1, 2])\ny = very_specific_helper(3)\n")
    imported = root / "imported.py"
    imported.write_text("from pkg.m3 import join\n\nx = join([1, 2])\n")
    engine = make_engine(root, tmp_path)

    ctx = engine.completion_context(open_file(engine, plain, "python"), 1, 25)
    assert "very_specific_helper(n: int)" in ctx.preamble
    assert "def join" not in ctx.preamble  # six files define it and none is imported

    ctx = engine.completion_context(open_file(engine, imported, "python"), 2, 9)
    assert "def join(parts, sep_3=','):" in ctx.preamble
    assert "sep_0" not in ctx.preamble


@pytest.mark.parametrize(
    ("module", "path", "imported"),
    [
        ("shapes.geometry", "shapes/geometry.py", True),
        (".helpers", "pkg/helpers.py", True),
        ("./util/geometry", "src/util/geometry.ts", True),
        ("example.com/project/geo", "geo/geo.go", True),
        ("com.example.util", "src/main/java/com/example/util/Helper.java", True),
        ("crate::geometry", "src/geometry.rs", True),
        ("geometry.h", "include/geometry.h", True),
        ("shapes.geometry", "other/geometry_tools.py", False),
        ("os.path", "mypath.py", False),
    ],
)
def test_imported_module_matching(module: str, path: str, imported: bool) -> None:
    from swarm_lsp.context.index import FileTags
    from swarm_lsp.context.preamble import candidate_rank, imported_paths
    from swarm_lsp.context.tags import Tag

    own = FileTags(
        "here.py", "python", "x", (), (Tag(module, "module", "import", "here.py", 0, 0, 0),), {}
    )
    modules = imported_paths(own)
    tag = Tag("f", "function", "def", path, 0, 0, 0)
    assert (candidate_rank(tag, "here.py", modules)[0] == 0) is imported
