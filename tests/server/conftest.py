"""pytest-lsp fixtures: the real ``swarm-lsp serve`` over stdio with the real tiny models."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER_CMD = [sys.executable, "-m", "swarm_lsp.cli", "serve"]

# Short generations keep the suite quick; no swarm is needed for the local core.
FAST_OPTIONS: dict[str, Any] = {
    "models": {"completionMaxTokens": 24, "chatMaxTokens": 32},
    "swarm": {"autostart": False},
    "context": {"indexOnStart": False},
}


async def initialize(
    client: LanguageClient, root: Path, options: dict[str, Any] | None = None
) -> types.InitializeResult:
    return await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True),
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities()
                ),
            ),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=FAST_OPTIONS if options is None else options,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD))
async def client(lsp_client: LanguageClient, sample_project: Path) -> AsyncIterator[LanguageClient]:
    result = await initialize(lsp_client, sample_project)
    lsp_client.swarm_init_result = result  # type: ignore[attr-defined]
    yield lsp_client
    await lsp_client.shutdown_session()


def open_doc(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="python",
                version=version,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri
