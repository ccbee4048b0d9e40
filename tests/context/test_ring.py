"""The extra-context ring: what it keeps, and that a prompt takes it in at stable moments only."""

from __future__ import annotations

import itertools
from pathlib import Path

from swarm_lsp.config import ContextSettings
from swarm_lsp.context.completion_window import CompletionWindows
from swarm_lsp.context.documents import path_to_uri
from swarm_lsp.context.engine import ContextEngine
from swarm_lsp.context.packing import estimate_tokens
from swarm_lsp.context.ring import ContextRing, similarity, words_of

LONG = "".join(
    f"def step_{i}(value):\n    total = value * {i}\n    return total + {i}\n\n" for i in range(200)
)


def module(name: str, n: int = 40) -> str:
    """A file of ``n`` distinct functions whose words differ from every other module's."""
    return "".join(
        f"def {name}_{i}(arg_{name}):\n    return arg_{name} * {i} + {name}_const\n\n"
        for i in range(n)
    )


def test_a_chunk_is_the_lines_around_the_cursor_and_joins_at_update() -> None:
    ring = ContextRing(chunk_lines=8)
    text = module("alpha")
    assert ring.pick("alpha.py", text, 20, "python")
    assert not ring.chunks and len(ring.queued) == 1  # queued, not in the prompt yet
    assert ring.update() and ring.version == 1
    (chunk,) = ring.chunks
    assert chunk.line == 16 and chunk.text.count("\n") <= 8
    assert "alpha_5" in chunk.text or "alpha_6" in chunk.text
    assert ring.render().startswith("# alpha.py:17\n")
    assert not ring.update() and ring.version == 1  # nothing new: same version


def test_identical_chunks_are_kept_once_and_similar_ones_evicted() -> None:
    ring = ContextRing(chunk_lines=12)
    text = module("beta")
    assert ring.pick("beta.py", text, 20)
    assert not ring.pick("beta.py", text, 20)  # the same lines again
    ring.update()
    # The same place after a small edit: most words shared, so the old chunk goes.
    edited = text.replace("beta_6(", "beta_six(")
    assert ring.pick("beta.py", edited, 20)
    ring.update()
    assert len(ring.chunks) == 1 and "beta_six" in ring.chunks[0].text
    assert ring.evicted == 1
    # Another file's code is not similar: both stay.
    assert ring.pick("gamma.py", module("gamma"), 20)
    ring.update()
    assert [c.path for c in ring.chunks] == ["beta.py", "gamma.py"]


def test_the_ring_is_bounded_in_chunks_and_tokens() -> None:
    ring = ContextRing(max_chunks=3, chunk_lines=9, max_tokens=10_000)
    for name in ("a1", "b2", "c3", "d4", "e5"):
        ring.pick(f"{name}.py", module(name), 10)
        ring.update()
    assert [c.path for c in ring.chunks] == ["c3.py", "d4.py", "e5.py"]  # oldest out first
    small = ContextRing(max_chunks=8, chunk_lines=30, max_tokens=300, count=estimate_tokens)
    for name in ("f6", "g7", "h8", "i9"):
        small.pick(f"{name}.py", module(name), 15)
        small.update()
        assert small.tokens <= 300
        assert all(c.tokens <= 300 for c in small.chunks)
    assert small.chunks[-1].path == "i9.py"
    off = ContextRing(max_chunks=0)
    assert not off.pick("x.py", module("x"), 5) and off.render() == ""


def test_chunks_that_repeat_the_cursors_text_are_left_out() -> None:
    ring = ContextRing(chunk_lines=10)
    here, other = module("here"), module("other")
    ring.pick("here.py", here, 30)
    ring.pick("other.py", other, 30)
    ring.update()
    near = "\n".join(here.split("\n")[24:36])
    shown = ring.render(near)
    assert "other.py" in shown and "here.py" not in shown
    assert similarity(words_of(near), words_of(ring.chunks[0].text)) > 0.5
    assert similarity(words_of(near), words_of(ring.chunks[1].text)) < 0.5


# -- the ring in a completion prompt ---------------------------------------------------------
def setup(sample_project: Path, tmp_path: Path) -> tuple[ContextEngine, CompletionWindows, str]:
    long_file = sample_project / "shapes" / "steps.py"
    long_file.write_text("from shapes.geometry import area\n\n" + LONG)
    engine = ContextEngine(sample_project, ContextSettings(), tmp_path / "cache")
    engine.index_workspace()
    uri = path_to_uri(long_file)
    engine.documents.open(uri, long_file.read_text(), "python")
    return engine, CompletionWindows(engine, ContextRing(chunk_lines=12)), uri


def type_text(engine: ContextEngine, uri: str, line: int, col: int, text: str) -> tuple[int, int]:
    for ch in text:
        engine.documents.apply_change(uri, line, col, line, col, ch)
        if ch == "\n":
            line, col = line + 1, 0
        else:
            col += 1
    return line, col


def test_the_prompt_takes_the_ring_at_stable_moments_never_on_a_keystroke(
    sample_project: Path, tmp_path: Path
) -> None:
    engine, windows, uri = setup(sample_project, tmp_path)
    ring = windows.ring
    assert ring is not None
    ring.pick("left/before.py", module("before"), 10)  # the file the user came from
    ring.update()
    line = 2 + 4 * 150
    engine.documents.apply_change(uri, line, 0, line, 0, "\n")
    first = windows.context(uri, line, 0)
    assert first is not None and "left/before.py" in first.extra  # a new window takes it
    head = first.head
    seen = [(first.anchor_line, first.head + first.prefix)]
    pos = (line, 0)
    for n, ch in enumerate("result = step_3(area(2))\nprint(result)\n" + "x = 1\n" * 200):
        if n in (5, 300):  # meanwhile the user saved or left other files: the ring changes
            ring.pick(f"other/file_{n}.py", module(f"f{n}"), 10)
            assert ring.update()
        pos = type_text(engine, uri, *pos, ch)
        ctx = windows.context(uri, *pos)
        assert ctx is not None
        assert ctx.head == head and ctx.ring_version == first.ring_version
        seen.append((ctx.anchor_line, ctx.head + ctx.prefix))
    # The prefix outgrew its window (a new anchor) but the extra context stayed; under one
    # anchor typing only appends: the prompt so far stays byte-identical.
    assert len({anchor for anchor, _ in seen}) > 1
    for (anchor_a, a), (anchor_b, b) in itertools.pairwise(seen):
        assert b.startswith(a) or anchor_a != anchor_b
    # A stable moment (save, typing paused): now the ring's new chunks come in.
    windows.mark_stale(uri)
    fresh = windows.context(uri, *pos)
    assert fresh is not None and fresh.moved
    assert fresh.ring_version == ring.version
    assert "other/file_5.py" in fresh.extra and "other/file_300.py" in fresh.extra
    assert fresh.head != head
