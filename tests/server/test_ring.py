"""Extra context from the files the user left, end to end: real server, real Gemma 3 270M.

The ring changes when the user switches files, a keystroke never brings it into a prompt, and
the warm when typing pauses evaluates the new prompt head so the next request reuses it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.server.conftest import open_doc
from tests.server.test_completion import inline_params, insert

ALPHA = "".join(
    f"def alpha_step_{i}(value):\n    return value * {i} + ALPHA_OFFSET\n\n" for i in range(20)
)
BETA = "".join(f"class BetaShape{i}:\n    sides = {i}\n\n" for i in range(20))


async def last(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("swarm/debug/lastCompletion", None)


async def ring(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("swarm/debug/ring", None)


async def test_a_file_switch_fills_the_ring_and_an_idle_warm_brings_it_in(
    client: LanguageClient, sample_project: Path
) -> None:
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"context": {"ringChunks": 8}})
    )
    alpha_text = ALPHA + "def total(values):\n    return "
    alpha = open_doc(client, sample_project / "alpha.py", alpha_text)
    alpha_end = (alpha_text.count("\n"), len("    return "))
    await client.text_document_inline_completion_async(inline_params(alpha, *alpha_end))
    assert (await last(client)).extraChars == 0  # nothing gathered yet

    # Switching to beta.py: the lines around alpha.py's cursor join the ring, and beta.py's
    # first prompt (a new window) starts with them.
    beta_text = BETA + "shape = "
    beta = open_doc(client, sample_project / "beta.py", beta_text)
    await client.text_document_inline_completion_async(
        inline_params(beta, beta_text.count("\n"), len("shape = "))
    )
    state = await ring(client)
    assert [c.split(":")[0] for c in state.chunks] == ["alpha.py"]
    stats = await last(client)
    assert stats.extraChars > 0 and stats.ringVersion == state.version

    # Back to alpha.py, a keystroke and a request: beta.py joins the ring, but alpha.py's
    # prompt keeps the head its saved KV state holds (the ring comes in at a stable moment,
    # never on a keystroke), so it costs nothing.
    line, col = alpha_end
    insert(client, alpha, 2, line, col, "Z")
    await client.text_document_inline_completion_async(inline_params(alpha, line, col + 1))
    state = await ring(client)
    assert [c.split(":")[0] for c in state.chunks] == ["alpha.py", "beta.py"]
    stats = await last(client)
    assert stats.reuse is None and stats.restored
    assert stats.extraChars == 0 and stats.ringVersion < state.version
    assert stats.promptTokens - stats.reusedTokens <= 2

    # Typing pauses (another keystroke, then quiet): the window takes the ring in and the warm
    # evaluates it in the background ...
    warms = (await ring(client)).counts.warm
    insert(client, alpha, 3, line, col + 1, "q")  # no suggestion starts so
    for _ in range(200):
        await asyncio.sleep(0.05)
        state = await ring(client)
        if state.counts.warm > warms:
            break
    assert state.counts.warm == warms + 1
    assert state.counts.warmedTokens > 0
    # ... so the next request has beta.py's chunk in its prompt and re-evaluates nothing.
    await client.text_document_inline_completion_async(inline_params(alpha, line, col + 2))
    stats = await last(client)
    assert stats.extraChars > 0 and stats.ringVersion == state.version
    assert stats.promptTokens - stats.reusedTokens <= 2
