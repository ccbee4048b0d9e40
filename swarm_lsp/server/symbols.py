"""textDocument/documentSymbol and workspace/symbol from the context engine's index."""

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


def register(server: SwarmLanguageServer) -> None:
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
