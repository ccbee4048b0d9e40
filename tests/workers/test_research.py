"""Research: chunking, the hybrid index in Qdrant Edge, and answers with citations.

Real parts throughout: the packaged all-MiniLM-L6-v2 embedder (int8 ONNX, loaded once per
process), Qdrant Edge on disk under the test's cache, and the packaged SmolLM2 chat model.
Background fills, the old store's migration and crash safety are in test_research_fill.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swarm_lsp.cli import main as cli_main
from swarm_lsp.config import ResearchSettings, Settings
from swarm_lsp.errors import LocalityError, ModelError, WorkerError
from swarm_lsp.workers.base import TaskRequest
from swarm_lsp.workers.refactor.backend import ChatModel
from swarm_lsp.workers.research import chunking, embedder, sparse
from swarm_lsp.workers.research import role as research_role
from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients
from tests.workers.conftest import FIXTURES, RecordingReporter


@pytest.fixture(scope="module", autouse=True)
def loaded_embedder() -> None:
    embedder.load()


@pytest.fixture(autouse=True)
def release_index() -> Iterator[None]:
    yield
    close_local_clients()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    dest = tmp_path / "inventory"
    shutil.copytree(FIXTURES / "inventory", dest)
    return dest


def test_python_chunks_follow_definitions() -> None:
    source = (FIXTURES / "inventory/inventory/stock.py").read_text()
    chunks = chunking.chunk_file("inventory/stock.py", source)
    by_symbol = {c.symbol: c for c in chunks}
    assert set(by_symbol) == {"<module>", "StockLedger", "total_units"}
    lines = source.splitlines()
    total = by_symbol["total_units"]
    assert lines[total.start_line - 1].startswith("def total_units")
    assert total.end_line == len(lines)
    assert by_symbol["StockLedger"].kind == "class"


def test_big_classes_split_into_methods_and_docs_into_sections() -> None:
    methods = "\n".join(
        f"    def method_{i}(self):\n" + "        x = 1\n" * 20 + "        return x\n"
        for i in range(6)
    )
    source = f"class Big:\n    '''Doc.'''\n\n{methods}"
    symbols = [c.symbol for c in chunking.chunk_file("big.py", source)]
    assert symbols[0] == "Big"
    assert "Big.method_0" in symbols and "Big.method_5" in symbols
    # Decorated, the class and its members keep their names (the decorator is in the header).
    decorated = [c for c in chunking.chunk_file("big.py", f"@dataclass\n{source}")]
    assert [c.symbol for c in decorated] == symbols
    assert decorated[0].text.startswith("@dataclass\nclass Big:")
    nested = "\n".join(f"        def step_{i}():\n" + "            pass\n" * 20 for i in range(4))
    source = f"@cache\ndef build():\n{nested}\n        return step_0\n\nDONE = True\n"
    chunks = chunking.chunk_file("build.py", source)
    assert [(c.symbol, c.kind) for c in chunks] == [
        ("build", "function"),
        *((f"build.step_{i}", "function") for i in range(4)),
        ("build", "function"),  # its last line, after the nested definitions
        ("<module>", "module"),
    ]
    assert (chunks[-2].text.strip(), chunks[-1].text) == ("return step_0", "DONE = True")
    # A big class's attributes between its methods are the class's, not the module's.
    others = methods.replace("method_", "other_")
    between = f"class Big:\n{methods}\n    limit = 10\n\n{others}"
    labelled = {c.text.strip(): c.symbol for c in chunking.chunk_file("big.py", between)}
    assert labelled["limit = 10"] == "Big"

    md = chunking.chunk_file(
        "docs/operations.md", (FIXTURES / "inventory/docs/operations.md").read_text()
    )
    assert [c.symbol for c in md] == [
        "Warehouse operations",
        "Warehouse operations > Receiving deliveries",
        "Warehouse operations > Night shift",
    ]
    assert md[1].start_line == 5
    rst = chunking.chunk_file(
        "docs/suppliers.rst", (FIXTURES / "inventory/docs/suppliers.rst").read_text()
    )
    assert [c.symbol for c in rst] == ["Supplier contracts", "Lead times"]
    js = chunking.chunk_file("web/labels.js", (FIXTURES / "inventory/web/labels.js").read_text())
    assert {"formatShippingLabel", "BarcodeRenderer"} <= {c.symbol for c in js}


def test_sparse_terms_split_identifiers() -> None:
    assert sparse.terms("economicOrderQuantity area_of_circle") == [
        "economicorderquantity",
        "economic",
        "order",
        "quantity",
        "area_of_circle",
        "area",
        "circle",
    ]
    indices, values = sparse.document_vector("order order quantity")
    assert len(indices) == 2 and all(v > 0 for v in values)


def test_hybrid_search_finds_the_defining_file(inventory: Path) -> None:
    index = WorkspaceIndex(inventory, Settings())
    stats = index.update()
    assert stats.files_indexed == 8 and stats.skipped == []
    assert stats.points == stats.chunks == stats.dense_points > 10
    top = index.search("How is the economic order quantity computed?", 3)
    assert (top[0].path, top[0].symbol) == ("inventory/reorder.py", "economic_order_quantity")
    assert top[0].start_line == 15
    discount = index.search("discount for large orders", 3)
    assert discount[0].symbol == "apply_bulk_discount"
    docs = index.search("what does the night shift do", 3)
    assert docs[0].path == "docs/operations.md"


def test_reindex_only_what_changed(inventory: Path) -> None:
    index = WorkspaceIndex(inventory, Settings())
    first = index.update()
    first_pricing = index.files()["inventory/pricing.py"].chunks
    labels_chunks = index.files()["web/labels.js"].chunks
    again = index.update()
    assert again.files_indexed == 0 and again.files_unchanged == first.files_indexed
    assert again.points == first.points and again.dense_chunks == 0

    pricing = inventory / "inventory/pricing.py"
    pricing.write_text(
        pricing.read_text() + "\n\ndef shipping_fee(weight_kg: float) -> float:\n"
        '    """Courier fee by parcel weight."""\n    return 4.5 + weight_kg\n'
    )
    (inventory / "web/labels.js").unlink()
    changed = index.update()
    assert changed.files_indexed == 1 and changed.files_removed == 1
    # Only the changed file was chunked and embedded again.
    assert changed.dense_chunks == changed.chunks == index.files()["inventory/pricing.py"].chunks
    expected = first.points - labels_chunks + changed.chunks - first_pricing
    assert index.point_count() == changed.points == changed.dense_points == expected
    hits = index.search("courier fee by parcel weight", 2)
    assert hits[0].symbol == "shipping_fee"
    assert all(
        hit.path != "web/labels.js" for hit in index.search("formatShippingLabel barcode", 10)
    )


def test_binary_huge_and_minified_files_are_skipped_with_reasons(inventory: Path) -> None:
    (inventory / "logo.json").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0" + bytes(range(256)) * 40)
    (inventory / "data.txt").write_text("row\n" * 400_000)  # 1.6 MB, over the 1 MB limit
    (inventory / "bundle.min.js").write_text("var a=1;" * 2000)
    (inventory / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with WorkspaceIndex(inventory, Settings()) as index:
        stats = index.update()
    reasons = dict(stats.skipped)
    assert reasons["logo.json"] == "binary"
    assert reasons["data.txt"].startswith("too large")
    assert "minified" in reasons["bundle.min.js"]
    assert reasons["latin1.txt"] == "not UTF-8 text"
    assert stats.files_indexed == 8


def test_index_path_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(WorkerError, match="no such folder"):
        WorkspaceIndex(tmp_path / "nope", Settings())
    assert cli_main(["index", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_cli_index_then_ask_without_model(
    sample_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["index", "--quiet", str(sample_project)]) == 0
    assert "5 indexed" in capsys.readouterr().out
    question = "which function computes the area of a circle?"
    assert cli_main(["ask", question, "--path", str(sample_project), "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "shapes/geometry.py:7-11 `area_of_circle`" in out


@pytest.mark.slow
async def test_research_task_answers_with_the_local_model_and_cites(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    role = research_role.create(Settings())
    task = TaskRequest(
        id="r1",
        type="research",
        payload={"question": "How is the area of a circle computed?", "top_k": 4},
        snapshot_dir=sample_project,
    )
    result = await role.run(task, reporter)
    assert "shapes/geometry.py:7" in result["answer"]
    cited = {(c["path"], c["symbol"]) for c in result["citations"]}
    assert ("shapes/geometry.py", "area_of_circle") in cited
    assert all(c["line"] >= 1 and c["end_line"] >= c["line"] for c in result["citations"])
    assert result["model"].endswith(".gguf")
    # The sources streamed first, then the model's tokens.
    assert reporter.partials[0][0].startswith("Sources:\n[1] ")
    assert len(reporter.partials) > 3
    assert "area_of_circle" in reporter.partials[0][0]

    index_task = TaskRequest(id="r2", type="index", payload={}, snapshot_dir=sample_project)
    indexed = await role.run(index_task, reporter)
    assert indexed["stats"]["files_unchanged"] == 5 and indexed["stats"]["files_indexed"] == 0
    assert indexed["stats"]["dense_points"] == indexed["stats"]["points"] > 0
    assert any(pct == 100 for _, pct in reporter.progress_messages)
    role.close()


async def test_research_bad_input(tmp_path: Path, reporter: RecordingReporter) -> None:
    role = research_role.create(Settings())
    with pytest.raises(WorkerError, match="non-empty question"):
        await role.run(
            TaskRequest(id="x", type="research", payload={"root": str(tmp_path)}), reporter
        )
    with pytest.raises(WorkerError, match="no snapshot or root"):
        await role.run(TaskRequest(id="x", type="research", payload={"question": "q"}), reporter)
    with pytest.raises(WorkerError, match="no such folder"):
        missing = {"question": "q", "root": str(tmp_path / "missing")}
        await role.run(TaskRequest(id="x", type="research", payload=missing), reporter)
    with pytest.raises(WorkerError, match="top_k"):
        bad_k = {"question": "q", "root": str(tmp_path), "top_k": 0}
        await role.run(TaskRequest(id="x", type="research", payload=bad_k), reporter)


def test_cancelled_indexing_keeps_what_was_written_and_resumes(inventory: Path) -> None:
    index = WorkspaceIndex(inventory, Settings())
    cancel = threading.Event()

    def progress(done: int, total: int, rel: str) -> None:
        if done == 4:
            cancel.set()

    with pytest.raises(WorkerError, match="cancelled after 4 of 8 files"):
        index.update(progress=progress, cancel=cancel)
    partial_points = index.point_count()
    assert partial_points > 0
    resumed = index.update()
    assert resumed.files_unchanged == 4 and resumed.files_indexed == 4
    index.close()
    with WorkspaceIndex(inventory, Settings()) as again:
        fresh = again.update(rebuild=True)
    assert resumed.points == fresh.points


def test_remote_qdrant_must_be_an_owned_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = dataclasses.replace(
        Settings(), research=ResearchSettings(qdrant_url="http://8.8.8.8:6333")
    )
    with pytest.raises(LocalityError, match="not an address you own"):
        WorkspaceIndex(tmp_path, remote)
    assert cli_main(["ask", "anything", "--path", str(tmp_path / "missing")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_two_users_of_one_local_index_take_turns(inventory: Path) -> None:
    first = WorkspaceIndex(inventory, Settings())
    with pytest.raises(WorkerError, match="in use by another process"):
        WorkspaceIndex(inventory, Settings(), lock_wait_s=0.3)
    timer = threading.Timer(0.5, first.close)
    timer.start()
    with WorkspaceIndex(inventory, Settings(), lock_wait_s=10) as second:
        assert second.update().files_indexed == 8
    timer.join()


async def _ask_where_scale_is(
    model: ChatModel, task_id: str, project: Path, reporter: RecordingReporter
) -> dict[str, Any]:
    """The research role with ``model`` answers one question about the sample project."""
    role = research_role.ResearchRole(Settings(), model=model)
    task = TaskRequest(
        id=task_id,
        type="research",
        payload={"question": "Where is scale defined?"},
        snapshot_dir=project,
    )
    try:
        return await role.run(task, reporter)
    finally:
        role.close()


class _BrokenModel:
    """Stands in for a model that fails mid-answer (a crashed llama.cpp cannot be staged)."""

    name = "broken"

    def chat(self, messages: list[dict[str, str]], **kwargs: object) -> str:
        raise ModelError("the model crashed")


async def test_a_failing_model_still_gives_the_sources(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    result = await _ask_where_scale_is(_BrokenModel(), "r3", sample_project, reporter)
    assert "(the model crashed)" in result["answer"] and result["model"] == "none"
    assert "shapes/geometry.py:27-29 `scale`" in result["answer"]


class _LoopingModel:
    """Streams an answer that turns into one endless hyphenated word, as SmolLM2 did on some
    questions (bench/research_stops.py); the real model loops only on particular prompts."""

    name = "looping"

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        on_token: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        **kwargs: object,
    ) -> str:
        pieces = ["The", " scale", " function", " is", " defined", " in", " shapes"]
        pieces += ["-scale"] * 300
        sent = []
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                break
            sent.append(piece)
            if on_token is not None:
                on_token(piece)
        return "".join(sent)


async def test_a_word_that_never_ends_is_neither_streamed_nor_kept(
    sample_project: Path, reporter: RecordingReporter
) -> None:
    result = await _ask_where_scale_is(_LoopingModel(), "r4", sample_project, reporter)
    streamed = "".join(text for text, _ in reporter.partials[1:])  # after the sources
    assert streamed == "The scale function is defined in "  # whole words only
    assert result["answer"].startswith("The scale function is defined in\n\n")
    assert "-scale" not in result["answer"]
    assert result["model"] == "looping"
