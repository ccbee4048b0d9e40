"""Completion prompts that stay put while typing, on the real context engine."""

from __future__ import annotations

import itertools
from pathlib import Path

from swarm_lsp.config import ContextSettings
from swarm_lsp.context.completion_window import CompletionWindows
from swarm_lsp.context.documents import path_to_uri
from swarm_lsp.context.engine import ContextEngine

LONG = "".join(
    f"def step_{i}(value):\n    total = value * {i}\n    return total + {i}\n\n" for i in range(200)
)


def setup(sample_project: Path, tmp_path: Path) -> tuple[ContextEngine, CompletionWindows, str]:
    long_file = sample_project / "shapes" / "steps.py"
    long_file.write_text("from shapes.geometry import area\n\n" + LONG)
    engine = ContextEngine(sample_project, ContextSettings(), tmp_path / "cache")
    engine.index_workspace()
    uri = path_to_uri(long_file)
    engine.documents.open(uri, long_file.read_text(), "python")
    return engine, CompletionWindows(engine), uri


def type_text(engine: ContextEngine, uri: str, line: int, col: int, text: str) -> tuple[int, int]:
    for ch in text:
        engine.documents.apply_change(uri, line, col, line, col, ch)
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 1
    return line, col


def test_typing_only_appends_to_the_prompt(sample_project: Path, tmp_path: Path) -> None:
    engine, windows, uri = setup(sample_project, tmp_path)
    line = 2 + 4 * 150  # the start of step_150
    engine.documents.apply_change(uri, line, 0, line, 0, "\n")
    first = windows.context(uri, line, 0)
    assert first is not None and first.moved
    prompts = [first.preamble + first.prefix]
    moves = 0
    pos = (line, 0)
    for piece in ["result = step_3(area(2))", "\n", "print(result)", "\n", "return res"]:
        for ch in piece:
            pos = type_text(engine, uri, *pos, ch)
            ctx = windows.context(uri, *pos)
            assert ctx is not None
            moves += ctx.moved
            prompts.append(ctx.preamble + ctx.prefix)
    assert moves == 0  # 40 keystrokes, one window
    for before, after in itertools.pairwise(prompts):
        assert after.startswith(before)
    # The imports the window no longer shows are in the preamble.
    assert "from shapes.geometry import area" in first.preamble


def test_the_window_moves_in_large_steps(sample_project: Path, tmp_path: Path) -> None:
    engine, windows, uri = setup(sample_project, tmp_path)
    line = 2 + 4 * 100
    pos = (line, 0)
    anchors = []
    for i in range(60):  # about 1,500 characters of new code, a line at a time
        pos = type_text(engine, uri, *pos, f"    extra_{i} = step_{i}(value) + {i}\n")
        ctx = windows.context(uri, *pos)
        assert ctx is not None
        anchors.append(ctx.anchor_line)
    moves = sum(1 for a, b in itertools.pairwise(anchors) if a != b)
    assert 1 <= moves <= 6  # a new anchor per ~quarter budget of typing, not per line
    steps = [b - a for a, b in itertools.pairwise(anchors) if a != b]
    assert min(steps) >= 5


def test_stable_moments_refresh_the_preamble_but_keep_the_anchor(
    sample_project: Path, tmp_path: Path
) -> None:
    _engine, windows, uri = setup(sample_project, tmp_path)
    line = 2 + 4 * 120 + 2
    first = windows.context(uri, line, 4)
    assert first is not None
    again = windows.context(uri, line, 4)
    assert again is not None and not again.moved
    windows.mark_stale(uri)
    fresh = windows.context(uri, line, 4)
    assert fresh is not None and fresh.moved
    assert fresh.anchor_line == first.anchor_line
    assert fresh.preamble + fresh.prefix == first.preamble + first.prefix
    # The cursor jumps above the window: a new one.
    up = windows.context(uri, 10, 0)
    assert up is not None and up.moved and up.anchor_line <= 10
    windows.forget(uri)
    assert windows.context(uri, 10, 0) is not None


def test_names_for_a_partial_word_come_from_the_file_and_the_index(
    sample_project: Path, tmp_path: Path
) -> None:
    _engine, windows, uri = setup(sample_project, tmp_path)
    ctx = windows.context(uri, 5, 0)
    assert ctx is not None
    names = windows.names_for("step_1", ctx)
    assert "step_10" in names and "step_1" not in names
    # "Rectangle" is defined in shapes/geometry.py only: the index offers it.
    assert "Rectangle" in windows.names_for("Rect", ctx)
    assert windows.names_for("", ctx) == []
    assert windows.context("file:///nowhere/missing.py", 0, 0) is None
