"""Answer a question from retrieved chunks, citing ``path:line`` for what it says.

The model sees numbered sources and is asked to cite them as ``[1]``; each ``[n]`` in its answer
is rewritten to ``[path:line]``. Whatever the model does, the answer ends with the list of
sources retrieval found, so every answer carries its citations (a tiny local model does not
always follow instructions).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from swarm_lsp.workers.research.records import Hit

#: What the model reads: the best few sources, each cut short. Prompt evaluation is all of
#: the time to the first token (SmolLM2-135M as Q8_0: about 200 prompt tokens/s on one core
#: of a machine at load 4-5, 2.5x the shipped Q4_1): 3 sources of 10 lines / 300 characters
#: make prompts of about 375 tokens over the labelled questions (median; 540 at 15 lines /
#: 700 characters), of which the fixed head stays evaluated. 8 lines / 240 characters saved
#: 12% and lost answer checks (BENCHMARKS.md). Every source retrieval found is still listed
#: under the answer.
PROMPT_SOURCES = 3
SOURCE_LINES = 10
SOURCE_CHARS = 300
SYSTEM_PROMPT = (
    "Answer from the numbered sources only, citing them as [1], [2]. Be brief. "
    "If they do not answer the question, say so."
)


def location(hit: Hit) -> str:
    if hit.end_line > hit.start_line:
        return f"{hit.path}:{hit.start_line}-{hit.end_line}"
    return f"{hit.path}:{hit.start_line}"


#: Where every prompt's question-specific part begins: what comes before it (the system prompt,
#: the chat template's turn markers, "Sources:") is the same for every question and stays in
#: the model's context from one answer to the next.
SOURCES_START = "[1] "


def head_messages() -> list[dict[str, str]]:
    """A conversation whose prompt starts like every answer's, up to :data:`SOURCES_START`."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Sources:\n\n" + SOURCES_START},
    ]


def build_messages(question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    """Chat messages: the instructions, the numbered sources, then the question."""
    blocks = []
    for number, hit in enumerate(hits[:PROMPT_SOURCES], start=1):
        lines = hit.text.splitlines()
        body = "\n".join(lines[:SOURCE_LINES])[:SOURCE_CHARS]
        if len(lines) > SOURCE_LINES or len(body) == SOURCE_CHARS:
            body += "\n..."
        blocks.append(f"[{number}] {location(hit)} ({hit.symbol})\n{body}")
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\nAnswer:"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_REFERENCE = re.compile(r"\[(\d{1,2})\]")


def resolve_references(text: str, hits: Sequence[Hit]) -> str:
    """``[2]`` → ``[shapes/geometry.py:7]``; numbers with no source are left as they are."""

    def replace(match: re.Match[str]) -> str:
        number = int(match[1])
        if 1 <= number <= len(hits):
            hit = hits[number - 1]
            return f"[{hit.path}:{hit.start_line}]"
        return match[0]

    return _REFERENCE.sub(replace, text)


def sources_section(hits: Sequence[Hit]) -> str:
    """The closing list of citations, one ``path:line`` per retrieved chunk."""
    if not hits:
        return "\n\nSources: nothing in the index matched."
    # Numbered like the prompt's sources, so a streamed "[2]" can be looked up here.
    lines = [f"[{n}] {location(hit)} `{hit.symbol}`" for n, hit in enumerate(hits, start=1)]
    return "\n\nSources:\n" + "\n".join(lines)


def extractive_answer(question: str, hits: Sequence[Hit]) -> str:
    """An answer without a model: where the most relevant code is."""
    if not hits:
        return f"Nothing in the index matches {question!r}."
    best = hits[0]
    return (
        f"The most relevant code is `{best.symbol}` at {best.path}:{best.start_line} "
        "(retrieval only: no model answer)."
    )
