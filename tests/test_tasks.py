"""The shared task types: what the server builds is what the workers read, and results are
read leniently."""

from __future__ import annotations

from swarm_lsp.tasks import (
    DocumentEntry,
    ExplainPayload,
    IndexPayload,
    IndexResult,
    MarkdownResult,
    RefactorPayload,
    RefactorResult,
    ResearchPayload,
    ResearchResult,
    TestPayload,
    TestResult,
)
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.refactor.role import _documents, _target

RANGE = {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}}
GEOMETRY = DocumentEntry(
    path="shapes/geometry.py", uri="file:///p/shapes/geometry.py", version=3, text="x = 1\n"
)


def test_the_refactor_role_reads_the_payload_the_server_builds() -> None:
    payload = RefactorPayload(
        instruction="Fix it.",
        documents=(GEOMETRY,),
        target_path="shapes/geometry.py",
        target_range=RANGE,
        context="ctx",
    ).to_json()
    task = TaskRequest(id="t", type="refactor", payload=payload, snapshot_dir=None)
    (document,) = _documents(task).values()
    assert (document.path, document.version, document.text) == ("shapes/geometry.py", 3, "x = 1\n")
    assert _target(payload) == ("shapes/geometry.py", 21, 23)  # an end at column 0 stops before
    explain = ExplainPayload(
        documents=(GEOMETRY,), target_path="shapes/geometry.py", target_range=RANGE
    )
    assert _target(explain.to_json()) == ("shapes/geometry.py", 21, 23)


def test_payloads_leave_out_what_is_not_set() -> None:
    assert ResearchPayload(question="q").to_json() == {"question": "q", "top_k": 5}
    assert ResearchPayload(question="q", root="/p").to_json()["root"] == "/p"
    opened = ResearchPayload(question="q", open_files=("b.py", "a.py")).to_json()
    assert opened["open_files"] == ["b.py", "a.py"]
    assert IndexPayload(root="/p", open_files=("a.py",)).to_json() == {
        "root": "/p",
        "open_files": ["a.py"],
    }
    assert IndexPayload().to_json() == {}
    assert TestPayload(kind="quality", root="/p").to_json() == {"kind": "quality", "root": "/p"}
    assert DocumentEntry.from_json(GEOMETRY.to_json()) == GEOMETRY


def test_results_are_read_leniently() -> None:
    assert RefactorResult.from_json({}).edit == {}
    assert RefactorResult.from_json({"edit": {"documentChanges": []}, "diff": 3}).diff == ""
    assert MarkdownResult.from_json({"markdown": "# hi", "model": "m"}).markdown == "# hi"
    research = ResearchResult.from_json(
        {"answer": "a", "citations": [{"path": "x.py", "line": "7"}, {"line": 2}, "junk"]}
    )
    assert [c.to_json() for c in research.citations] == [{"path": "x.py", "line": 7}]
    assert IndexResult.from_json({"stats": []}) == IndexResult(summary="indexed", stats={})
    tests = TestResult.from_json({"summary": "1 failed", "diagnostics": [{"path": "a"}, 1]})
    assert tests.passed is False and tests.diagnostics == ({"path": "a"},)
