"""Fitting text to a token budget.

Token counts come from the model's own tokenizer when the caller passes ``count_tokens``
(llama.cpp's ``tokenize``); otherwise :func:`estimate_tokens` guesses from the length. Every
fit is a binary search over how many ranked items (or lines) to keep, so a real tokenizer is
called O(log n) times, never once per item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

TokenCounter = Callable[[str], int]

#: Average characters per token of code for the small models we ship (measured roughly;
#: it only needs to be a fair estimate, a real tokenizer replaces it when one is loaded).
CHARS_PER_TOKEN = 3.5
_NEWLINE = re.compile("\n")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ``ceil(len / 3.5)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def counter_or_estimate(count_tokens: TokenCounter | None) -> TokenCounter:
    """``count_tokens`` itself, or the estimate; a failing counter falls back to the estimate."""
    if count_tokens is None:
        return estimate_tokens

    def safe(text: str) -> int:
        if not text:
            return 0
        try:
            return int(count_tokens(text))
        except Exception:  # a tokenizer error must not break context building
            return estimate_tokens(text)

    return safe


def fit_count(
    total: int, render: Callable[[int], str], budget: int, count: TokenCounter
) -> tuple[int, str]:
    """The largest ``k`` in ``0..total`` with ``count(render(k)) <= budget``, and its text.

    ``render(k)`` must grow with ``k`` (more items never means fewer tokens).
    """
    empty = render(0)
    if count(empty) > budget:
        return 0, ""
    if total <= 0:
        return 0, empty
    full = render(total)
    if count(full) <= budget:
        return total, full
    lo, hi, best = 0, total - 1, empty  # the answer is in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        text = render(mid)
        if count(text) <= budget:
            lo, best = mid, text
        else:
            hi = mid - 1
    return lo, best


def keep_tail(text: str, budget: int, count: TokenCounter) -> str:
    """The longest suffix of ``text`` that starts at a line start and fits ``budget``.

    When not even the last line fits, the last line is cut by characters instead.
    """
    if count(text) <= budget:
        return text
    if budget <= 0:
        return ""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text) if m.end() < len(text)]
    # keep the last k lines: text[starts[-k]:]
    k, kept = fit_count(len(starts), lambda k: text[starts[-k] :] if k else "", budget, count)
    if k > 0:
        return kept
    last = text[starts[-1] :]
    _, cut = fit_count(len(last), lambda n: last[len(last) - n :] if n else "", budget, count)
    return cut


def keep_head(text: str, budget: int, count: TokenCounter) -> str:
    """The longest prefix of ``text`` that ends at a line end and fits ``budget``."""
    if count(text) <= budget:
        return text
    if budget <= 0:
        return ""
    ends = [m.end() for m in _NEWLINE.finditer(text)]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    k, kept = fit_count(len(ends), lambda k: text[: ends[k - 1]] if k else "", budget, count)
    if k > 0:
        return kept
    first = text[: ends[0]]
    _, cut = fit_count(len(first), lambda n: first[:n], budget, count)
    return cut


@dataclass(frozen=True)
class Section:
    """One named part of a packed context."""

    name: str
    text: str
    tokens: int


@dataclass
class PackedContext:
    """Context text for a model, built from sections in order (stable material first)."""

    sections: list[Section] = field(default_factory=list)
    budget: int = 0

    @property
    def text(self) -> str:
        return "".join(section.text for section in self.sections if section.text)

    @property
    def tokens(self) -> int:
        return sum(section.tokens for section in self.sections)

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def add(self, name: str, text: str, count: TokenCounter) -> Section:
        section = Section(name, text, count(text) if text else 0)
        self.sections.append(section)
        return section


def join_items(items: Sequence[str], sep: str = "\n") -> str:
    return sep.join(items)
