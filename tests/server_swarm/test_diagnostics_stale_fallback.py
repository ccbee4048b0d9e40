"""Test diagnostics (publish and clear), stale results (rebased and dropped) and the fallback
question (no worker for the role → "Use fast local model")."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from swarm_lsp.workers import diffs
from tests.dispatch.conftest import Swarm, connect
from tests.server_swarm.conftest import Editor, command, edits_for, open_doc, ready, wait_for
from tests.workers.scripted_endpoint import ScriptedEndpoint
from tests.workers.test_refactor import GOOD_DIFF

pytestmark = pytest.mark.slow

GEOMETRY = "shapes/geometry.py"
TESTS = "tests/test_geometry.py"
SPAN = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}


def _change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def _apply(edit: types.WorkspaceEdit, uri: str, text: str) -> tuple[int | None, str]:
    version, edits = edits_for(edit, uri)
    return version, diffs.apply_text_edits(text, edits)


async def test_test_failures_are_published_and_cleared_when_fixed(client: LanguageClient) -> None:
    await ready(client)
    root: Path = client.root  # type: ignore[attr-defined]
    test_uri = (root / TESTS).as_uri()
    result = await command(client, "swarm.runTests", test_uri)
    assert result["passed"] is False and "1 failed" in result["summary"]
    found = await wait_for(lambda: client.diagnostics.get(test_uri), 30, "test diagnostics")
    failing = [d for d in found if d.code == "test-failed"]
    assert len(failing) == 1
    assert failing[0].range.start.line == 13  # def test_perimeter(), 0-based
    assert failing[0].source == "swarm"
    assert "assert 5 == 10" in failing[0].message
    assert all(d.source == "swarm" for diags in client.diagnostics.values() for d in diags)

    # Fix the bug in the editor and save: a debounced run clears the file's diagnostics.
    geometry = root / GEOMETRY
    uri = open_doc(client, geometry)
    fixed = geometry.read_text().replace(
        "return self.width + self.height", "return 2 * (self.width + self.height)"
    )
    _change(client, uri, 2, fixed)
    geometry.write_text(fixed)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await wait_for(
        lambda: list(client.diagnostics.get(test_uri, [None])) == [], 90, "cleared diagnostics"
    )


async def test_quality_findings_ride_along_with_test_runs(client: LanguageClient) -> None:
    await ready(client)
    root: Path = client.root  # type: ignore[attr-defined]
    lint = root / "shapes" / "lint_me.py"
    lint.write_text("import os\n\n\ndef unused_import():\n    return 1\n")
    result = await command(client, "swarm.runTests")
    assert result["quality"]
    found = await wait_for(lambda: client.diagnostics.get(lint.as_uri()), 30, "quality findings")
    assert any(d.code and "F401" in str(d.code) and d.source == "swarm" for d in found), found
    # The test failure is still there: the quality run does not clear it.
    assert client.diagnostics.get((root / TESTS).as_uri())


async def _refactor_while_the_user_types(
    client: LanguageClient, endpoint: ScriptedEndpoint, edit: Callable[[str], str]
) -> tuple[dict[str, Any], str, str]:
    """Refactor ``SPAN`` of ``GEOMETRY``; while the "Apply?" question is open the user changes
    the file to ``edit(its text)`` (version 2), then answers "Apply". The command's result, the
    file's uri and its edited text."""
    endpoint.replies = [GOOD_DIFF]
    editor: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    edited = edit((root / GEOMETRY).read_text())
    editor.before_answer = lambda _question: _change(client, uri, 2, edited)
    editor.answer("Apply")
    result = await command(client, "swarm.refactor", uri, SPAN, "Fix perimeter.")
    return result, uri, edited


async def test_stale_result_is_rebased_over_changes_elsewhere(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    def types_two_lines_at_the_top(original: str) -> str:
        typed = '"""Geometry helpers."""\n# Two lines the user typed\n# while the task ran.\n'
        return typed + original.split("\n", 1)[1]

    result, uri, edited = await _refactor_while_the_user_types(
        client, endpoint, types_two_lines_at_the_top
    )
    assert result["applied"] is True and result["rebased"] is True, result
    (applied,) = client.editor.applied  # type: ignore[attr-defined]
    version, patched = _apply(applied.edit, uri, edited)
    assert version == 2
    assert "# Two lines the user typed\n" in patched
    assert "        return 2 * (self.width + self.height)\n" in patched
    assert "return self.width + self.height\n" not in patched


async def test_stale_result_that_no_longer_applies_is_dropped(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    def fixes_it_first(original: str) -> str:
        return original.replace(
            "return self.width + self.height", "return (self.width + self.height) * 2"
        )

    result, _, _ = await _refactor_while_the_user_types(client, endpoint, fixes_it_first)
    assert result["applied"] is False and result["stale"] is True, result
    assert client.editor.applied == []  # type: ignore[attr-defined]
    warning = await wait_for(
        lambda: [m for m in client.messages if "stale" in m.message], 10, "a stale message"
    )
    assert warning[0].type == types.MessageType.Warning


async def test_no_worker_for_the_role_asks_and_answers_with_the_local_model(
    client: LanguageClient, swarm: Swarm
) -> None:
    await ready(client)
    editor: Editor = client.editor  # type: ignore[attr-defined]
    editor.answer("Use fast local model")
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    result = await command(client, "swarm.review", uri, SPAN)
    (question,) = editor.questions
    assert [a.title for a in question.actions or []] == ["Wait", "Use fast local model"]
    assert "gpu-review" in question.message
    assert result["local"] is True
    assert result["markdown"].strip()
    # The queued task was cancelled.
    async with connect(swarm.address) as dispatch:

        async def cancelled() -> bool:
            status = await dispatch.status(recent=20)
            return any(t.type == "review" and t.state == "CANCELLED" for t in status.recent)

        deadline = asyncio.get_running_loop().time() + 10
        while not await cancelled():
            assert asyncio.get_running_loop().time() < deadline, "review task not cancelled"
            await asyncio.sleep(0.1)


async def test_a_save_time_run_that_cannot_start_is_shown_once(client: LanguageClient) -> None:
    await ready(client)
    root: Path = client.root  # type: ignore[attr-defined]
    shutil.rmtree(root / "tests")  # nothing left to run: the test role finds no runner
    uri = open_doc(client, root / GEOMETRY)

    def failed_runs() -> list[str]:
        return [m.message for m in client.log_messages if "tests after save failed" in m.message]

    for saves in (1, 2):
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        await wait_for(partial(_at_least, failed_runs, saves), 60, f"save-time run {saves}")
    assert "no test runner found" in failed_runs()[0]
    shown = [m for m in client.messages if "could not run" in m.message]
    assert len(shown) == 1, [m.message for m in client.messages]
    assert shown[0].type == types.MessageType.Warning
    assert "no test runner found" in shown[0].message


def _at_least(count: Callable[[], list[str]], n: int) -> bool:
    return len(count()) >= n
