"""Roots the way editors give them: a sub-folder of a project, or no folder at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.server.conftest import FAST_OPTIONS, SERVER_CMD, open_doc


def _project(sample_project: Path) -> Path:
    (sample_project / "pyproject.toml").write_text('[project]\nname = "shapes"\n')
    return sample_project


async def _start(client: LanguageClient, root: Path | None) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=root.as_uri() if root else None,
            initialization_options=FAST_OPTIONS,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_CMD))
async def client(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_a_sub_folder_root_widens_to_the_project(
    client: LanguageClient, sample_project: Path
) -> None:
    project = _project(sample_project)
    await _start(client, project / "tests")  # eglot without a VCS root does this
    open_doc(client, project / "shapes" / "geometry.py")
    uri = open_doc(client, project / "tests" / "test_geometry.py")
    found = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=2, character=30),  # Rectangle, defined in shapes/
        )
    )
    assert found and found[0].uri == (project / "shapes" / "geometry.py").as_uri()  # type: ignore[index,union-attr]


async def test_no_folder_takes_the_project_of_the_first_file(
    client: LanguageClient, sample_project: Path
) -> None:
    project = _project(sample_project)
    await _start(client, None)
    open_doc(client, project / "tests" / "test_geometry.py")
    for _ in range(100):
        if any("using the project" in m.message for m in client.log_messages):
            break
        await asyncio.sleep(0.05)
    assert any(str(project) in m.message for m in client.log_messages if "project" in m.message)
    # A test run has a root now: it starts (and reports later) instead of being refused.
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="swarm.runTests", arguments=[])
    )
    assert answer is not None and answer["status"] == "started"
