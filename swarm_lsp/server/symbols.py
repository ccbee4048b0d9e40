"""textDocument/documentSymbol, workspace/symbol and textDocument/definition from the context
engine's index (definitions by name: the tree-sitter tags, no type inference)."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from swarm_lsp.context.documents import path_to_uri
from swarm_lsp.context.symbols import Symbol
from swarm_lsp.server.app import SwarmLanguageServer

KINDS: dict[str, types.SymbolKind] = {
    "function": types.SymbolKind.Function,
    "class": types.SymbolKind.Class,
    "method": types.SymbolKind.Method,
    "interface": types.SymbolKind.Interface,
    "type": types.SymbolKind.TypeParameter,
    "constant": types.SymbolKind.Constant,
    "module": types.SymbolKind.Module,
    "macro": types.SymbolKind.Function,
    "enum": types.SymbolKind.Enum,
    "constructor": types.SymbolKind.Constructor,
    "variable": types.SymbolKind.Variable,
    "struct": types.SymbolKind.Struct,
    "field": types.SymbolKind.Field,
}


def _range(symbol_range: object) -> types.Range:
    start, end = symbol_range.start, symbol_range.end  # type: ignore[attr-defined]
    return types.Range(
        types.Position(start.line, start.character), types.Position(end.line, end.character)
    )


def to_document_symbol(symbol: Symbol) -> types.DocumentSymbol:
    return types.DocumentSymbol(
        name=symbol.name,
        kind=KINDS.get(symbol.kind, types.SymbolKind.Variable),
        range=_range(symbol.range),
        selection_range=_range(symbol.selection_range),
        detail=symbol.detail or None,
        children=[to_document_symbol(child) for child in symbol.children] or None,
    )


def definition_locations(
    ls: SwarmLanguageServer, uri: str, position: types.Position
) -> list[types.Location]:
    """Where the name under ``position`` is defined in the workspace (its own file first)."""
    from swarm_lsp.server.task_payloads import word_at

    engine = ls.context
    doc = ls.workspace.text_documents.get(uri)
    if engine is None or engine.root is None or doc is None:
        return []
    name = word_at(doc.source, position.line, position.character)
    if not name:
        return []
    tags = engine.index.definitions(name)
    if not tags:  # open documents are indexed after an edit; bring them in now
        for open_uri in list(ls.workspace.text_documents):
            engine.refresh_document(open_uri)
        tags = engine.index.definitions(name)
    locations: list[types.Location] = []
    for tag in tags:
        target = path_to_uri(engine.root / tag.path)
        start = types.Position(tag.line, tag.column)
        end = types.Position(tag.line, tag.column + len(tag.name))
        locations.append(types.Location(uri=target, range=types.Range(start, end)))
    locations.sort(key=lambda loc: loc.uri != uri)
    return locations


def register(server: SwarmLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: SwarmLanguageServer, params: types.DefinitionParams) -> list[types.Location]:
        return definition_locations(ls, params.text_document.uri, params.position)

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: SwarmLanguageServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol]:
        if ls.context is None:
            return []
        return [
            to_document_symbol(s) for s in ls.context.document_symbols(params.text_document.uri)
        ]

    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: SwarmLanguageServer, params: types.WorkspaceSymbolParams
    ) -> list[types.WorkspaceSymbol]:
        engine = ls.context
        if engine is None or engine.root is None:
            return []
        found = await asyncio.to_thread(engine.workspace_symbols, params.query)
        results = []
        for symbol in found:
            if symbol.path is None:
                continue
            uri = path_to_uri(engine.root / symbol.path)
            results.append(
                types.WorkspaceSymbol(
                    name=symbol.name,
                    kind=KINDS.get(symbol.kind, types.SymbolKind.Variable),
                    location=types.Location(uri=uri, range=_range(symbol.selection_range)),
                    container_name=symbol.container or None,
                )
            )
        return results
