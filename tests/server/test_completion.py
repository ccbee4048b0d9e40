"""Completion and inline completion end to end: real server, real Gemma 3 270M."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from tests.server.conftest import open_doc

SOURCE = "def add(a, b):\n    return a + b\n\n\ndef subtract(a, b):\n    return "


async def test_server_advertises_inline_completion(client: LanguageClient) -> None:
    result: types.InitializeResult = client.swarm_init_result  # type: ignore[attr-defined]
    assert result.capabilities.inline_completion_provider is not None
    assert result.capabilities.completion_provider is not None
    sync = result.capabilities.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental


async def test_completion_returns_model_text(client: LanguageClient, sample_project: Path) -> None:
    uri = open_doc(client, sample_project / "scratch.py", SOURCE)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=5, character=11),
        )
    )
    assert isinstance(result, types.CompletionList)
    assert result.is_incomplete
    assert len(result.items) == 1
    item = result.items[0]
    assert item.text_edit is not None and item.text_edit.new_text.strip()
    assert "gemma" in (item.detail or "").lower()


async def test_inline_completion_returns_ghost_text(
    client: LanguageClient, sample_project: Path
) -> None:
    uri = open_doc(client, sample_project / "scratch.py", SOURCE)
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=5, character=11),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert result is not None
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert len(items) == 1
    assert isinstance(items[0].insert_text, str) and items[0].insert_text.strip()
    assert items[0].range == types.Range(types.Position(5, 11), types.Position(5, 11))


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )


def insert(client: LanguageClient, uri: str, version: int, line: int, col: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(line, col), types.Position(line, col)),
                    text=text,
                )
            ],
        )
    )


async def test_typing_the_suggestion_is_answered_without_the_model(
    client: LanguageClient, sample_project: Path
) -> None:
    uri = open_doc(client, sample_project / "scratch.py", SOURCE)
    first = await client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    assert isinstance(first, types.InlineCompletionList) and first.items
    shown = first.items[0].insert_text
    assert isinstance(shown, str) and len(shown) >= 2
    typed = shown[:2] if len(shown) > 2 else shown[:1]
    insert(client, uri, 2, 5, 11, typed)
    second = await client.text_document_inline_completion_async(
        inline_params(uri, 5, 11 + len(typed))
    )
    assert isinstance(second, types.InlineCompletionList) and second.items
    assert second.items[0].insert_text == shown[len(typed) :]
    stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
    assert stats.reuse == "typed-ahead"
    assert stats.counts.model == 1


async def test_a_partial_word_is_healed_not_repeated(
    client: LanguageClient, sample_project: Path
) -> None:
    text = "import os\n\n\ndef here():\n    return os.getc"
    uri = open_doc(client, sample_project / "healing.py", text)
    # Healing starts once the token table is built (a thread of its own after the model
    # loads; no request waits for it).
    for attempt in range(40):
        result = await client.text_document_inline_completion_async(inline_params(uri, 4, 18))
        stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
        if stats.reuse is None and stats.healed:
            break
        client.text_document_did_change(  # a no-op edit: the next request is not a cache hit
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2 + attempt),
                content_changes=[
                    types.TextDocumentContentChangeWholeDocument(text=text + " " * (attempt + 1))
                ],
            )
        )
        await asyncio.sleep(0.25)
    assert stats.healed.endswith("getc")
    assert isinstance(result, types.InlineCompletionList)
    for item in result.items:
        assert isinstance(item.insert_text, str)
        assert not item.insert_text.startswith("getc")  # never "getcgetcwd"


async def test_warming_at_the_cursor_makes_the_first_request_cheap(
    client: LanguageClient, sample_project: Path
) -> None:
    path = sample_project / "shapes" / "geometry.py"
    uri = open_doc(client, path)
    line = len(path.read_text().splitlines()) - 1
    position = {"line": line, "character": 4}
    # Clients send it as a notification (Neovim: BufEnter, InsertEnter, CursorHold); as a
    # request the test can wait for it.
    await client.protocol.send_request_async(
        "swarm/warm", {"textDocument": {"uri": uri}, "position": position}
    )
    await client.text_document_inline_completion_async(inline_params(uri, line, 4))
    stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
    assert stats.promptTokens > 50
    assert stats.promptTokens - stats.reusedTokens <= 2


async def test_completion_list_offers_workspace_names_beside_the_model(
    client: LanguageClient, sample_project: Path
) -> None:
    # Rectangle is defined in shapes/geometry.py; this new file only types "Rect". The suite
    # starts without indexing: a save puts geometry.py in the index.
    geometry = (sample_project / "shapes" / "geometry.py").as_uri()
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=geometry))
    )
    for _ in range(100):
        found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="Rectangle"))
        if found:
            break
        await asyncio.sleep(0.05)
    text = "from shapes.geometry import scale\n\n\ndef square(side):\n    return Rect"
    uri = open_doc(client, sample_project / "shapes" / "square.py", text)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=4, character=15),
        )
    )
    assert isinstance(result, types.CompletionList) and result.items
    assert result.items[0].sort_text == "0"  # the model's completion first
    labels = [item.label for item in result.items[1:]]
    assert "Rectangle" in labels
    edit = next(i for i in result.items if i.label == "Rectangle").text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.range.start == types.Position(4, 11) and edit.new_text == "Rectangle"


async def test_a_warm_never_cancels_a_completion_in_flight(
    client: LanguageClient, sample_project: Path
) -> None:
    # Neovim sends swarm/warm on CursorHold (4 s without moving): a completion still running
    # then (a cold prompt on a loaded machine) used to be cancelled by it and came back empty.
    source = (
        "def scale(values, k):\n    return [v * k for v in values]\n\n\ndef mean(xs):\n    return "
    )
    uri = open_doc(client, sample_project / "warm_during_completion.py", source)
    position = types.Position(line=5, character=11)
    completion = asyncio.ensure_future(
        client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), position=position
            )
        )
    )
    warm = client.protocol.send_request_async(
        "swarm/warm", {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 11}}
    )
    result, _ = await asyncio.gather(completion, warm)
    assert isinstance(result, types.CompletionList)
    assert result.items and result.items[0].text_edit is not None
    assert result.items[0].text_edit.new_text.strip()


async def test_an_inline_request_never_cancels_a_completion_list_at_the_same_cursor(
    client: LanguageClient, sample_project: Path
) -> None:
    # VS Code asks for ghost text and, on Ctrl+Space, for the list at the same cursor; the
    # later request used to supersede the earlier one, which came back empty. They now share
    # one model call, and cancelling one of them ($/cancelRequest) leaves the other its answer.
    source = "def cube(x):\n    return x * x * x\n\n\ndef square(x):\n    return "
    uri = open_doc(client, sample_project / "both_requests.py", source)
    listing = types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(5, 11)
    )
    explicit = asyncio.ensure_future(client.text_document_completion_async(listing))
    inline = asyncio.ensure_future(
        client.text_document_inline_completion_async(inline_params(uri, 5, 11))
    )
    listed, ghost = await asyncio.gather(explicit, inline)
    assert isinstance(listed, types.CompletionList) and listed.items
    assert isinstance(ghost, types.InlineCompletionList) and ghost.items
    assert listed.items[0].text_edit is not None
    assert listed.items[0].text_edit.new_text == ghost.items[0].insert_text
    stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
    before = stats.counts.model

    insert(client, uri, 2, 5, 11, "x")
    ghost_future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 5, 12), msg_id="ghost-1"
    )
    listing.position = types.Position(5, 12)
    explicit = asyncio.ensure_future(client.text_document_completion_async(listing))
    await asyncio.sleep(0)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="ghost-1"))
    listed = await explicit
    assert isinstance(listed, types.CompletionList) and listed.items
    assert listed.items[0].text_edit is not None and listed.items[0].text_edit.new_text.strip()
    with contextlib.suppress(JsonRpcRequestCancelled):
        await asyncio.wrap_future(ghost_future)
    stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
    assert stats.counts.model == before + 1  # one model call for both requests


async def test_the_completion_after_a_shown_suggestion_is_ready_when_it_is_accepted(
    client: LanguageClient, sample_project: Path
) -> None:
    # Suggestions of 3 tokens end mid-line, where a next one exists (after a finished line
    # the next would start a dedented line: nothing to show).
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"models": {"completionMaxTokens": 3, "completionSpeculate": True}}
        )
    )
    source = "def area(width, height):\n    return "
    uri = open_doc(client, sample_project / "speculate.py", source)
    first = await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
    assert isinstance(first, types.InlineCompletionList) and first.items
    shown = first.items[0].insert_text
    assert isinstance(shown, str) and shown.strip() and "\n" not in shown
    # The speculation runs while nothing else asks; a request at the same cursor (a cache
    # hit, no model call) reports the counts.
    for _ in range(200):
        await client.text_document_inline_completion_async(inline_params(uri, 1, 11))
        stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
        if stats.counts.speculative:
            break
        await asyncio.sleep(0.05)
    assert stats.counts.speculative == 1
    insert(client, uri, 2, 1, 11, shown)  # Tab: the suggestion accepted
    await client.text_document_inline_completion_async(inline_params(uri, 1, 11 + len(shown)))
    stats = await client.protocol.send_request_async("swarm/debug/lastCompletion", None)
    assert stats.reuse == "cached"
    assert stats.counts.model == 1  # the answer after the suggestion took no model call
