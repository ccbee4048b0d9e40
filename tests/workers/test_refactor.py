"""Refactor: diff parsing and application, our OpenAI-compatible client, validation and retry.

The success path uses a scripted OpenAI-compatible server on 127.0.0.1 in place of the big
model (the tiny default models cannot write a valid diff); the tiny packaged GGUF still runs
through the whole path once (``test_tiny_gguf_runs_the_whole_path``).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_lsp.config import ModelSettings, Settings
from swarm_lsp.errors import DiffValidationError, LocalityError, ModelError, WorkerError
from swarm_lsp.models.openai_http import OpenAIEndpoint
from swarm_lsp.workers import diffs
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.refactor import role as refactor_role
from swarm_lsp.workers.refactor.validate import Document, syntax_errors, validate
from swarm_lsp.workers.testing import role as test_role
from tests.workers.conftest import RecordingReporter
from tests.workers.scripted_endpoint import ScriptedEndpoint, serve

BLANK = " "  # a context line that is empty in the file
GOOD_DIFF = f"""I fixed the perimeter: it must count each side twice.

```diff
--- a/shapes/geometry.py
+++ b/shapes/geometry.py
@@ -21,6 +21,6 @@
{BLANK}
     def perimeter(self) -> float:
-        # Bug on purpose: the demo's test run reports it.
-        return self.width + self.height
+        # Each side appears twice.
+        return 2 * (self.width + self.height)
{BLANK}
{BLANK}
```
"""

BAD_CONTEXT_DIFF = """```diff
--- a/shapes/geometry.py
+++ b/shapes/geometry.py
@@ -22,3 +22,3 @@
     def perimeter(self) -> float:
-        return self.width * self.height * 2
+        return 2 * (self.width + self.height)
```
"""

SYNTAX_ERROR_DIFF = """```diff
--- a/shapes/geometry.py
+++ b/shapes/geometry.py
@@ -22,3 +22,3 @@
     def perimeter(self) -> float:
         # Bug on purpose: the demo's test run reports it.
-        return self.width + self.height
+        return 2 * (self.width + self.height
```
"""

OUT_OF_SCOPE_DIFF = """--- a/shapes/report.py
+++ b/shapes/report.py
@@ -1,1 +1,1 @@
-\"\"\"Format a short report about shapes.\"\"\"
+\"\"\"Format a long report about shapes.\"\"\"
"""


def _refactor_task(project: Path, **extra: Any) -> TaskRequest:
    path = "shapes/geometry.py"
    text = (project / path).read_text()
    payload = {
        "instruction": "Fix perimeter so it returns the real perimeter.",
        "documents": [{"path": path, "uri": (project / path).as_uri(), "version": 7, "text": text}],
        "target": {
            "path": path,
            "range": {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}},
        },
        "context": "tests/test_geometry.py: assert Rectangle(2, 3).perimeter() == 10",
        **extra,
    }
    return TaskRequest(id="rf-1", type="refactor", payload=payload, snapshot_dir=project)


def _endpoint_settings(url: str) -> Settings:
    return dataclasses.replace(
        Settings(), models=ModelSettings(endpoint_url=url, endpoint_model="big-coder")
    )


# -- diffs --------------------------------------------------------------------------------


def test_apply_tolerates_wrong_line_numbers_but_not_wrong_content() -> None:
    text = "".join(f"line {i}\n" for i in range(1, 41))
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -5,3 +5,3 @@\n line 20\n-line 21\n+LINE 21\n line 22\n"
    (patch,) = diffs.parse_unified_diff(diff)
    assert diffs.apply_patch(text, patch) == text.replace("line 21\n", "LINE 21\n")
    wrong = diff.replace("-line 21", "-line 99")
    with pytest.raises(DiffValidationError, match=r"does not apply.*expected 'line 99'"):
        diffs.apply_patch(text, diffs.parse_unified_diff(wrong)[0])
    with pytest.raises(DiffValidationError, match="no unified diff"):
        diffs.parse_unified_diff("Sure! Here is the code:\nreturn 2 * x")


def test_extract_diff_from_fenced_and_bare_replies() -> None:
    diff, explanation = diffs.extract_diff(GOOD_DIFF)
    assert diff.startswith("--- a/shapes/geometry.py") and "perimeter" in explanation
    bare, rest = diffs.extract_diff(f"Here it is.\n{OUT_OF_SCOPE_DIFF}\nDone.")
    assert bare.startswith("--- a/shapes/report.py") and rest == "Here it is.\nDone."


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a\n", "b\n", "é😀\n", "\n", "x = 1\n", "tail"]), max_size=12),
    st.lists(st.sampled_from(["a\n", "c\n", "😀\n", "\n", "y = 2\n", "end"]), max_size=12),
)
def test_text_edits_turn_old_into_new(old_parts: list[str], new_parts: list[str]) -> None:
    old, new = "".join(old_parts), "".join(new_parts)
    assert diffs.apply_text_edits(old, diffs.text_edits(old, new)) == new


def test_unified_diff_round_trips_through_apply() -> None:
    old = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    new = old.replace("return 2", "return 3")
    (patch,) = diffs.parse_unified_diff(diffs.unified_diff("m.py", old, new))
    assert diffs.apply_patch(old, patch) == new


def test_validation_rejects_new_syntax_errors_and_out_of_scope_files(sample_project: Path) -> None:
    path = "shapes/geometry.py"
    text = (sample_project / path).read_text()
    documents = {path: Document(path, "file:///g.py", 1, text)}
    with pytest.raises(DiffValidationError, match=r"new syntax error at line 2[45]"):
        validate(diffs.extract_diff(SYNTAX_ERROR_DIFF)[0], documents)
    with pytest.raises(DiffValidationError, match=r"shapes/report\.py, which is not in scope"):
        validate(OUT_OF_SCOPE_DIFF, documents)
    patched = validate(diffs.extract_diff(GOOD_DIFF)[0], documents)
    assert "2 * (self.width + self.height)" in patched[path]
    assert syntax_errors(patched[path], "python") == []


# -- the HTTP client ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_client_chat_streaming_and_not(stream: bool) -> None:
    with serve(ScriptedEndpoint(["Hello from the big model."])) as endpoint:
        client = OpenAIEndpoint(endpoint.url, model="big-coder")
        tokens: list[str] = []
        result = client.chat(
            [{"role": "user", "content": "hi"}],
            max_tokens=20,
            on_token=tokens.append,
            stream=stream,
        )
        completion = client.complete("def f(", max_tokens=5, stop=["\n"], stream=stream)
    assert result.text == "Hello from the big model." and result.stop_reason == "stop"
    assert "".join(tokens) == result.text and (len(tokens) > 1) == stream
    assert completion.text == "Hello from the big model."
    chat_request, completion_request = endpoint.requests
    assert chat_request["_path"] == "/v1/chat/completions" and chat_request["model"] == "big-coder"
    assert chat_request["stream"] is stream and chat_request["max_tokens"] == 20
    assert completion_request["_path"] == "/v1/completions" and completion_request["stop"] == ["\n"]


def test_client_cancel_errors_and_locality() -> None:
    with serve(ScriptedEndpoint(["x" * 400], chunk_size=4, delay_s=0.01)) as endpoint:
        cancel = threading.Event()
        seen: list[str] = []

        def on_token(piece: str) -> None:
            seen.append(piece)
            if len(seen) == 5:
                cancel.set()

        result = OpenAIEndpoint(f"{endpoint.url}/v1").chat(
            [{"role": "user", "content": "go"}], max_tokens=500, cancel=cancel, on_token=on_token
        )
        assert result.stop_reason == "cancelled" and len(result.text) == 20
    with (
        serve(ScriptedEndpoint(["unused"], status=500)) as failing,
        pytest.raises(ModelError, match=r"HTTP 500"),
    ):
        OpenAIEndpoint(failing.url).chat([{"role": "user", "content": "hi"}], max_tokens=5)
    with pytest.raises(LocalityError, match="not an address you own"):
        OpenAIEndpoint("http://8.8.8.8:8080").chat(
            [{"role": "user", "content": "hi"}], max_tokens=5
        )
    with pytest.raises(ModelError, match="cannot reach"):
        OpenAIEndpoint("http://127.0.0.1:9").chat([{"role": "user", "content": "hi"}], max_tokens=5)
    with pytest.raises(ModelError, match="not an http"):
        OpenAIEndpoint("ftp://127.0.0.1")


# -- the role --------------------------------------------------------------------------------


async def test_refactor_returns_a_versioned_edit_that_applies_parses_and_passes_tests(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    original = (sample_project / "shapes/geometry.py").read_text()
    with serve(ScriptedEndpoint([GOOD_DIFF])) as endpoint:
        verify = refactor_role.snapshot_verifier(test_role.create(Settings()), sample_project)
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url), verify=verify)
        result = await role.run(_refactor_task(sample_project), reporter)
    assert result["attempts"] == 1 and result["files"] == ["shapes/geometry.py"]
    (change,) = result["edit"]["documentChanges"]
    assert change["textDocument"] == {
        "uri": (sample_project / "shapes/geometry.py").as_uri(),
        "version": 7,
    }
    patched = diffs.apply_text_edits(original, change["edits"])
    assert "return 2 * (self.width + self.height)" in patched
    assert syntax_errors(patched, "python") == []
    assert result["diff"].startswith("--- a/shapes/geometry.py")
    assert "perimeter" in result["explanation"]
    # Verified refactor: the test role ran the patched snapshot and the failing test now passes.
    assert result["verified"] == {"passed": True, "summary": result["verified"]["summary"]}
    assert "0 failed, 3 passed" in result["verified"]["summary"]
    assert (sample_project / "shapes/geometry.py").read_text() == original  # snapshot untouched
    assert "".join(t for t, _ in reporter.partials).count("2 * (self.width") == 1  # streamed
    (request,) = endpoint.requests
    assert request["stream"] is True
    assert "Fix perimeter" in request["messages"][-1]["content"]


async def test_broken_diff_is_caught_and_the_retry_gets_the_error(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    with serve(ScriptedEndpoint([BAD_CONTEXT_DIFF, GOOD_DIFF])) as endpoint:
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url))
        result = await role.run(_refactor_task(sample_project), reporter)
    assert result["attempts"] == 2 and result["verified"] is None
    retry = endpoint.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": BAD_CONTEXT_DIFF}
    assert (
        "does not apply" in retry[-1]["content"]
        and "self.width * self.height * 2" in retry[-1]["content"]
    )
    assert any(data and "validation_error" in data for _, data in reporter.partials)


async def test_two_broken_diffs_are_reported(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    with serve(ScriptedEndpoint([SYNTAX_ERROR_DIFF, OUT_OF_SCOPE_DIFF])) as endpoint:
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url))
        with pytest.raises(
            DiffValidationError,
            match=r"failed validation twice: \(1\).*syntax error.*\(2\).*not in scope",
        ):
            await role.run(_refactor_task(sample_project), reporter)


async def test_explain_and_review_return_markdown_with_references(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    replies = [
        "`perimeter` adds width and height once.",
        "- shapes/geometry.py:24 counts each side once.",
    ]
    with serve(ScriptedEndpoint(replies)) as endpoint:
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url))
        explain = await role.run(
            dataclasses.replace(_refactor_task(sample_project), type="explain"), reporter
        )
        review = await role.run(
            dataclasses.replace(_refactor_task(sample_project), type="review"), reporter
        )
    assert explain["markdown"].endswith("References: shapes/geometry.py:22-24")
    assert review["markdown"] == replies[1]
    # The model saw numbered lines so it can cite them.
    assert (
        "   22|     def perimeter(self) -> float:"
        in endpoint.requests[0]["messages"][-1]["content"]
    )


async def test_refactor_bad_input(sample_project: Path, reporter: RecordingReporter) -> None:
    role = refactor_role.RefactorRole(Settings(), model=None)
    with pytest.raises(WorkerError, match="needs documents"):
        await role.run(TaskRequest(id="x", type="refactor", payload={"instruction": "x"}), reporter)
    outside = {"instruction": "x", "target": {"path": "../../etc/passwd"}}
    with pytest.raises(WorkerError, match="not a file in the snapshot"):
        await role.run(
            TaskRequest(id="x", type="refactor", payload=outside, snapshot_dir=sample_project),
            reporter,
        )
    with pytest.raises(WorkerError, match="needs an instruction"):
        await role.run(
            dataclasses.replace(_refactor_task(sample_project, instruction="")), reporter
        )


@pytest.mark.slow
async def test_tiny_gguf_runs_the_whole_path(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    """The packaged SmolLM2-135M cannot write a valid diff; either outcome must be clean."""
    # One llama.cpp thread: on a shared 2-core machine its spinning thread barrier is what
    # makes two threads slow, not the model.
    settings = dataclasses.replace(Settings(), models=ModelSettings(n_threads=1))
    role = refactor_role.create(settings)
    task = _refactor_task(sample_project, max_tokens=128)
    try:
        result = await role.run(task, reporter)
    except DiffValidationError as err:
        assert "failed validation twice" in str(err)
        attempts = [data["attempt"] for _, data in reporter.partials if data and "attempt" in data]
        assert attempts == [1, 2]
    else:
        assert result["edit"]["documentChanges"] and result["model"].endswith(".gguf")
    assert reporter.text.strip()  # the model's tokens streamed


async def test_verify_flag_runs_the_tests_on_the_worker_without_a_hook(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    with serve(ScriptedEndpoint([GOOD_DIFF])) as endpoint:
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url))
        result = await role.run(_refactor_task(sample_project, verify=True), reporter)
    assert result["verified"]["passed"] is True
    assert "0 failed, 3 passed" in result["verified"]["summary"]


NEW_TEST_FILE_DIFF = """```diff
--- /dev/null
+++ b/tests/test_report.py
@@ -0,0 +1,5 @@
+from shapes.geometry import Rectangle
+from shapes.report import describe_rectangle
+
+def test_describe_rectangle():
+    assert describe_rectangle(Rectangle(1, 2)).startswith("1 x 2")
```
"""


async def test_new_file_sent_as_an_empty_document_can_be_created(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    report = "shapes/report.py"
    new_uri = (sample_project / "tests/test_report.py").as_uri()
    payload = {
        "instruction": "Write tests for describe_rectangle in tests/test_report.py.",
        "documents": [
            {
                "path": report,
                "uri": "file:///r.py",
                "version": 2,
                "text": (sample_project / report).read_text(),
            },
            {"path": "tests/test_report.py", "uri": new_uri, "version": None, "text": ""},
        ],
    }
    with serve(ScriptedEndpoint([NEW_TEST_FILE_DIFF])) as endpoint:
        role = refactor_role.RefactorRole(_endpoint_settings(endpoint.url))
        result = await role.run(
            TaskRequest(id="gen", type="refactor", payload=payload, snapshot_dir=sample_project),
            reporter,
        )
    create, edit = result["edit"]["documentChanges"]
    assert create == {"kind": "create", "uri": new_uri, "options": {"ignoreIfExists": True}}
    assert edit["textDocument"] == {"uri": new_uri, "version": None}
    text = diffs.apply_text_edits("", edit["edits"])
    assert text.startswith("from shapes.geometry import Rectangle\n")
    assert "def test_describe_rectangle" in text and result["files"] == ["tests/test_report.py"]


def test_rewrite_helpers_reindent_and_extract() -> None:
    from swarm_lsp.workers.refactor.role import extract_code, splice_selection

    text = "class A:\n    def f(self):\n        return 1\n\nx = 2\n"
    code, prose = extract_code("Here:\n```python\ndef f(self):\n    return 2\n```\nDone.")
    assert code == "def f(self):\n    return 2" and prose == "Done."
    out = splice_selection(text, 1, 2, code)
    assert out == "class A:\n    def f(self):\n        return 2\n\nx = 2\n"
    assert extract_code("no fence")[0] == "no fence"


async def test_small_local_model_rewrites_the_selection_and_is_validated(
    sample_project: Path,
) -> None:
    """Without an endpoint the tiny GGUF rewrites the selection; the role makes the diff and
    validates it exactly like a model's diff: it applies and parses, or it is refused."""
    from swarm_lsp.config import Settings
    from swarm_lsp.errors import DiffValidationError
    from swarm_lsp.workers.base import TaskRequest
    from swarm_lsp.workers.refactor.role import create

    path = "shapes/geometry.py"
    text = (sample_project / path).read_text()
    first = next(i for i, line in enumerate(text.splitlines()) if "def perimeter" in line)
    task = TaskRequest(
        id="rw",
        type="refactor",
        payload={
            "instruction": "Add a docstring to this method.",
            "documents": [{"path": path, "uri": "file:///p/" + path, "version": 3, "text": text}],
            "target": {
                "path": path,
                "range": {
                    "start": {"line": first, "character": 0},
                    "end": {"line": first + 3, "character": 0},
                },
            },
            "max_tokens": 160,
        },
    )

    class Quiet:
        async def partial(self, text: str, data: dict | None = None) -> None: ...

        async def progress(self, message: str, percentage: int | None = None) -> None: ...

    try:
        result = await create(Settings()).run(task, Quiet())
    except DiffValidationError as err:
        assert "validation" in str(err)
        return
    assert result["diff"].startswith(f"--- a/{path}")
    change = result["edit"]["documentChanges"][0]
    assert change["textDocument"]["version"] == 3
