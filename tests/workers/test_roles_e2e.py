"""The three roles end to end through a real coordinator and real worker processes on loopback.

One coordinator, a ``thinker`` worker (refactor + research) and a ``tester`` worker (test),
started as ``swarm-lsp coordinator`` / ``swarm-lsp worker`` processes. The refactor worker's big
model is the scripted OpenAI-compatible endpoint on 127.0.0.1 (the tiny default models cannot
write a valid diff); research answers with the packaged SmolLM2 and all-MiniLM-L6-v2; tests run
in the worker's sandbox. Files travel as snapshots, as they would from the editor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from swarm_lsp.demo import __file__ as demo_init
from swarm_lsp.dispatch.client import DispatchClient
from swarm_lsp.workers import diffs
from swarm_lsp.workers.refactor.validate import syntax_errors
from tests.dispatch.conftest import Swarm, connect, wait_for_workers
from tests.workers.roles_swarm import ROLE_ROUTES, roles_swarm
from tests.workers.scripted_endpoint import ScriptedEndpoint, serve
from tests.workers.test_refactor import BAD_CONTEXT_DIFF, GOOD_DIFF, SYNTAX_ERROR_DIFF

pytestmark = pytest.mark.slow

SAMPLE = Path(demo_init).parent / "sample_project"

ROUTING = (
    """
[types]
refactor = "refactor"
explain = "refactor"
review = "refactor"
research = "research"
index = "research"
test = "test"
build = "test"
quality = "test"

"""
    + ROLE_ROUTES
)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ScriptedEndpoint]:
    with serve(ScriptedEndpoint([GOOD_DIFF])) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory, endpoint: ScriptedEndpoint) -> Iterator[Swarm]:
    root = tmp_path_factory.mktemp("roles-e2e")
    # Model and embedder loading keep a worker busy for seconds on a loaded 2-core
    # machine: a generous lease, not the dispatch tests' 1 s failover setting.
    lease = ("--heartbeat-ms", "1000", "--lease-timeout-ms", "30000")
    with roles_swarm(root, ROUTING, endpoint, 64, *lease) as swarm:
        yield swarm


@pytest.fixture
async def client(swarm: Swarm) -> AsyncIterator[DispatchClient]:
    async with connect(swarm.address) as dispatch:
        await wait_for_workers(dispatch, 2)
        yield dispatch


async def test_test_task_reports_the_failing_test_at_its_line(client: DispatchClient) -> None:
    receipt = await client.submit("test", {"kind": "test"}, snapshot=_files(SAMPLE))
    final = await client.wait(receipt.task_id)
    assert final.kind == "final", final.text
    result = final.data
    assert result["passed"] is False and "1 failed, 2 passed" in result["summary"]
    (failing,) = [d for d in result["diagnostics"] if d["code"] == "test-failed"]
    assert (failing["path"], failing["line"]) == ("tests/test_geometry.py", 13)
    assert "assert 5 == 10" in failing["message"]
    assert result["isolation"] in {"bwrap", "unshare", "env"}


async def test_refactor_edit_applies_parses_and_the_patched_snapshot_passes(
    client: DispatchClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [GOOD_DIFF]
    path = "shapes/geometry.py"
    original = (SAMPLE / path).read_text()
    payload = {
        "instruction": "Fix perimeter.",
        "documents": [{"path": path, "uri": f"file:///ws/{path}", "version": 3, "text": original}],
        "target": {
            "path": path,
            "range": {"start": {"line": 21, "character": 0}, "end": {"line": 24, "character": 0}},
        },
    }
    receipt = await client.submit("refactor", payload, complexity="complex")
    results = [r async for r in client.results(receipt.task_id)]
    final = results[-1]
    assert final.kind == "final", final.text
    assert any(r.kind == "partial" and r.text for r in results[:-1]), "model tokens stream back"
    (change,) = final.data["edit"]["documentChanges"]
    assert change["textDocument"] == {"uri": f"file:///ws/{path}", "version": 3}
    patched = diffs.apply_text_edits(original, change["edits"])
    assert syntax_errors(patched, "python") == []
    assert "2 * (self.width + self.height)" in patched

    # Verified refactor: the patched snapshot goes to the test worker and the tests pass.
    files = _files(SAMPLE)
    files[path] = patched.encode()
    check = await client.submit("test", {"kind": "test"}, snapshot=files)
    verified = await client.wait(check.task_id)
    assert verified.data["passed"] is True, verified.data["summary"]


async def test_broken_diffs_from_the_model_fail_the_task_with_the_reason(
    client: DispatchClient, endpoint: ScriptedEndpoint
) -> None:
    endpoint.replies = [BAD_CONTEXT_DIFF, SYNTAX_ERROR_DIFF]
    path = "shapes/geometry.py"
    payload = {
        "instruction": "Fix perimeter.",
        "documents": [
            {
                "path": path,
                "uri": "file:///ws/g.py",
                "version": 1,
                "text": (SAMPLE / path).read_text(),
            }
        ],
    }
    receipt = await client.submit("refactor", payload)
    final = await client.wait(receipt.task_id)
    assert final.kind == "error"
    assert "DiffValidationError" in final.text and "failed validation twice" in final.text
    assert "does not apply" in final.text and "syntax error" in final.text


async def test_research_answer_cites_the_defining_file(client: DispatchClient) -> None:
    payload = {
        "question": "Where is the area of a circle computed?",
        "root": "/ws/sample",
        "top_k": 4,
    }
    receipt = await client.submit("research", payload, snapshot=_files(SAMPLE))
    results = [r async for r in client.results(receipt.task_id)]
    final = results[-1]
    assert final.kind == "final", final.text
    assert "shapes/geometry.py:7" in final.data["answer"]
    assert ("shapes/geometry.py", "area_of_circle") in {
        (c["path"], c["symbol"]) for c in final.data["citations"]
    }
    assert any(r.kind == "partial" for r in results)

    # The next task of the same workspace reuses the index: nothing is embedded again.
    again = await client.submit("index", {"root": "/ws/sample"}, snapshot=_files(SAMPLE))
    stats = (await client.wait(again.task_id)).data["stats"]
    assert stats["files_indexed"] == 0 and stats["files_unchanged"] == 5


async def test_cancel_reaches_the_sandboxed_test_run(
    client: DispatchClient, tmp_path: Path
) -> None:
    marker = "swarm-e2e-hang-marker"
    hang = [sys.executable, "-c", f"import time  # {marker}\ntime.sleep(600)"]
    receipt = await client.submit(
        "test", {"kind": "test", "command": hang}, snapshot=_files(SAMPLE)
    )
    async for result in client.results(receipt.task_id):
        if result.kind == "progress" and result.text.startswith("running"):
            break
    await asyncio.sleep(0.5)
    started = time.monotonic()
    await client.cancel(receipt.task_id)
    final = await client.wait(receipt.task_id)
    assert final.kind == "error" and final.error_code == "CANCELLED"
    assert time.monotonic() - started < 10
    await asyncio.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert marker not in ps.stdout, "the sandboxed process outlived its cancelled task"
