"""documentSymbol and workspace/symbol through the server, including unsaved edits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.server.conftest import open_doc


async def test_document_symbols_are_hierarchical(
    client: LanguageClient, sample_project: Path
) -> None:
    uri = open_doc(client, sample_project / "shapes" / "geometry.py")
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert symbols is not None
    by_name = {s.name: s for s in symbols if isinstance(s, types.DocumentSymbol)}
    assert by_name["area_of_circle"].kind == types.SymbolKind.Function
    rect = by_name["Rectangle"]
    assert rect.kind == types.SymbolKind.Class
    assert {c.name for c in rect.children or []} >= {"area", "perimeter"}


async def test_unsaved_definition_reaches_workspace_symbols(
    client: LanguageClient, sample_project: Path
) -> None:
    uri = open_doc(client, sample_project / "shapes" / "report.py")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(0, 0), types.Position(0, 0)),
                    text="def brand_new_helper(x):\n    return x\n\n\n",
                )
            ],
        )
    )
    found: Sequence[Any] = []
    for _ in range(40):  # the refresh is debounced: poll until it lands
        await asyncio.sleep(0.25)
        found = (
            await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="brand_new"))
            or []
        )
        if found:
            break
    assert [s.name for s in found] == ["brand_new_helper"]
    assert found[0].location.uri.endswith("shapes/report.py")  # type: ignore[union-attr]


async def test_definition_across_files(client: LanguageClient, sample_project: Path) -> None:
    open_doc(client, sample_project / "shapes" / "geometry.py")  # indexed when opened
    uri = open_doc(client, sample_project / "tests" / "test_geometry.py")
    found: Sequence[Any] = []
    for _ in range(40):  # indexing an opened document is debounced
        answer = await client.text_document_definition_async(
            types.DefinitionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=2, character=30),  # "Rectangle" in the import
            )
        )
        found = [answer] if isinstance(answer, types.Location) else list(answer or [])
        if found:
            break
        await asyncio.sleep(0.25)
    (location,) = found
    assert isinstance(location, types.Location)
    assert location.uri == (sample_project / "shapes" / "geometry.py").as_uri()
    assert location.range.start.line == 14  # class Rectangle:, 0-based
