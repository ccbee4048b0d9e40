"""The research role's answers through one long-lived role: what the chat model evaluates per
question, and what each answer reports of it (real embedder, index and SmolLM2)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.refactor import backend
from swarm_lsp.workers.research import role as research_role
from swarm_lsp.workers.research.index import close_local_clients
from tests.workers.conftest import RecordingReporter


@pytest.mark.slow
async def test_a_second_question_evaluates_only_what_differs_from_the_first(
    sample_project: Path,
) -> None:
    role = research_role.create(Settings())
    chat: Any = backend.local_chat_model(Settings())  # the in-process engine behind it
    engine = chat._engine
    llm = engine.llm
    evaluated: list[int] = []
    real_eval = llm.eval

    def counting(tokens: Any) -> None:
        evaluated.append(len(tokens))
        real_eval(tokens)

    llm.eval = counting
    llm.reset()  # another test's prompt may still be in the context
    results = []
    try:
        for n, question in enumerate(
            ("How is the area of a circle computed?", "How is a rectangle's area computed?")
        ):
            evaluated.clear()
            task = TaskRequest(
                id=f"r{n}",
                type="research",
                payload={"question": question, "top_k": 3},
                snapshot_dir=sample_project,
            )
            result = await role.run(task, RecordingReporter())
            # Batches of more than one token: the warm-up of the fixed head, then the prompt
            # (the answer decodes one token at a time).
            results.append((result, sum(n for n in evaluated if n > 1)))
    finally:
        llm.eval = real_eval
        role.close()
        close_local_clients()
    for result, prompt_eval in results:
        timings = result["timings"]
        assert timings["prompt_tokens"] > 100
        assert (
            prompt_eval
            == timings["warm_tokens"] + timings["prompt_tokens"] - timings["reused_tokens"]
        )
        assert 0 < timings["sources_ms"] < timings["first_token_ms"]
        assert timings["threads"] >= 1
        assert re.search(r"shapes/geometry\.py:\d+", result["answer"])  # cites file:line
    first, second = (result["timings"] for result, _ in results)
    # The first question found the system prompt and "Sources:" evaluated while it searched
    # (warmed); the second found them left by the first answer, and the start of its sources.
    assert first["warm_tokens"] >= 20 and first["reused_tokens"] >= first["warm_tokens"] - 1
    assert second["warm_tokens"] == 0 and second["reused_tokens"] >= first["warm_tokens"]
    assert second["prompt_tokens"] - second["reused_tokens"] < second["prompt_tokens"] - 20
