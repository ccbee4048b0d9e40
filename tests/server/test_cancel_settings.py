"""$/cancelRequest frees the model; settings from initializationOptions and configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.server.conftest import open_doc

SOURCE = "def numbers():\n    values = [\n"
LONG = {
    "models": {
        "completionMaxTokens": 1500,
        "completionMaxLines": 400,
        "completionTimeoutMs": 120000,
    }
}


async def configure(client: LanguageClient, settings: dict) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
    # A round trip makes sure the notification has been handled before we go on.
    await client.protocol.send_request_async("swarm/chat", {"prompt": "ok"})


async def _long_completion_at_the_list(
    client: LanguageClient, project: Path
) -> types.CompletionParams:
    """Long completions configured, ``SOURCE`` open: a completion at its open list."""
    await configure(client, LONG)
    uri = open_doc(client, project / "numbers.py", SOURCE)
    position = types.Position(2, 0)
    return types.CompletionParams(types.TextDocumentIdentifier(uri=uri), position)


async def test_cancelled_completion_answers_request_cancelled_and_frees_model(
    client: LanguageClient, sample_project: Path
) -> None:
    params = await _long_completion_at_the_list(client, sample_project)
    future = client.protocol.send_request(types.TEXT_DOCUMENT_COMPLETION, params, msg_id="slow-1")
    await asyncio.sleep(1.0)  # generation is under way
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(future)
    # The long generation (1,500 tokens, about half a minute here) must have stopped:
    # with short settings the next request is answered well before it could have finished.
    await configure(client, {"models": {"completionMaxTokens": 8, "completionMaxLines": 2}})
    result = await asyncio.wait_for(client.text_document_completion_async(params), timeout=15)
    assert isinstance(result, types.CompletionList)


async def test_newer_completion_supersedes_older_for_same_document(
    client: LanguageClient, sample_project: Path
) -> None:
    params = await _long_completion_at_the_list(client, sample_project)
    uri = params.text_document.uri
    await configure(client, {"models": {"completionMaxTokens": 200, "completionMaxLines": 40}})
    # Back to back: the first is still queued or evaluating its prompt when the user types
    # and the second lands (two requests at the same cursor share one model call instead).
    first = asyncio.ensure_future(client.text_document_completion_async(params))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(2, 0), types.Position(2, 0)), text="1"
                )
            ],
        )
    )
    moved = types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(2, 1)
    )
    second_call = asyncio.ensure_future(client.text_document_completion_async(moved))
    older = await asyncio.wait_for(first, timeout=60)
    second = await asyncio.wait_for(second_call, timeout=60)
    # The superseded request ends empty (never an error); the newer one got the model.
    assert isinstance(older, types.CompletionList) and len(older.items) == 0
    assert isinstance(second, types.CompletionList) and len(second.items) == 1


async def test_bad_settings_are_reported_and_defaults_kept(client: LanguageClient) -> None:
    await configure(
        client,
        {"models": {"completionMaxTokens": "many", "nope": 1}, "swarm": {"autostart": "sometimes"}},
    )
    shown = [m.message for m in client.messages]
    assert any("completionMaxTokens" in m and "integer" in m for m in shown), shown
    assert any("models.nope" in m and "unknown" in m for m in shown), shown
    assert any("autostart" in m for m in shown), shown


async def test_settings_change_reaches_generation(
    client: LanguageClient, sample_project: Path
) -> None:
    uri = open_doc(client, sample_project / "numbers.py", SOURCE)
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(2, 0),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked
        ),
    )
    await configure(client, {"models": {"completionMaxTokens": 40, "completionMaxLines": 1}})
    result = await client.text_document_inline_completion_async(params)
    assert result is not None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    for item in items:
        assert isinstance(item.insert_text, str)
        assert "\n" not in item.insert_text.strip("\n"), "completionMaxLines=1 allows one line"


async def test_swarm_toml_in_workspace_is_read(sample_project: Path) -> None:
    from swarm_lsp import config

    (sample_project / "swarm.toml").write_text(
        "[models]\ncompletion_max_tokens = 7\n[swarm]\nautostart = false\n"
    )
    settings = config.load(sample_project, {"models": {"chatMaxTokens": 9}})
    assert settings.models.completion_max_tokens == 7
    assert settings.models.chat_max_tokens == 9
    assert settings.swarm.autostart is False
    (sample_project / "swarm.toml").write_text("[models\nbroken")
    settings = config.load(sample_project, None)
    assert settings.problems and "swarm.toml" in settings.problems[0]
