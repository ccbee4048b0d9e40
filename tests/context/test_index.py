"""Workspace index: .gitignore, binaries, huge files, invalid UTF-8, the on-disk cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from swarm_lsp.context.index import SymbolIndex, walk_sources

MAX = 100_000


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root, "app/main.py", "from app.util import helper\n\ndef main():\n    helper()\n")
    write(root, "app/util.py", "def helper():\n    return 1\n")
    write(root, "web/index.ts", "export function render(x: number): string { return `${x}`; }\n")
    write(root, "README.md", "# not code\n")
    write(root, ".gitignore", "build/\n*.gen.py\n!keep.gen.py\n")
    write(root, "build/out.py", "def built(): pass\n")
    write(root, "app/schema.gen.py", "def generated(): pass\n")
    write(root, "app/keep.gen.py", "def kept(): pass\n")
    write(root, "web/.gitignore", "vendor/\n/local.ts\n")
    write(root, "web/vendor/lib.ts", "export function vendored() {}\n")
    write(root, "web/local.ts", "export function local() {}\n")
    write(root, "web/sub/local.ts", "export function deeper() {}\n")
    write(root, "node_modules/pkg/index.js", "function dep() {}\n")
    write(root, ".git/info/exclude", "secret.py\n")
    write(root, "secret.py", "def hidden(): pass\n")
    return root


def test_walk_respects_gitignore(workspace: Path) -> None:
    found = {rel for _, rel in walk_sources(workspace)}
    assert found == {
        "app/main.py",
        "app/util.py",
        "app/keep.gen.py",
        "web/index.ts",
        "web/sub/local.ts",
    }


def test_extra_ignore_patterns(workspace: Path) -> None:
    found = {rel for _, rel in walk_sources(workspace, ignore=["web/", "util.py"])}
    assert found == {"app/main.py", "app/keep.gen.py"}


def test_build_indexes_definitions(workspace: Path, tmp_path: Path) -> None:
    index = SymbolIndex(workspace, tmp_path / "cache", MAX)
    stats = index.build()
    assert stats.files_total == 5 and stats.files_parsed == 5 and not stats.cancelled
    assert [t.path for t in index.definitions("helper")] == ["app/util.py"]
    assert index.definitions("built") == []  # ignored folder
    entry = index.get("app/main.py")
    assert entry is not None and entry.references.get("helper") == 1
    assert {t.name for t in entry.imports} >= {"app.util", "helper"}
    assert stats.files_per_second > 0


def test_restart_reads_only_changed_files(workspace: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = SymbolIndex(workspace, cache, MAX)
    first.build()
    first.close()

    second = SymbolIndex(workspace, cache, MAX)
    stats = second.build()
    assert (stats.files_parsed, stats.files_cached) == (0, 5)
    assert [t.path for t in second.definitions("helper")] == ["app/util.py"]
    second.close()

    write(workspace, "app/util.py", "def helper():\n    return 2\n\ndef extra():\n    pass\n")
    (workspace / "web" / "index.ts").unlink()
    third = SymbolIndex(workspace, cache, MAX)
    stats = third.build()
    assert (stats.files_parsed, stats.files_cached, stats.files_total) == (1, 3, 4)
    assert third.definitions("extra") and not third.definitions("render")


def test_identical_content_is_parsed_once(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for i in range(4):
        write(root, f"copy{i}.py", "def same():\n    pass\n")
    index = SymbolIndex(root, tmp_path / "cache", MAX)
    stats = index.build()
    assert stats.files_parsed == 1 and stats.files_cached == 3
    assert sorted(t.path for t in index.definitions("same")) == [f"copy{i}.py" for i in range(4)]


def test_bad_files_are_skipped_or_tolerated(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write(root, "good.py", "def good(): pass\n")
    write(root, "binary.py", b"\x00\x01\x02def nope(): pass\n" + bytes(range(256)))
    write(root, "latin1.py", "def caf\xe9(): pass\ndef ok_after(): pass\n".encode("latin-1"))
    huge = root / "huge.py"
    with huge.open("wb") as handle:  # 50 MB, sparse: costs no disk and must not be read
        handle.truncate(50 * 1024 * 1024)
    index = SymbolIndex(root, tmp_path / "cache", MAX)
    stats = index.build()
    reasons = dict(item.split(": ", 1) for item in stats.skipped)
    assert reasons["binary.py"] == "binary"
    assert reasons["huge.py"].startswith("larger than 100000 bytes")
    assert stats.files_skipped == 2
    assert index.definitions("good") and index.definitions("ok_after")  # invalid UTF-8 is fine
    assert index.get("binary.py") is None and index.get("huge.py") is None


def test_update_and_remove_single_files(workspace: Path, tmp_path: Path) -> None:
    index = SymbolIndex(workspace, tmp_path / "cache", MAX)
    index.build()
    generation = index.generation
    path = write(workspace, "app/new.py", "def fresh():\n    helper()\n")
    entry = index.update_file(path)
    assert entry is not None and entry.path == "app/new.py"
    assert [t.path for t in index.definitions("fresh")] == ["app/new.py"]
    assert index.generation > generation
    index.remove_file(path)
    assert index.definitions("fresh") == [] and index.get("app/new.py") is None
    # A file that vanished before its event arrives is simply dropped.
    assert index.update_file(workspace / "app" / "gone.py") is None
    # Non-source files are ignored.
    assert index.update_file(workspace / "README.md") is None
    # In-memory text (an open document) can be indexed too.
    entry = index.update_source(workspace / "app" / "util.py", b"def helper2(): pass\n")
    assert entry is not None and index.definitions("helper2") and not index.definitions("helper")


def test_progress_and_cancel(workspace: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    index = SymbolIndex(workspace, tmp_path / "cache", MAX)
    index.build(progress=lambda done, total, message: seen.append((done, total, message)))
    assert seen[0] == (0, 0, "Scanning workspace")
    assert seen[-1][:2] == (5, 5)

    calls = {"n": 0}

    def cancel_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    other = SymbolIndex(workspace, tmp_path / "cache2", MAX)
    stats = other.build(should_cancel=cancel_after_two)
    assert stats.cancelled
    assert stats.files_parsed < 5


def test_corrupt_cache_is_rebuilt(workspace: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    index = SymbolIndex(workspace, cache, MAX)
    db_path = index._cache.path
    index.close()
    db_path.write_bytes(b"this is not a sqlite database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    index = SymbolIndex(workspace, cache, MAX)
    assert index.build().files_parsed == 5
    index.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 5


def test_no_root_means_no_walk(tmp_path: Path) -> None:
    index = SymbolIndex(None, tmp_path / "cache", MAX)
    assert index.build().files_total == 0


def test_closed_cache_does_not_break_a_running_build(workspace: Path, tmp_path: Path) -> None:
    index = SymbolIndex(workspace, tmp_path / "cache", MAX)
    index.close()  # e.g. the server shut down while a background build was starting
    stats = index.build()
    assert stats.files_parsed == 5 and index.definitions("helper")
    index.close()
