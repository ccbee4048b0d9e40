"""Rebasing a worker's edits over the user's later changes (plain functions, no server)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_lsp.server.staleness import rebase_edits, settle_document_edit
from swarm_lsp.workers.diffs import apply_text_edits, text_edits

BASE = "".join(f"line {n}\n" for n in range(20))


def _replace_line(text: str, index: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[index] = new
    return "".join(lines)


def _insert_lines(text: str, index: int, new: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:index] + new + lines[index:])


def test_unchanged_document_keeps_the_edits() -> None:
    edits = text_edits(BASE, _replace_line(BASE, 10, "ten\n"))
    assert rebase_edits(BASE, BASE, edits) == edits


def test_lines_added_above_move_the_edit_down() -> None:
    wanted = _replace_line(BASE, 10, "ten\n")
    edits = text_edits(BASE, wanted)
    current = _insert_lines(BASE, 2, ["new a\n", "new b\n"])
    moved = rebase_edits(BASE, current, edits)
    assert moved is not None
    result = apply_text_edits(current, moved)
    assert result == _insert_lines(wanted, 2, ["new a\n", "new b\n"])


def test_lines_removed_above_move_the_edit_up() -> None:
    wanted = _replace_line(BASE, 15, "fifteen\n")
    edits = text_edits(BASE, wanted)
    lines = BASE.splitlines(keepends=True)
    current = "".join(lines[:3] + lines[6:])
    moved = rebase_edits(BASE, current, edits)
    assert moved is not None
    assert apply_text_edits(current, moved) == "".join(
        wanted.splitlines(keepends=True)[:3] + wanted.splitlines(keepends=True)[6:]
    )


def test_changes_below_do_not_move_the_edit() -> None:
    edits = text_edits(BASE, _replace_line(BASE, 3, "three\n"))
    current = _replace_line(BASE, 18, "user edit\n")
    moved = rebase_edits(BASE, current, edits)
    assert moved == edits
    assert "three\n" in apply_text_edits(current, moved) and "user edit\n" in current


def test_edit_on_a_line_the_user_changed_is_stale() -> None:
    edits = text_edits(BASE, _replace_line(BASE, 10, "ten\n"))
    current = _replace_line(BASE, 10, "the user got here first\n")
    assert rebase_edits(BASE, current, edits) is None


def test_edit_spanning_a_changed_line_is_stale() -> None:
    wanted = _replace_line(_replace_line(BASE, 9, "nine\n"), 11, "eleven\n")
    edits = [
        {
            "range": {"start": {"line": 9, "character": 0}, "end": {"line": 12, "character": 0}},
            "newText": "nine\nline 10\neleven\n",
        }
    ]
    assert apply_text_edits(BASE, edits) == wanted
    current = _replace_line(BASE, 10, "changed\n")
    assert rebase_edits(BASE, current, edits) is None


def test_insertion_needs_both_neighbours_unchanged() -> None:
    wanted = _insert_lines(BASE, 5, ["inserted\n"])
    edits = text_edits(BASE, wanted)
    assert edits[0]["range"]["start"] == edits[0]["range"]["end"]
    # The line above the insertion point changed: stale.
    assert rebase_edits(BASE, _replace_line(BASE, 4, "x\n"), edits) is None
    # The line below changed: stale too.
    assert rebase_edits(BASE, _replace_line(BASE, 5, "x\n"), edits) is None
    # Far away: moves.
    current = _insert_lines(BASE, 0, ["header\n"])
    moved = rebase_edits(BASE, current, edits)
    assert moved is not None
    assert apply_text_edits(current, moved) == _insert_lines(wanted, 0, ["header\n"])


def test_insertion_at_the_start_and_end_of_the_text() -> None:
    at_start = text_edits(BASE, "first\n" + BASE)
    at_end = text_edits(BASE, BASE + "last\n")
    current = _replace_line(BASE, 10, "middle changed\n")
    for edits, expected in (
        (at_start, "first\n" + current),
        (at_end, current + "last\n"),
    ):
        moved = rebase_edits(BASE, current, edits)
        assert moved is not None
        assert apply_text_edits(current, moved) == expected
    # Something added at the very end: an insertion at the end is no longer at the end.
    assert rebase_edits(BASE, BASE + "user tail\n", at_end) is None
    assert rebase_edits(BASE, "user head\n" + BASE, at_start) is None


def test_edit_at_the_end_without_a_final_newline() -> None:
    base = "a\nb\nc"
    edits = text_edits(base, "a\nb\nC")
    current = "zero\na\nb\nc"
    moved = rebase_edits(base, current, edits)
    assert moved is not None
    assert apply_text_edits(current, moved) == "zero\na\nb\nC"
    assert rebase_edits(base, "a\nb\nc!", edits) is None


def test_character_ranges_inside_an_unchanged_line_are_kept() -> None:
    edits = [
        {
            "range": {"start": {"line": 4, "character": 5}, "end": {"line": 4, "character": 6}},
            "newText": "FOUR",
        }
    ]
    current = _insert_lines(BASE, 0, ["# header\n"])
    moved = rebase_edits(BASE, current, edits)
    assert moved is not None
    assert apply_text_edits(current, moved).splitlines()[5] == "line FOUR"


def test_empty_documents() -> None:
    edits = text_edits("", "hello\n")
    assert rebase_edits("", "", edits) == edits
    assert rebase_edits("", "user\n", edits) is None


def test_settle_reports_current_rebased_and_stale() -> None:
    edits = text_edits(BASE, _replace_line(BASE, 10, "ten\n"))
    same = settle_document_edit("u", 3, BASE, 3, BASE, edits)
    assert same.state == "current" and same.edits == edits and same.version == 3
    moved = settle_document_edit("u", 3, BASE, 5, "top\n" + BASE, edits)
    assert moved.state == "rebased" and moved.version == 5
    stale = settle_document_edit("u", 3, BASE, 4, _replace_line(BASE, 10, "mine\n"), edits)
    assert stale.state == "stale" and stale.edits is None


def test_crlf_lines_rebase() -> None:
    base = "a\r\nb\r\nc\r\n"
    edits = text_edits(base, "a\r\nB\r\nc\r\n")
    current = "top\r\n" + base
    moved = rebase_edits(base, current, edits)
    assert moved is not None
    assert apply_text_edits(current, moved) == "top\r\na\r\nB\r\nc\r\n"


lines_st = st.lists(
    st.sampled_from(["a\n", "b\n", "c\n", "def f():\n", "    pass\n", "\n"]), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(base=lines_st, wanted=lines_st, user=lines_st)
def test_a_rebased_edit_never_touches_what_the_user_changed(
    base: list[str], wanted: list[str], user: list[str]
) -> None:
    """Property: when a rebase succeeds, applying it keeps every line the user's change put
    in, and the worker's new lines all appear (no edit lands on the user's text)."""
    base_text, wanted_text, user_text = "".join(base), "".join(wanted), "".join(user)
    edits = text_edits(base_text, wanted_text)
    moved = rebase_edits(base_text, user_text, edits)
    if moved is None:
        return
    result = apply_text_edits(user_text, moved)
    if base_text == user_text:
        assert result == wanted_text
        return
    # Each rebased edit replaced lines that were identical in base and current text: the
    # lines it removed from the current text are exactly those it removed from the base.
    for original, rebased in zip(edits, moved, strict=True):
        base_removed = _slice(base_text, original)
        current_removed = _slice(user_text, rebased)
        assert base_removed == current_removed


def _slice(text: str, edit: dict[str, object]) -> str:
    lines = text.splitlines(keepends=True)
    rng = edit["range"]
    assert isinstance(rng, dict)

    def offset(pos: dict[str, int]) -> int:
        before = sum(len(x) for x in lines[: pos["line"]])
        if pos["line"] >= len(lines):
            return before
        return before + pos["character"]

    return text[offset(rng["start"]) : offset(rng["end"])]
