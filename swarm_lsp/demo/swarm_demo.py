"""The demo's swarm steps, through the server's own swarm of one (child processes on loopback).

4. a refactor code action on a selection, resolved into the refactor worker's edit;
5. research: index the project, then ask, with citations;
6. tests: a run on a test worker, diagnostics published back into the editor.
"""

from __future__ import annotations

import time
from typing import Any

from lsprotocol import types

PERIMETER = "def perimeter"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _get(value: Any, name: str, default: Any = None) -> Any:
    if isinstance(value, dict):
        return value.get(name, default)
    return getattr(value, name, default)


def _apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos: types.Position) -> int:
        return offsets[min(pos.line, len(lines))] + pos.character

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


async def refactor_step(session: Any, out: Any) -> None:
    import difflib

    out.section("4. Refactor (code action → codeAction/resolve → refactor worker)")
    uri, text = session.open("shapes/geometry.py")
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if PERIMETER in line)
    selection = types.Range(types.Position(first, 0), types.Position(first + 3, 0))
    out.line(f"  selected shapes/geometry.py lines {first + 1}-{first + 3}:")
    out.block("\n".join(lines[first : first + 3]))
    actions = await session.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=selection,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    titles = [a.title for a in actions or []]
    out.line("  code actions offered: " + ", ".join(titles))
    refactor = next(
        (a for a in actions or [] if isinstance(a, types.CodeAction) and "Refactor" in a.title),
        None,
    )
    if refactor is None:
        out.line("  (no refactor action offered)")
        return
    start = time.perf_counter()
    try:
        resolved = await session.client.code_action_resolve_async(refactor)
    except Exception as err:  # the demo reports what a user would see
        failed_after = _ms(time.perf_counter() - start)
        out.line(f"  the refactor worker answered with an error after {failed_after}:")
        out.block(str(err))
        return
    took = time.perf_counter() - start
    changes = resolved.edit.document_changes if resolved.edit else None
    edits = [
        e
        for change in changes or []
        if isinstance(change, types.TextDocumentEdit)
        for e in change.edits
        if isinstance(e, types.TextEdit)
    ]
    if not edits:
        out.line(f"  no edit came back ({_ms(took)}): {resolved.title}")
        return
    new_text = _apply(text, edits)
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            "a/shapes/geometry.py",
            "b/shapes/geometry.py",
        )
    )
    out.line(f"  WorkspaceEdit from the refactor worker, validated (applies, parses), {_ms(took)}:")
    out.block(diff.rstrip("\n"))
    out.line("  (the default refactor model is a 135M-parameter one: point models.endpointUrl at a")
    out.line("   big model on one of your machines for refactors worth applying)")


async def research_step(session: Any, out: Any) -> None:
    out.section("5. Research (index → ask, answered with citations)")
    start = time.perf_counter()
    try:
        indexed = await session.run_command("swarm.index")
        index_time = _ms(time.perf_counter() - start)
        out.line(f"  swarm.index: {_get(indexed, 'summary', indexed)} ({index_time})")
        question = "Which function computes the area of a circle?"
        out.line(f"  swarm.ask: {question}")
        start = time.perf_counter()
        answer = await session.run_command("swarm.ask", question)
    except Exception as err:  # the demo reports what a user would see
        out.line(f"  research failed: {err}")
        return
    took = time.perf_counter() - start
    out.block(str(_get(answer, "answer", "")).strip())
    cites = [f"{_get(c, 'path')}:{_get(c, 'line')}" for c in _get(answer, "citations", []) or []]
    out.line(f"  citations: {', '.join(cites) or '(none)'} ({_ms(took)})")


async def test_step(session: Any, out: Any) -> None:
    out.section("6. Tests (swarm.runTests → test worker → publishDiagnostics)")
    start = time.perf_counter()
    try:
        result = await session.run_command("swarm.runTests")
    except Exception as err:  # the demo reports what a user would see
        out.line(f"  test run failed: {err}")
        return
    took = time.perf_counter() - start
    out.line(f"  {_get(result, 'summary', result)} ({_ms(took)})")
    shown = 0
    for uri, diagnostics in sorted(session.diagnostics.items()):
        for diag in diagnostics:
            rel = uri.split(session.root.name + "/", 1)[-1]
            message = diag.message.strip().splitlines()[0] if diag.message.strip() else ""
            out.line(f"  {rel}:{diag.range.start.line + 1}: [{diag.source}] {message}")
            shown += 1
    if not shown:
        out.line("  (no diagnostics published)")


async def run(session: Any, out: Any) -> None:
    await refactor_step(session, out)
    await research_step(session, out)
    await test_step(session, out)
