"""textDocument/completion and textDocument/inlineCompletion from the local completion model."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.completion_session import CompletionSession

TRIGGER_CHARACTERS = [".", "(", "[", "{", ",", ":", "=", " "]
NAME_ITEMS = 20  # workspace names offered beside the model's completion


def _documentation(ls: SwarmLanguageServer, text: str) -> types.MarkupContent | str:
    """Markdown when the client says it renders it, else plain text."""
    caps = ls.client_capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    formats = (item.documentation_format if item else None) or []
    if types.MarkupKind.Markdown in formats:
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{text}\n```")
    return text


def register(server: SwarmLanguageServer) -> None:
    session = CompletionSession(server)
    server.on_did_open.append(session.opened)
    server.on_did_change.append(session.changed)
    server.on_did_save.append(session.saved)
    server.on_did_close.append(session.closed)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS),
    )
    async def completion(
        ls: SwarmLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        found = await session.complete(params.text_document.uri, params.position)
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        word = found.word
        text = word + found.text
        start = types.Position(params.position.line, params.position.character - len(word))
        label = text.strip().splitlines()[0] if text.strip() else text
        item = types.CompletionItem(
            label=label[:80],
            kind=types.CompletionItemKind.Snippet,
            detail=f"swarm-lsp · {found.model}",
            documentation=_documentation(ls, text),
            filter_text=text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(start, params.position), new_text=text),
        )
        items = [item]
        # Names from the file and the workspace index that the typed word starts, beside the
        # model's guess: a tiny model's first word is right far less often than this list.
        for rank, name in enumerate(found.names[:NAME_ITEMS]):
            items.append(
                types.CompletionItem(
                    label=name,
                    kind=types.CompletionItemKind.Reference,
                    detail="swarm-lsp · workspace name",
                    sort_text=f"1{rank:03d}",
                    text_edit=types.TextEdit(
                        range=types.Range(start, params.position), new_text=name
                    ),
                )
            )
        return types.CompletionList(is_incomplete=True, items=items)

    @server.feature("swarm/debug/lastCompletion")
    def last_completion(ls: SwarmLanguageServer, params: Any) -> dict[str, Any] | None:
        """Timings of the last completion, for benchmarks and bug reports."""
        return ls.last_completion_stats

    @server.feature("swarm/debug/ring")
    def ring(ls: SwarmLanguageServer, params: Any) -> dict[str, Any]:
        """The extra-context ring (chunks, version) and the session's counts."""
        return session.ring_stats()

    @server.feature("swarm/warm")
    async def warm(ls: SwarmLanguageServer, params: Any) -> None:
        """A client that knows the cursor (BufEnter, CursorHold) asks to warm the cache there."""
        doc = getattr(params, "textDocument", None) or getattr(params, "text_document", None)
        pos = getattr(params, "position", None)
        uri = getattr(doc, "uri", None)
        if not isinstance(uri, str) or pos is None:
            return
        position = types.Position(int(getattr(pos, "line", 0)), int(getattr(pos, "character", 0)))
        session.cursors[uri] = position
        await session.warm(uri, position)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SwarmLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        found = await session.complete(params.text_document.uri, params.position)
        if found is None:
            return types.InlineCompletionList(items=[])
        item = types.InlineCompletionItem(
            insert_text=found.text,
            range=types.Range(params.position, params.position),
        )
        return types.InlineCompletionList(items=[item])
