"""Token healing, first-word candidates and typed-ahead reuse, on a small vocabulary.

The real model's behaviour is covered end to end in tests/server; these pin the rules.
"""

from __future__ import annotations

import numpy as np

from swarm_lsp.models import healing
from swarm_lsp.models.reuse import CompletionCache

PIECES = ["", "x", " =", " Ta", " Table", "ble", "b", "(", " Tab", "le", " T", "Tap", "\n", " Tx"]
VOCAB = healing.Vocabulary(PIECES)
TOK = {p: i for i, p in enumerate(PIECES)}


def test_vocabulary_lookups() -> None:
    assert sorted(VOCAB.starting_with(" Ta")) == sorted([TOK[" Ta"], TOK[" Table"], TOK[" Tab"]])
    assert sorted(VOCAB.prefixes_of(" Tab")) == sorted([TOK[" T"], TOK[" Ta"], TOK[" Tab"]])
    assert VOCAB.text_of([TOK["x"], TOK[" ="]]) == "x ="


def test_partial_word_is_trimmed_at_token_boundaries() -> None:
    tokens = [TOK["x"], TOK[" ="], TOK[" Ta"]]
    kept, dropped = healing.trim_partial_word(tokens, "x = Ta", VOCAB)
    assert kept == [TOK["x"], TOK[" ="]]
    assert dropped == " Ta"
    # Nothing to heal after a symbol or space.
    assert healing.trim_partial_word(tokens[:2], "x =", VOCAB) == (tokens[:2], "")
    # Tokens that do not spell the text: leave the prompt alone.
    assert healing.trim_partial_word([TOK["x"], TOK[" Tx"]], "x Ta", VOCAB)[1] == ""


def run(constraint: healing.FirstWordConstraint, prompt: list[int], steps: list[np.ndarray]) -> str:
    """Greedy decoding over scripted logits, through the processor."""
    ids = list(prompt)
    for logits in steps:
        out = constraint(np.array(ids), logits.astype(np.float32))
        ids.append(int(np.argmax(out)))
    return VOCAB.text_of(ids[len(prompt) :])


def logits(prefer: dict[str, float]) -> np.ndarray:
    row = np.zeros(len(PIECES), dtype=np.float32)
    for piece, value in prefer.items():
        row[TOK[piece]] = value
    return row


def test_healing_forces_the_trimmed_text_first() -> None:
    prompt = [TOK["x"], TOK[" ="]]
    # The model would rather start a new line, or write " Tx": neither continues " Ta".
    steps = [logits({"\n": 9, " Tx": 8, " Table": 3}), logits({"(": 5})]
    constraint = healing.FirstWordConstraint(VOCAB, len(prompt), heal=" Ta")
    assert run(constraint, prompt, steps) == " Table("
    assert constraint.done


def test_candidates_tip_the_first_word_toward_known_names() -> None:
    prompt = [TOK["x"], TOK[" ="]]
    steps = [logits({" Tab": 2.0, " Ta": 1.5}), logits({"le": 1.0, "b": 1.5}), logits({"(": 3})]
    plain = healing.FirstWordConstraint(VOCAB, len(prompt), heal=" Ta")
    assert run(plain, prompt, steps) == " Tabb("
    names = healing.candidate_texts(" Ta", ["Table", "Ta", "Other"])
    assert names == (" Table",)
    guided = healing.FirstWordConstraint(VOCAB, len(prompt), heal=" Ta", candidates=names)
    assert run(guided, prompt, steps) == " Table("


def test_typed_ahead_answers_from_the_shown_suggestion() -> None:
    cache = CompletionCache(size=4)
    prefix = "def area(r):\n    return "
    cache.put("a.py", prefix, "", "3.14 * r * r")
    hit = cache.lookup("a.py", prefix + "3.1", "")
    assert hit is not None and (hit.text, hit.kind, hit.typed) == ("4 * r * r", "typed-ahead", 3)
    # Back where the model answered: the same answer.
    again = cache.lookup("a.py", prefix, "")
    assert again is not None and again.kind == "cached" and again.text == "3.14 * r * r"
    # Typed something else, typed all of it, another line rest, another file: no answer.
    assert cache.lookup("a.py", prefix + "2", "") is None
    assert cache.lookup("a.py", prefix + "3.14 * r * r", "") is None
    assert cache.lookup("a.py", prefix + "3.1", ")") is None
    assert cache.lookup("b.py", prefix + "3.1", "") is None


def test_cache_is_bounded_and_forgets_a_document() -> None:
    cache = CompletionCache(size=2)
    for i in range(3):
        cache.put("a.py", f"x{i} = ", "", f"value{i}")
    assert cache.lookup("a.py", "x0 = ", "") is None
    assert cache.lookup("a.py", "x2 = ", "") is not None
    cache.forget("a.py")
    assert cache.lookup("a.py", "x2 = ", "") is None


def test_choose_picks_what_the_processor_would_without_the_whole_vocabulary() -> None:
    """The greedy loop's ``choose`` and the sampler chain's processor agree, step by step."""
    rng = np.random.default_rng(12)
    prompt = [TOK["x"], TOK[" ="]]
    names = healing.candidate_texts(" Ta", ["Table", "Tap"])
    for _ in range(200):
        steps = [rng.normal(0, 3, len(PIECES)).astype(np.float32) for _ in range(3)]
        by_processor = healing.FirstWordConstraint(VOCAB, len(prompt), heal=" Ta", candidates=names)
        by_choice = healing.FirstWordConstraint(VOCAB, len(prompt), heal=" Ta", candidates=names)
        ids: list[int] = list(prompt)
        generated: list[int] = []
        for row in steps:
            out = by_processor(np.array(ids), row.copy())
            if not np.isfinite(out).any():
                break  # nothing in this toy vocabulary continues the word ("a" after " T")
            expected = int(np.argmax(out))
            assert by_choice.choose(generated, row) == expected
            ids.append(expected)
            generated.append(expected)
