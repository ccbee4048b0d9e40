"""Token budgets: binary-search fitting, line-aligned trimming, tokenizer fallback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from swarm_lsp.context.packing import (
    PackedContext,
    counter_or_estimate,
    estimate_tokens,
    fit_count,
    keep_head,
    keep_tail,
)


def words(text: str) -> int:
    return len(text.split())


def test_estimate() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("a" * 35) == 10


@given(
    sizes=st.lists(st.integers(0, 20), max_size=60),
    budget=st.integers(0, 300),
)
def test_fit_count_is_the_largest_prefix_that_fits(sizes: list[int], budget: int) -> None:
    items = ["w " * n for n in sizes]
    calls: list[int] = []

    def render(k: int) -> str:
        calls.append(k)
        return "".join(items[:k])

    k, text = fit_count(len(items), render, budget, words)
    assert text == "".join(items[:k])
    assert words(text) <= budget
    if k < len(items):
        assert words("".join(items[: k + 1])) > budget
    assert len(calls) <= 3 + max(1, len(items)).bit_length() + 1  # a binary search


def test_fit_count_when_even_nothing_fits() -> None:
    assert fit_count(3, lambda k: "header " + "x " * k, 0, words) == (0, "")


def test_keep_tail_keeps_whole_lines_from_the_end() -> None:
    text = "one two\nthree four\nfive six\nseven"
    assert keep_tail(text, 100, words) == text
    assert keep_tail(text, 3, words) == "five six\nseven"
    assert keep_tail(text, 1, words) == "seven"
    assert keep_tail("a b c d e f", 2, estimate_tokens).endswith("f")
    assert keep_tail(text, 0, words) == ""


def test_keep_head_keeps_whole_lines_from_the_start() -> None:
    text = "one two\nthree four\nfive six\n"
    assert keep_head(text, 100, words) == text
    assert keep_head(text, 4, words) == "one two\nthree four\n"
    assert keep_head(text, 1, estimate_tokens) == "one"
    assert keep_head(text, 0, words) == ""


def test_failing_tokenizer_falls_back_to_the_estimate() -> None:
    def broken(text: str) -> int:
        raise RuntimeError("tokenizer gone")

    count = counter_or_estimate(broken)
    assert count("a" * 35) == 10
    assert counter_or_estimate(None) is estimate_tokens
    assert counter_or_estimate(words)("a b c") == 3


def test_packed_context_sections() -> None:
    packed = PackedContext(budget=100)
    packed.add("one", "a b\n", words)
    packed.add("two", "c\n", words)
    assert packed.text == "a b\nc\n"
    assert packed.tokens == 3
    section = packed.section("two")
    assert section is not None and section.tokens == 1
    assert packed.section("missing") is None
