"""Sparse BM25-style vectors of identifiers and words.

A document's vector holds, for each term, the BM25 term-frequency part
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; Qdrant's ``IDF`` modifier on the
sparse vector supplies the inverse document frequency at query time, so together they score
BM25. Terms are words and identifiers, lower-cased, with ``snake_case`` and ``camelCase``
identifiers also split into their parts (``area_of_circle`` gives ``area_of_circle``, ``area``
and ``circle``). A term's index is a stable 31-bit hash, so no vocabulary is stored.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections import Counter

K1 = 1.2
B = 0.75
AVERAGE_LENGTH = 120.0

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "does",
        "do",
        "did",
        "self",
        "def",
        "return",
        "none",
        "true",
        "false",
        "import",
        "class",
    }
)


def terms(text: str) -> list[str]:
    """Every term of ``text`` in order (repeats kept)."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(_word_terms(word))
    return out


@functools.lru_cache(maxsize=1 << 16)
def _word_terms(word: str) -> tuple[str, ...]:
    """One word's terms (code repeats its words: cached, the sparse side is 2x faster)."""
    lower = word.lower()
    parts = [p.lower() for piece in word.split("_") for p in _CAMEL.findall(piece)]
    out = [lower] if len(lower) > 1 and lower not in STOPWORDS else []
    if len(parts) > 1:
        out.extend(p for p in parts if len(p) > 1 and p not in STOPWORDS and p != lower)
    return tuple(out)


@functools.lru_cache(maxsize=1 << 16)
def term_index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def _merge(weights: dict[int, float]) -> tuple[list[int], list[float]]:
    indices = sorted(weights)
    return indices, [weights[i] for i in indices]


def document_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a document's BM25 term-frequency weights."""
    counts = Counter(terms(text))
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / AVERAGE_LENGTH)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _merge(weights)


def query_vector(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a query: each distinct term once, weight 1."""
    weights: dict[int, float] = {}
    for term in set(terms(text)):
        weights[term_index(term)] = 1.0
    return _merge(weights)
