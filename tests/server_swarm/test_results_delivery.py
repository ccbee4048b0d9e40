"""Results reach clients that cannot show documents: a client that answers
``window/showDocument`` with ``null`` (as eglot does) gets the Markdown as a message, and the
work still ends (a server-to-client request that gets a bad answer never hangs it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from tests.dispatch.conftest import Swarm
from tests.server_swarm.conftest import (
    SERVER_CMD,
    Editor,
    command,
    initialize,
    install_handlers,
    open_doc,
    server_options,
)
from tests.workers.scripted_endpoint import ScriptedEndpoint

pytestmark = pytest.mark.slow


def _null_show_document(client: LanguageClient, params: types.ShowDocumentParams) -> Any:
    client.shown_documents.append(params)
    return None  # what eglot answers to a request it does not know


def _client_answering_null() -> LanguageClient:
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(
        client,
        {**DEFAULT_CLIENT_FEATURES, types.WINDOW_SHOW_DOCUMENT: _null_show_document},
    )
    return client


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER_CMD, client_factory=_client_answering_null)
)
async def null_client(
    lsp_client: LanguageClient, sample_project: Path, swarm: Swarm, endpoint: ScriptedEndpoint
) -> AsyncIterator[LanguageClient]:
    editor = Editor()
    install_handlers(lsp_client, editor)
    await initialize(lsp_client, sample_project, server_options(swarm, endpoint))
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_explain_falls_back_to_a_message_when_show_document_answers_null(
    null_client: LanguageClient, sample_project: Path, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = ["`perimeter` adds width and height once."]
    uri = open_doc(null_client, sample_project / "shapes/geometry.py")
    span = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
    result = await command(null_client, "swarm.explain", uri, span, {"show": True})
    assert "adds width and height once" in result["markdown"]
    assert len(null_client.shown_documents) == 1  # it was asked, answered null
    assert result["shown"] == "message"
    (shown,) = [m for m in null_client.messages if "Swarm: Explain" in m.message]
    assert "adds width and height once" in shown.message and ".md" in shown.message
