"""Token healing and first-word candidates, as a llama.cpp logits processor.

A prompt that ends inside a word (``Ta|``) ends on a token the model rarely saw there; it
answers ``Table(`` and the editor shows ``TaTable(``. Healing trims the tokens that hold the
partial word off the prompt (:func:`trim_partial_word`) and constrains the first generated
tokens to write that text again (:class:`FirstWordConstraint`), so the model picks the whole
word with the prompt it knows. The same processor gives a bonus to tokens that spell names
the caller knows (identifiers of the file, definitions in the workspace index): a tiny model
then picks a real name more often than an invented one.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_IDENT_EXTRA = "_$"


def is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in _IDENT_EXTRA


def partial_word(text: str) -> str:
    """The identifier characters at the end of ``text`` (``""`` after a space or symbol)."""
    end = len(text)
    start = end
    while start > 0 and is_ident_char(text[start - 1]):
        start -= 1
    return text[start:end]


class Vocabulary:
    """Each token's text, with lookups by prefix (built once per model, ~0.5 s for 262k)."""

    def __init__(self, pieces: Sequence[str]) -> None:
        self.pieces = list(pieces)
        self.size = len(self.pieces)
        self._by_text: dict[str, list[int]] = {}
        for token, piece in enumerate(self.pieces):
            if piece:
                self._by_text.setdefault(piece, []).append(token)
        order = sorted((i for i, p in enumerate(self.pieces) if p), key=self.pieces.__getitem__)
        self._sorted_text = [self.pieces[i] for i in order]
        self._sorted_ids = order

    def starting_with(self, text: str) -> list[int]:
        """Tokens whose text starts with ``text``."""
        lo = bisect.bisect_left(self._sorted_text, text)
        hi = bisect.bisect_left(self._sorted_text, text + "\U0010ffff", lo)
        return self._sorted_ids[lo:hi]

    def prefixes_of(self, text: str) -> list[int]:
        """Tokens whose text is a non-empty prefix of ``text``."""
        found: list[int] = []
        for end in range(1, len(text) + 1):
            found.extend(self._by_text.get(text[:end], ()))
        return found

    def text_of(self, tokens: Iterable[int]) -> str:
        pieces = self.pieces
        return "".join(pieces[t] if 0 <= t < self.size else "" for t in tokens)


def trim_partial_word(
    tokens: list[int], text: str, vocab: Vocabulary, *, min_keep: int = 1
) -> tuple[list[int], str]:
    """Drop the tokens that hold the partial word at the end of ``text``.

    Returns the kept tokens and the text they dropped (which ends with the word and may
    start with a space or symbol the last token carried). Nothing is dropped when ``text``
    does not end in a word or the tokens do not spell it.
    """
    word = partial_word(text)
    if not word:
        return tokens, ""
    dropped = ""
    cut = len(tokens)
    while cut > min_keep and len(dropped) < len(word):
        cut -= 1
        dropped = vocab.pieces[tokens[cut]] + dropped if tokens[cut] < vocab.size else dropped
    if not dropped.endswith(word) or not text.endswith(dropped):
        return tokens, ""
    return tokens[:cut], dropped


@dataclasses.dataclass
class FirstWordConstraint:
    """Logits processor: rewrite ``heal`` first, and favour tokens that spell ``candidates``.

    ``candidates`` are full texts the continuation may start with, each beginning with
    ``heal`` (``" Table"`` for ``heal == " Ta"``). The processor steps aside once the first
    word is written and no candidate is still being spelt.
    """

    vocab: Vocabulary
    prompt_tokens: int
    heal: str = ""
    candidates: tuple[str, ...] = ()
    bonus: float = 6.0
    done: bool = False
    _allowed_cache: dict[str, np.ndarray[Any, Any]] = dataclasses.field(
        default_factory=dict, repr=False
    )

    def _targets(self, generated: str) -> tuple[str, list[str]]:
        """What is still to be written: the rest of ``heal``, and the names still being spelt."""
        need = self.heal[len(generated) :] if len(generated) < len(self.heal) else ""
        rest = generated[len(self.heal) :]
        # Candidates spell a name until the model has written one: then it may end the name
        # where it likes ("screen(" rather than the longer known "screen_size").
        spelling = [
            c for c in self.candidates if len(c) > len(generated) and c.startswith(generated)
        ]
        if generated in self.candidates or any(not is_ident_char(ch) for ch in rest):
            spelling = []
        return need, spelling

    def _allowed(self, need: str) -> np.ndarray[Any, Any]:
        """Tokens that continue ``need``: they start with it, or are a prefix of it."""
        ids = self._allowed_cache.get(need)
        if ids is None:
            found = set(self.vocab.starting_with(need) + self.vocab.prefixes_of(need))
            ids = np.array(sorted(found), dtype=np.intp)
            self._allowed_cache[need] = ids
        return ids

    def _boosted(self, generated: str, spelling: list[str]) -> set[int]:
        boost: set[int] = set()
        for candidate in spelling:
            remainder = candidate[len(generated) :]
            boost.update(self.vocab.prefixes_of(remainder))
            for token in self.vocab.starting_with(remainder):
                # A token that finishes the name and goes on past it ("Table(").
                if not is_ident_char(self.vocab.pieces[token][len(remainder) :][:1] or "_"):
                    boost.add(token)
        return boost

    def choose(self, generated: Sequence[int], logits: Any) -> int:
        """The greedy pick among what the constraint allows, given the tokens generated so far.

        The same choice as ``argmax`` of :meth:`__call__`'s output, without touching the
        whole vocabulary: only the allowed and favoured tokens are looked at.
        """
        if self.done:
            return int(np.argmax(logits))
        need, spelling = self._targets(self.vocab.text_of(generated))
        if not need and not spelling:
            self.done = True
            return int(np.argmax(logits))
        size = logits.shape[0]
        boost = self._boosted(self.vocab.text_of(generated), spelling) if spelling else set()
        if need:
            index = self._allowed(need)
            index = index[index < size]
            if index.size == 0:
                return int(np.argmax(logits))
        else:
            best = int(np.argmax(logits))  # the best unconstrained token competes too
            index = np.array(sorted({best, *(i for i in boost if i < size)}), dtype=np.intp)
        scores = logits[index].astype(np.float64)
        if boost:
            favoured = np.array(sorted(boost), dtype=np.intp)
            scores[np.isin(index, favoured)] += self.bonus
        return int(index[int(np.argmax(scores))])

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.done:
            return scores
        generated = self.vocab.text_of(int(t) for t in input_ids[self.prompt_tokens :])
        need, spelling = self._targets(generated)
        if not need and not spelling:
            self.done = True
            return scores
        out = np.asarray(scores)
        allowed: np.ndarray[Any, Any] | None = None
        if need:
            ids = self._allowed(need)
            allowed = np.zeros(out.shape[0], dtype=bool)
            allowed[ids[ids < out.shape[0]]] = True
            out = np.where(allowed, out, -np.inf).astype(out.dtype)
        if spelling:
            boost = self._boosted(generated, spelling)
            chosen = [t for t in boost if t < out.shape[0] and (allowed is None or allowed[t])]
            if chosen:
                out = np.array(out, copy=True)
                out[chosen] += self.bonus
        return out


def candidate_texts(heal: str, names: Iterable[str], limit: int = 48) -> tuple[str, ...]:
    """The texts a healed continuation may start with: ``heal``'s lead-in plus each name."""
    word = partial_word(heal)
    if not word:
        return ()
    lead = heal[: len(heal) - len(word)]
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        if name != word and name.startswith(word) and name not in seen:
            seen.add(name)
            out.append(lead + name)
            if len(out) >= limit:
                break
    return tuple(out)
