"""The real completion model: token healing, warming, and per-document KV states."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_lsp import threads
from swarm_lsp.models import defaults, greedy, vocabulary
from swarm_lsp.models.kv_states import KvStates
from swarm_lsp.models.llama_engine import LlamaEngine

PROMPT = (
    "from rich.table import Table\nfrom rich.console import Console\n\n"
    "console = Console()\ntable = Ta"
)
OTHER = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n" for i in range(12))


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    engine = LlamaEngine(defaults.completion_model_path(), role=threads.INTERACTIVE)
    engine.load()
    yield engine
    engine.close()


def test_healing_never_repeats_the_partial_word(engine: LlamaEngine) -> None:
    plain = engine.complete(PROMPT, max_tokens=6)
    assert plain.text.startswith("Table")  # the bug: the editor would show "TaTable"
    healed = engine.complete(PROMPT, max_tokens=6, heal=True)
    assert healed.healed == " Ta"
    assert healed.text.startswith("ble")
    # A candidate the model finds unlikely is a nudge, not an order; the text still
    # continues the typed "Ta" (steering itself is pinned in test_healing_reuse).
    nudged = engine.complete(PROMPT, max_tokens=6, heal=True, names=["Tally", "Table"])
    assert nudged.text.startswith(("ble", "lly"))
    # Typing more of the word keeps the same prompt: nearly everything is reused.
    more = engine.complete(PROMPT + "b", max_tokens=6, heal=True)
    assert more.healed == " Tab" and more.text.startswith("le")
    assert more.reused_tokens >= more.prompt_tokens - 1


def test_warming_makes_the_next_request_append_only(engine: LlamaEngine) -> None:
    base = OTHER + "def main():\n    value = helper_3(2)\n"
    evaluated = engine.warm(base)
    assert evaluated > 100
    assert engine.warm(base) == 0  # already there
    result = engine.complete(base + "    print(", max_tokens=4)
    assert result.prompt_tokens - result.reused_tokens <= 4


def test_a_documents_kv_state_comes_back_after_a_jump(engine: LlamaEngine) -> None:
    states = KvStates(size=2)
    states.switch(engine, "a.py")
    first = engine.complete(OTHER + "def a():\n    return ", max_tokens=3)
    assert not states.switch(engine, "b.py")  # nothing saved for b yet
    engine.complete("import os\n\nprint(os.getcwd())\n", max_tokens=3)
    assert states.switch(engine, "a.py")  # a's state restored
    back = engine.complete(OTHER + "def a():\n    return ", max_tokens=3)
    assert back.reused_tokens >= first.prompt_tokens - 1
    assert back.text == first.text
    states.forget("b.py")
    assert len(states) == 0


def test_typing_inside_a_word_needs_no_decode_before_the_first_pick(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Ta" and "Tab" heal to the same prompt (the text before the word): the second request
    # picks its first token from the logits the first one computed.
    evaluated: list[int] = []
    real_eval = engine.llm.eval

    def counted(tokens: list[int]) -> None:
        evaluated.append(len(tokens))
        real_eval(tokens)

    monkeypatch.setattr(engine.llm, "eval", counted)
    engine.complete(PROMPT, max_tokens=4, heal=True)
    evaluated.clear()
    again = engine.complete(PROMPT + "b", max_tokens=4, heal=True)
    assert again.healed == " Tab"
    assert len(evaluated) == again.completion_tokens - 1  # only the generated tokens
    engine._prompt_logits = greedy.PromptLogits()  # forget them: one decode more, same text
    evaluated.clear()
    fresh = engine.complete(PROMPT + "b", max_tokens=4, heal=True)
    assert len(evaluated) == fresh.completion_tokens
    assert fresh.text == again.text


def test_the_token_table_is_built_once_and_read_back(
    engine: LlamaEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_LSP_CACHE", str(tmp_path))
    built = vocabulary.pieces(engine.llm, engine.model_path)
    assert len(built) == engine.llm.n_vocab()
    assert built == engine.vocabulary.pieces  # the same table the engine heals with
    assert [p.suffix for p in (tmp_path / "vocabulary").iterdir()] == [".json"]
    assert vocabulary.pieces(engine.llm, engine.model_path) == built  # from the file now
