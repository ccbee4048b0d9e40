"""swarm/chat and swarm.chat: tokens stream as $/progress reports, the answer comes back whole."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient


async def test_chat_streams_tokens_as_progress(client: LanguageClient) -> None:
    token = "chat-1"
    client.progress_reports[token] = []
    result = await client.protocol.send_request_async(
        "swarm/chat",
        {"prompt": "What does a Python list do? One sentence.", "workDoneToken": token},
    )
    text = result["text"] if isinstance(result, dict) else result.text
    assert text.strip()
    reports = client.progress_reports[token]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    deltas = [r.message for r in reports if isinstance(r, types.WorkDoneProgressReport)]
    assert len(deltas) > 1, "tokens should stream, not arrive as one report"
    assert "".join(d or "" for d in deltas) == text


async def test_chat_without_token_creates_server_progress(client: LanguageClient) -> None:
    before = set(client.progress_reports)
    result = await client.protocol.send_request_async("swarm/chat", {"prompt": "Say hello."})
    text = result["text"] if isinstance(result, dict) else result.text
    assert text.strip()
    created = set(client.progress_reports) - before
    assert len(created) == 1
    reports = client.progress_reports[created.pop()]
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)


async def test_chat_command(client: LanguageClient) -> None:
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="swarm.chat", arguments=["Name one sorting algorithm."])
    )
    assert result is not None and result["text"].strip()
    assert result["model"].lower().startswith("smollm2")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"prompt": ""},
        {"prompt": 42},
        {"prompt": "hi", "history": "nope"},
        {"prompt": "x" * 40_000},
    ],
)
async def test_chat_bad_params_are_clear_errors(client: LanguageClient, params: dict) -> None:
    with pytest.raises(JsonRpcInvalidParams, match="swarm/chat"):
        await client.protocol.send_request_async("swarm/chat", params)
    # ...and the server keeps serving.
    ok = await client.protocol.send_request_async("swarm/chat", {"prompt": "ok?"})
    assert ok is not None
