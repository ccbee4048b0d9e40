"""When a streamed research answer is done (``StopWhenDone``): loops and runaway words end it
early, legitimate answers (code with repeated lines, lists, ``file:line`` citations) stay whole.

Plain text fed in token-sized pieces; the real model's answers are checked in
``tests/workers/test_research_answer.py``.
"""

from __future__ import annotations

import re

from swarm_lsp.workers.research.stopping import StopWhenDone

_PIECE = re.compile(r"\s*[A-Za-z]{1,5}|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+")


def stream(text: str) -> tuple[StopWhenDone, int | None]:
    """Feed ``text`` as a model streams it (pieces of a few characters); return the guard and
    how many characters had been fed when it said stop (None: never)."""
    guard = StopWhenDone()
    fed = 0
    for piece in _PIECE.findall(text):
        fed += len(piece)
        if guard.feed(piece):
            return guard, fed
    assert fed == len(text)  # the pieces cover the text
    return guard, None


def test_a_loop_of_sentences_ends_where_the_repeat_began() -> None:
    # A loop, as the 135M model produced it: stopped at the sentence that repeats.
    loop = (
        "The scale function is defined in tests/test_geometry.py. It is defined in "
        "tests/test_geometry.py, which is a module that contains tests. The function is "
        "defined in tests/test_geometry.py, which is a module that contains tests. The"
    )
    guard, stopped = stream(loop)
    assert stopped is not None
    assert guard.text.endswith("which is a module that contains tests.")
    assert guard.text.count("module that contains") == 1
    # A new turn ends the answer where it starts.
    turn = StopWhenDone()
    assert not turn.feed("The area is pi r^2 [1].")
    assert turn.feed("\n\nQuestion: and the") and turn.text == "The area is pi r^2 [1]."


def test_a_loop_inside_one_hyphenated_word_stops_early() -> None:
    intro = "The area is computed by area_of_circle [1]. "
    chain = "It uses circle-area-" + "circle-area-radius-" * 40
    guard, stopped = stream(intro + chain)
    assert stopped is not None and stopped - len(intro) < 120  # not the 768-token cap
    assert guard.text == intro.strip()
    # A loop that grows: every round adds a part to the one before.
    names = ("foo", "bar", "baz", "qux", "quux")
    rounds = ["-".join(names[:n]) for n in range(2, len(names) + 1)]  # foo-bar-foo-bar-baz-…
    growing = "-".join(rounds * 8)
    guard, stopped = stream(intro + "Names: " + growing)
    assert stopped is not None and stopped - len(intro) < 100
    assert guard.text == intro.strip()


def test_a_word_list_that_grows_by_one_hyphenated_part_stops() -> None:
    intro = "The decoder reads the header [2]. "
    words = ["scan", "read", "parse", "token", "value", "object", "array", "string"]
    words += ["number", "literal", "end"]
    items = ["-".join(words[: n + 1]) for n in range(len(words))]
    guard, stopped = stream(intro + "See " + ", ".join(items * 3))
    assert stopped is not None
    assert stopped < len(intro) + len(", ".join(items))  # before the list came round again
    assert guard.text == intro.strip()


def test_one_word_that_never_ends_stops() -> None:
    intro = "It parses the date [1]. "
    new_parts = "-".join(f"part{n}" for n in range(40))  # no part ever repeats
    guard, stopped = stream(intro + "The format is " + new_parts)
    assert stopped is not None and guard.reason == "runaway word"
    assert guard.text == intro.strip()
    no_space = intro + "It returns " + "".join(f"x{n}y" for n in range(200))
    guard, stopped = stream(no_space)
    assert stopped is not None and stopped < len(intro) + 200
    assert guard.text == intro.strip()


def test_the_degenerate_answers_smollm2_wrote_stop_early() -> None:
    # Heads of real answers (bench/research_stops.py, SmolLM2 with no guard): each ran to the
    # 768-token bound; the old guard (8 words said again) let every one run.
    said = "The importorskip plugin is not a plugin for pytester, but rather a plugin for the "
    guard, stopped = stream(said + "pytest-" * 300)
    assert stopped is not None and stopped < len(said) + 100
    assert guard.text == said.strip()  # the whole answer was one sentence: cut at its word
    said = "The documentation for the "
    guard, stopped = stream(said + "pytest_warnings_report" + "_report" * 300)
    assert stopped is not None and stopped < len(said) + 120 and guard.text == said.strip()
    said = "class MIMEMultipart(MIMEBase):\n    mime_types = {\n        "
    guard, stopped = stream(said + '"multipart/blob' + "blob" * 300)
    assert stopped is not None and stopped < len(said) + 80
    guard, stopped = stream("1. 1. 1. " + " ".join(f"{n}." for n in range(2, 300)))
    assert stopped is not None and stopped < 80 and guard.reason == "counting"


def test_a_loop_of_code_lines_stops_inside_a_code_block() -> None:
    answer = "Call it like this [1]:\n\n```python\n" + "x = area_of_circle(2.0)\n" * 60
    guard, stopped = stream(answer)
    assert stopped is not None and stopped < len(answer) // 3
    assert "area_of_circle" in guard.text


def assert_whole(text: str) -> None:
    guard, stopped = stream(text)
    assert stopped is None, f"cut at {stopped} ({guard.reason}): {text[:stopped][-80:]!r}"
    assert guard.text == text


def test_code_blocks_with_repeated_lines_stay_whole() -> None:
    assert_whole(
        "The tests build each shape the same way [1]:\n\n```python\n"
        "@pytest.mark.slow\n"
        "def test_circle(sample_project: Path) -> None:\n"
        "    role = research_role.create(Settings())\n"
        "    assert role.run(task) is not None\n\n"
        "@pytest.mark.slow\n"
        "def test_square(sample_project: Path) -> None:\n"
        "    role = research_role.create(Settings())\n"
        "    assert role.run(task) is not None\n\n"
        "@pytest.mark.slow\n"
        "def test_rectangle(sample_project: Path) -> None:\n"
        "    role = research_role.create(Settings())\n"
        "    assert role.run(task) is not None\n"
        "```\n\n"
        "Each one creates the role with `research_role.create(Settings())` and checks that "
        "`role.run(task) is not None` [1]."
    )
    assert_whole(
        "```python\nclass Shape:\n    def area(self):\n        pass\n\n"
        "    def perimeter(self):\n        pass\n\n    def scale(self):\n        pass\n"
        "x = 1\nx = 1\nx = 1\nx = 1\n```\n"
    )


def test_lists_and_file_line_citations_stay_whole() -> None:
    assert_whole(
        "The area functions are:\n"
        "- `area_of_circle` [shapes/geometry.py:7]\n"
        "- `area_of_square` [shapes/geometry.py:12]\n"
        "- `area_of_rectangle` [shapes/geometry.py:17]\n"
        "- `test_area_of_circle` [tests/test_geometry.py:10]\n"
        "- `test_area_of_square` [tests/test_geometry.py:15]\n"
        "- `test_area_of_rectangle` [tests/test_geometry.py:20]\n"
    )
    deep = "src/main/java/com/example/project/service/impl/UserServiceImpl.java"
    assert_whole(
        f"The user is saved in {deep}:40 [1], loaded in {deep}:88 [2] and deleted in "
        f"{deep}:120 [3]; the cache is cleared in {deep}:131 [3]."
    )
    assert_whole(
        "It is a built-in, state-of-the-art, non-ASCII-safe encoder (RFC 2047 "
        "encoded-words) [email/header.py:154-210].\n\n"
        "| name | kind |\n|---|---|\n| Header | class |\n| decode_header | function |\n"
    )
    assert_whole(
        "The limits are 1, 2, 4, 8, 16, 32 and 64 bytes [1]; `_MAX_LINE_LENGTH = 78` and "
        "`test_a_very_long_snake_case_name_of_nine_parts` [tests/test_email_header_folding.py:12]."
    )
    text = "Rectangle.perimeter returns 2 * (width + height) [2]; area multiplies them [2]."
    assert_whole(text)
