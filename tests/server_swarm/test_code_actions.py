"""Code actions on a selection, lazy resolve into an edit, and background actions that end in
``workspace/applyEdit`` once the user accepts, or in a Markdown document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from swarm_lsp.workers import diffs
from tests.server_swarm.conftest import (
    SWARM_ACTIONS,
    CommandFailed,
    Editor,
    command,
    edits_for,
    finished,
    open_doc,
    ready,
    start,
    wait_for,
)
from tests.workers.scripted_endpoint import ScriptedEndpoint
from tests.workers.test_refactor import BLANK, GOOD_DIFF

pytestmark = pytest.mark.slow

GEOMETRY = "shapes/geometry.py"
PERIMETER = types.Range(
    start=types.Position(line=21, character=0), end=types.Position(line=24, character=0)
)
TESTS_DIFF = f"""Added a test for the area.

```diff
--- a/tests/test_geometry.py
+++ b/tests/test_geometry.py
@@ -13,3 +13,7 @@
{BLANK}
 def test_perimeter():
     assert Rectangle(2, 3).perimeter() == 10
+
+
+def test_area():
+    assert Rectangle(2, 3).area() == 6
```
"""


async def _actions(client: LanguageClient, uri: str) -> dict[str, types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=PERIMETER,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert result is not None
    return {a.title: a for a in result if isinstance(a, types.CodeAction)}


async def test_every_swarm_action_is_offered_on_a_selection(client: LanguageClient) -> None:
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    actions = await _actions(client, uri)
    assert set(actions) == set(SWARM_ACTIONS)
    refactor = actions["Swarm: Refactor…"]
    assert refactor.kind == "refactor.rewrite"  # eglot's exact-match rewrite finds it
    assert refactor.edit is None and refactor.command is None and refactor.data  # resolved lazily
    commands = {title: a.command for title, a in actions.items() if a.command}
    assert {c.command for c in commands.values()} == {
        "swarm.explain",
        "swarm.review",
        "swarm.generateTests",
        "swarm.research",
        "swarm.runTests",
    }
    explain = commands["Swarm: Explain"]
    assert explain.arguments is not None and explain.arguments[0] == uri
    # Standard kinds only, so exact-match clients (eglot 1.9) and prefix filters see them.
    assert {str(a.kind) for a in actions.values()} == {"refactor", "refactor.rewrite"}

    # context.only filters by kind prefix.
    only = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=PERIMETER,
            context=types.CodeActionContext(diagnostics=[], only=["refactor.rewrite"]),
        )
    )
    assert only is not None
    assert [a.title for a in only] == ["Swarm: Refactor…", "Swarm: Generate tests"]
    none = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=PERIMETER,
            context=types.CodeActionContext(diagnostics=[], only=["quickfix"]),
        )
    )
    assert not none


async def test_refactor_action_resolves_into_an_edit_that_applies(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    await ready(client)
    root: Path = client.root  # type: ignore[attr-defined]
    text = (root / GEOMETRY).read_text()
    uri = open_doc(client, root / GEOMETRY, version=4)
    action = (await _actions(client, uri))["Swarm: Refactor…"]
    resolved = await asyncio.wait_for(client.code_action_resolve_async(action), timeout=120)
    assert resolved.edit is not None
    version, edits = edits_for(resolved.edit, uri)
    assert version == 4
    patched = diffs.apply_text_edits(text, edits)
    assert "return 2 * (self.width + self.height)" in patched
    assert "return self.width + self.height\n" not in patched


async def test_refactor_command_answers_at_once_and_applies_after_the_user_accepts(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    editor: Editor = client.editor  # type: ignore[attr-defined]
    editor.answer("Apply")
    root: Path = client.root  # type: ignore[attr-defined]
    text = (root / GEOMETRY).read_text()
    uri = open_doc(client, root / GEOMETRY, version=2)
    span = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
    answer = await start(client, "swarm.refactor", uri, span, "Fix perimeter.")
    assert answer["title"] == "Swarm: Refactor" and answer["token"]
    assert editor.questions == []  # nothing asked yet: the work goes on in the background
    result = await finished(client, answer["taskId"])
    assert result["applied"] is True, result
    assert "perimeter" in result["explanation"]
    (question,) = editor.questions
    assert [a.title for a in question.actions or []] == ["Apply", "Discard"]
    (applied,) = editor.applied
    version, edits = edits_for(applied.edit, uri)
    assert version == 2
    assert "2 * (self.width + self.height)" in diffs.apply_text_edits(text, edits)
    # A server-created progress, cancellable, from begin to end.
    reports = client.progress_reports[answer["token"]]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)


async def test_cancelling_the_progress_cancels_the_work(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    endpoint.delay_s = 30.0  # the worker's big model is slow: the user gives up
    editor: Editor = client.editor  # type: ignore[attr-defined]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    span = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
    try:
        answer = await start(client, "swarm.refactor", uri, span, "Fix perimeter.")
        await wait_for(lambda: client.progress_reports.get(answer["token"]), 30, "progress")
        client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=answer["token"])
        )
        with pytest.raises(CommandFailed, match="cancelled"):
            await finished(client, answer["taskId"], timeout=30)
    finally:
        endpoint.delay_s = 0.0
    assert editor.questions == [] and editor.applied == []
    end = client.progress_reports[answer["token"]][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "cancelled"


async def test_refactor_discarded_applies_nothing(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    editor: Editor = client.editor  # type: ignore[attr-defined]
    editor.answer("Discard")
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    span = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
    result = await command(client, "swarm.refactor", uri, span, "Fix perimeter.")
    assert result["applied"] is False and "discarded" in result["summary"]
    assert editor.applied == []


async def test_generate_tests_edits_the_test_file_after_the_user_accepts(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [TESTS_DIFF]
    editor: Editor = client.editor  # type: ignore[attr-defined]
    editor.answer("Apply")
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    action = (await _actions(client, uri))["Swarm: Generate tests"]
    assert action.command is not None
    result = await command(client, action.command.command, *(action.command.arguments or []))
    assert result["applied"] is True, result
    assert result["file"] == "tests/test_geometry.py"
    (applied,) = editor.applied
    test_uri = (root / "tests/test_geometry.py").as_uri()
    version, edits = edits_for(applied.edit, test_uri)
    assert version is None  # not open in the editor: the file on disk
    patched = diffs.apply_text_edits((root / "tests/test_geometry.py").read_text(), edits)
    assert "def test_area():" in patched and "def test_perimeter():" in patched


async def test_explain_action_opens_a_markdown_answer(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = ["`Rectangle.perimeter` adds width and height once (shapes/geometry.py:22)."]
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY)
    action = (await _actions(client, uri))["Swarm: Explain"]
    assert action.command is not None
    result = await command(client, action.command.command, *(action.command.arguments or []))
    assert "adds width and height once" in result["markdown"]
    assert result["local"] is False
    (shown,) = client.shown_documents
    assert shown.uri.endswith(".md")
    shown_text = Path(shown.uri.removeprefix("file://")).read_text()
    assert "Swarm: Explain" in shown_text and "adds width and height once" in shown_text


async def test_resolve_gives_up_at_its_bound_and_the_refactor_finishes_in_the_background(
    client: LanguageClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    endpoint.delay_s = 0.05  # a few seconds in all: longer than the bound below
    editor: Editor = client.editor  # type: ignore[attr-defined]
    editor.answer("Apply")
    await ready(client)
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"swarm": {"resolveTimeoutMs": 300}})
    )
    root: Path = client.root  # type: ignore[attr-defined]
    uri = open_doc(client, root / GEOMETRY, version=3)
    action = (await _actions(client, uri))["Swarm: Refactor…"]
    try:
        began = asyncio.get_running_loop().time()
        resolved = await asyncio.wait_for(client.code_action_resolve_async(action), timeout=10)
        assert asyncio.get_running_loop().time() - began < 5
        assert resolved.edit is None  # it gave up waiting, and said so
        notice = await wait_for(
            lambda: [m for m in client.messages if "resolveTimeoutMs" in m.message], 10, "notice"
        )
        assert "background" in notice[0].message
        # The work went on: Apply is asked, and the edit arrives as workspace/applyEdit.
        (applied,) = await wait_for(lambda: editor.applied, 120, "the background edit")
        version, _ = edits_for(applied.edit, uri)
        assert version == 3
    finally:
        endpoint.delay_s = 0.0
