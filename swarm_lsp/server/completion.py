"""textDocument/completion and textDocument/inlineCompletion from the local completion model."""

from __future__ import annotations

import time
from typing import Any

from lsprotocol import types

from swarm_lsp.errors import GenerationCancelled, ModelError
from swarm_lsp.models.local import Completion
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.text import cursor_at

TRIGGER_CHARACTERS = [".", "(", "[", "{", ",", ":", "=", " "]


async def complete_at(
    ls: SwarmLanguageServer, uri: str, position: types.Position
) -> tuple[Completion, str] | None:
    """Run the model at ``position``; None when there is nothing sensible to complete."""
    doc = ls.workspace.text_documents.get(uri)
    if doc is None:
        return None  # not open (or closed meanwhile): nothing to complete
    cursor = cursor_at(doc, position)
    if cursor is None:
        return None
    started = time.perf_counter()
    preamble, prefix, suffix = ls.completion_context(uri, doc, position, cursor)
    context_ms = (time.perf_counter() - started) * 1000
    try:
        result = await ls.models.complete(key=uri, preamble=preamble, prefix=prefix, suffix=suffix)
    except GenerationCancelled:
        return None  # superseded by a newer keystroke
    except ModelError as err:
        ls.log(f"completion failed: {err}", types.MessageType.Error)
        raise
    ls.last_completion = result
    gen = result.generation
    ls.last_completion_stats = {
        "contextMs": round(context_ms, 3),
        "promptMs": round(gen.prompt_ms, 3),
        "generationMs": round(gen.generation_ms, 3),
        "promptTokens": gen.prompt_tokens,
        "reusedTokens": gen.reused_tokens,
        "completionTokens": gen.completion_tokens,
        "stopReason": gen.stop_reason,
        "handlerMs": round((time.perf_counter() - started) * 1000, 3),
        "model": result.model,
        "fim": result.used_fim,
    }
    if not result.text.strip():
        return None
    return result, cursor.word


def _documentation(ls: SwarmLanguageServer, text: str) -> types.MarkupContent | str:
    """Markdown when the client says it renders it, else plain text."""
    caps = ls.client_capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    formats = (item.documentation_format if item else None) or []
    if types.MarkupKind.Markdown in formats:
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{text}\n```")
    return text


def register(server: SwarmLanguageServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS),
    )
    async def completion(
        ls: SwarmLanguageServer, params: types.CompletionParams
    ) -> types.CompletionList:
        found = await complete_at(ls, params.text_document.uri, params.position)
        if found is None:
            return types.CompletionList(is_incomplete=True, items=[])
        result, word = found
        text = word + result.text
        start = types.Position(params.position.line, params.position.character - len(word))
        label = text.strip().splitlines()[0] if text.strip() else text
        item = types.CompletionItem(
            label=label[:80],
            kind=types.CompletionItemKind.Snippet,
            detail=f"swarm-lsp · {result.model}",
            documentation=_documentation(ls, text),
            filter_text=text,
            sort_text="0",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(start, params.position), new_text=text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature("swarm/debug/lastCompletion")
    def last_completion(ls: SwarmLanguageServer, params: Any) -> dict[str, Any] | None:
        """Timings of the last completion, for benchmarks and bug reports."""
        return ls.last_completion_stats

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SwarmLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        found = await complete_at(ls, params.text_document.uri, params.position)
        if found is None:
            return types.InlineCompletionList(items=[])
        result, _word = found
        item = types.InlineCompletionItem(
            insert_text=result.text,
            range=types.Range(params.position, params.position),
        )
        return types.InlineCompletionList(items=[item])
