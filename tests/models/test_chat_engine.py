"""The real chat model: its Q8_0 copy, greedy chat in the engine's own loop, prompt reuse."""

from __future__ import annotations

import json.decoder
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarm_lsp import threads
from swarm_lsp.models import chat_prompt, defaults, derived, llama_engine
from swarm_lsp.models.llama_engine import LlamaEngine

SYSTEM = "Answer from the numbered sources only, citing them as [1], [2]. Be brief."


def conversation(question: str) -> list[dict[str, str]]:
    sources = (
        "Sources:\n\n[1] shapes/geometry.py:7-11 (area_of_circle)\n"
        "def area_of_circle(radius):\n    return math.pi * radius * radius\n\n"
    )
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{sources}Question: {question}\nAnswer:"},
    ]


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    engine = LlamaEngine(defaults.chat_model_path(), n_ctx=4096, n_threads=1)
    engine.load()
    yield engine
    engine.close()


def count_evals(engine: LlamaEngine) -> list[int]:
    """Record the size of every batch llama.cpp evaluates from now on (the real engine)."""
    llm = engine.llm
    sizes: list[int] = []
    real = llm.eval

    def counting(tokens: Any) -> None:
        sizes.append(len(tokens))
        real(tokens)

    llm.eval = counting
    return sizes


def test_the_chat_model_is_a_q8_0_copy_of_the_packaged_weights(engine: LlamaEngine) -> None:
    from llama_cpp import Llama

    packaged = defaults.packaged_chat_model_path()
    assert engine.model_path == derived.q8_path(packaged) != packaged
    assert engine.llm.metadata["general.file_type"] == str(derived.Q8_0)
    # The same model: next-token distributions over real code barely move (measured: mean KL
    # 0.006 nats, the exact F16 copy 0.004; a Q4_0 copy 0.33, 22% of its top tokens differ).
    text = Path(json.decoder.__file__).read_text()[:1500]
    log_probs = []
    for path in (packaged, engine.model_path):
        llm = Llama(str(path), n_ctx=512, n_threads=1, logits_all=True, verbose=False)
        tokens = llm.tokenize(text.encode())[:160]
        llm.eval(tokens)
        scores = np.array(llm.scores[: len(tokens)], dtype=np.float64)
        llm.close()
        scores -= scores.max(axis=1, keepdims=True)
        log_probs.append(scores - np.log(np.exp(scores).sum(axis=1, keepdims=True)))
    shipped, copy = log_probs
    kl = (np.exp(shipped) * (shipped - copy)).sum(axis=1)
    assert kl.mean() < 0.03
    assert (shipped.argmax(axis=1) == copy.argmax(axis=1)).mean() >= 0.9


def test_greedy_chat_is_llama_cpp_pythons_answer_and_keeps_the_system_prompt(
    engine: LlamaEngine,
) -> None:
    first = engine.chat(
        conversation("How is the area of a circle computed?"), max_tokens=24, temperature=0
    )
    engine.llm.reset()
    reference = engine.llm.create_chat_completion(
        messages=conversation("How is the area of a circle computed?"), max_tokens=24, temperature=0
    )
    assert first.text == reference["choices"][0]["message"]["content"]
    assert first.prompt_tokens == reference["usage"]["prompt_tokens"]

    engine.chat(conversation("How is the area of a circle computed?"), max_tokens=4, temperature=0)
    evaluated = count_evals(engine)
    second = engine.chat(
        conversation("Which function gives a circle's area?"), max_tokens=1, temperature=0
    )
    # Only what follows the shared head (system prompt, sources) is evaluated again.
    before, after = (
        engine.llm.tokenize(_rendered(engine, conversation(q)).encode(), special=True)
        for q in ("How is the area of a circle computed?", "Which function gives a circle's area?")
    )
    shared = next(i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b)
    assert shared > len(engine.tokenize(SYSTEM)) + 20  # the system prompt and the sources
    assert second.prompt_tokens == len(after)
    assert second.reused_tokens == shared
    assert sum(evaluated) == len(after) - shared
    assert second.threads == 1


def test_a_background_engine_pauses_its_prompt_for_the_editors_request(
    engine: LlamaEngine,
) -> None:
    # The answer's engine (background: it yields) evaluates a long prompt in pieces of at most
    # PAUSABLE_BATCH tokens and looks for the editor's engine before each: an editor's job
    # running when the answer starts is waited for, so the two never run at once.
    assert engine.budget.role == threads.BACKGROUND
    sources = Path(json.decoder.__file__).read_text()[:1200]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": sources}]
    evals: list[tuple[float, int]] = []
    llm = engine.llm
    real = llm.eval

    def timed(tokens: Any) -> None:
        evals.append((time.perf_counter(), len(tokens)))
        real(tokens)

    editor = threads.Slot("completion", threads.INTERACTIVE, folder=engine._slot().folder)
    started, ended = threading.Event(), threading.Event()
    ended_at: list[float] = []

    def editor_job() -> None:
        with editor.active():
            started.set()
            time.sleep(0.3)
            ended_at.append(time.perf_counter())
        ended.set()

    llm.reset()
    llm.eval = timed
    runner = threading.Thread(target=editor_job)
    try:
        runner.start()
        assert started.wait(5)
        time.sleep(0.03)  # past the engine's throttle on looking at the claims
        generation = engine.chat(messages, max_tokens=1, temperature=0)
    finally:
        llm.eval = real
        runner.join()
        editor.close()
    prompt = [n for _, n in evals if n > 1]
    assert sum(prompt) == generation.prompt_tokens
    assert len(prompt) >= 2 and max(prompt) <= llama_engine.PAUSABLE_BATCH
    assert ended.is_set() and evals[0][0] >= ended_at[0]


def test_a_q8_0_copy_that_cannot_be_made_falls_back_to_the_shipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_LSP_MODELS", str(tmp_path / "models"))
    broken = tmp_path / "broken.Q4_1.gguf"
    broken.write_bytes(b"not a model")
    assert derived.ensure_chat_q8(broken) == broken
    assert not derived.q8_path(broken).exists()


def _rendered(engine: LlamaEngine, messages: list[dict[str, str]]) -> str:
    prompt = chat_prompt.render(engine.llm, messages)
    assert prompt is not None, "the chat model has its own template"
    return prompt
