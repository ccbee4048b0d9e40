"""Index, ask (streamed, with citations) and "Research this symbol" through the research worker
(real all-MiniLM-L6-v2 embeddings, Qdrant Edge and the tiny chat model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.server_swarm.conftest import command, finished, open_doc, ready, start

pytestmark = pytest.mark.slow


async def test_index_ask_and_research_a_symbol(client: LanguageClient) -> None:
    await ready(client)
    root: Path = client.root  # type: ignore[attr-defined]

    indexed = await command(client, "swarm.index", timeout=240)
    assert "indexed" in indexed["summary"] and indexed["stats"]["files_seen"] >= 3

    started = await start(client, "swarm.ask", "How is the perimeter of a rectangle computed?")
    answer = await finished(client, started["taskId"], timeout=240)
    assert answer["answer"].strip()
    assert any(c["path"] == "shapes/geometry.py" for c in answer["citations"]), answer
    assert all(isinstance(c["line"], int) and c["line"] >= 1 for c in answer["citations"])
    reports = client.progress_reports[started["token"]]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    streamed = "".join(
        r.message or "" for r in reports if isinstance(r, types.WorkDoneProgressReport)
    )
    assert streamed.strip(), "the answer streams as progress reports"

    uri = open_doc(client, root / "shapes/geometry.py")
    result = await command(
        client, "swarm.research", uri, {"line": 14, "character": 7}, {"show": True}
    )
    assert result["symbol"] == "Rectangle"
    assert result["answer"].strip() and result["citations"]
    (shown,) = client.shown_documents
    assert "Research `Rectangle`" in Path(shown.uri.removeprefix("file://")).read_text()
