"""Research index: sparse first, dense filled in the background, the old store, crashes.

Real parts: Qdrant Edge on disk under the test's cache, the packaged MiniLM (int8 ONNX), and a
real ``kill -9`` of a real indexing process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swarm_lsp.config import Settings
from swarm_lsp.workers.research import chunking, embedder
from swarm_lsp.workers.research.index import WorkspaceIndex, close_local_clients
from swarm_lsp.workers.research.workspace import Workspace
from tests.workers.conftest import FIXTURES

REPO = Path(__file__).resolve().parents[2]


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


def test_a_query_during_the_background_fill_gets_sparse_hits_and_says_so(
    inventory: Path,
) -> None:
    workspace = Workspace.open(inventory, Settings(), None)
    stats = workspace.index.update(dense=False)
    assert stats.points == stats.chunks > 10 and stats.dense_points == 0
    with workspace.paused():  # the fill starts but waits before its first batch
        workspace.start_fill()
        hits = workspace.index.search("How is the economic order quantity computed?", 3)
        assert hits.partial and hits.coverage == 0.0
        assert "0% complete" in hits.note()
        assert (hits[0].path, hits[0].symbol) == (
            "inventory/reorder.py",
            "economic_order_quantity",
        )
    assert workspace.wait(120)
    assert workspace.error == ""
    full = workspace.index.search("How is the economic order quantity computed?", 3)
    assert not full.partial and full.note() == ""
    assert full[0].symbol == "economic_order_quantity"
    cover = workspace.index.coverage()
    assert cover.dense_points == cover.points == workspace.index.point_count()
    workspace.close()


def test_reindex_after_one_changed_file_touches_only_that_file(inventory: Path) -> None:
    workspace = Workspace.open(inventory, Settings(), None)
    workspace.index.update(dense=False)
    workspace.start_fill()
    assert workspace.wait(120)
    before = workspace.index.files()
    stock = inventory / "inventory/stock.py"
    stock.write_text(stock.read_text() + "\n\ndef audit_trail():\n    return []\n")
    stats = workspace.index.update(dense=False)
    assert (stats.files_indexed, stats.files_unchanged) == (1, len(before) - 1)
    after = workspace.index.files()
    assert [rel for rel in after if after[rel] != before[rel]] == ["inventory/stock.py"]
    assert workspace.index.missing_dense() == ["inventory/stock.py"]
    embedded = workspace.index.fill_dense()
    assert embedded == after["inventory/stock.py"].chunks == stats.chunks
    workspace.close()


def test_an_index_made_by_the_old_store_is_rebuilt(inventory: Path) -> None:
    from qdrant_client import QdrantClient, models

    from swarm_lsp import paths

    # What the previous version left: a Qdrant local-mode collection and its manifest.
    old = paths.workspace_cache_dir(inventory) / "qdrant"
    client = QdrantClient(path=str(old))
    client.create_collection(
        "swarm_code",
        vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)},
    )
    client.upsert(
        "swarm_code",
        points=[
            models.PointStruct(id=1, vector={"dense": [1.0, 0.0, 0.0, 0.0]}, payload={"path": "x"})
        ],
    )
    client.close()
    (old / "manifest-swarm_code.json").write_text('{"version": "old", "files": {"x": "0"}}')
    assert (old / "collection" / "swarm_code").is_dir()

    with WorkspaceIndex(inventory, Settings()) as index:
        stats = index.update()
        assert any("rebuilt" in w for w in stats.warnings)
        assert stats.files_indexed == 8 and stats.points == stats.dense_points == stats.chunks
        assert index.search("discount for large orders", 3)[0].symbol == "apply_bulk_discount"
    assert not (old / "collection" / "swarm_code").exists()
    assert not (old / "manifest-swarm_code.json").exists()
    with WorkspaceIndex(inventory, Settings()) as again:
        assert again.update().files_unchanged == 8  # migrated once, then kept


def test_an_index_made_with_another_embedder_is_embedded_again(inventory: Path) -> None:
    was = embedder.pieces()
    other = "all" if was == "words" else "words"
    try:
        with WorkspaceIndex(inventory, Settings()) as index:
            first = index.update()
            assert first.dense_points == first.points == first.chunks > 0
        embedder.configure(pieces=other)  # another model id: the stored vectors do not fit
        with WorkspaceIndex(inventory, Settings()) as index:
            again = index.update()
            assert again.files_indexed == first.files_indexed and again.files_unchanged == 0
            assert again.dense_points == again.points == first.points
            assert index.point_count() == first.points  # replaced, not added
            assert index.search("discount for large orders", 3)[0].symbol == "apply_bulk_discount"
    finally:
        embedder.configure(pieces=was)


def test_the_words_pieces_drop_punctuation_within_the_cap() -> None:
    from swarm_lsp.workers.research.embedder import _Pieces

    pieces = _Pieces(8, words=True)
    vocab = pieces.tokenizer.get_vocab()
    [ids] = pieces.ids(["def total(self) -> int: return sum(i.price for i in self.items)"])
    words = [pieces.tokenizer.id_to_token(int(i)) for i in ids]
    assert words == ["[CLS]", "def", "total", "self", "int", "return", "sum", "[SEP]"]
    assert len(ids) == 8 and vocab["("] not in ids
    [short] = pieces.ids(["a.b"])
    assert [pieces.tokenizer.id_to_token(int(i)) for i in short] == ["[CLS]", "a", "b", "[SEP]"]
    # "all" keeps every piece and cuts at the cap.
    [every] = _Pieces(8, words=False).ids(["def total(self) -> int: return sum(i.price)"])
    assert len(every) == 8 and vocab["("] in every


CRASHING_INDEXER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from swarm_lsp.config import Settings
    from swarm_lsp.workers.research import fill, index

    index.BATCH_CHUNKS = 8  # many small writes: the kill lands between (or inside) them
    index.MANIFEST_SAVE_S = 0.0
    fill.DENSE_BATCH_CHUNKS = 8
    phase = sys.argv[2]
    # After ten manifest saves the manifest stops moving while points are still written:
    # the kill then always leaves points the manifest does not know of (the worst case).
    saves = [0]
    save = index.WorkspaceIndex._save_manifest

    def stalling_save(self, force=False):
        saves[0] += 1
        if saves[0] <= 10:
            save(self, force=True)

    index.WorkspaceIndex._save_manifest = stalling_save
    fill = index.WorkspaceIndex.fill_dense

    def fill_dense(self, **kwargs):
        saves[0] = 0  # the dense phase stalls after its own first ten saves
        return fill(self, **kwargs)

    index.WorkspaceIndex.fill_dense = fill_dense
    ix = index.WorkspaceIndex(Path(sys.argv[1]), Settings())

    def report(done, total, rel):
        print(phase, done, flush=True)

    ix.update(
        dense=phase == "dense",
        progress=report if phase == "sparse" else None,
        dense_progress=report,
    )
    print("finished", flush=True)
    """
)


def _corpus(root: Path, files: int) -> None:
    for n in range(files):
        package = root / f"pkg{n % 10}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module_{n}.py").write_text(
            f'def compute_{n}(value):\n    """Scale value number {n}."""\n'
            f"    return value * {n}\n\n"
            f"class Holder{n}:\n    def get(self):\n        return {n}\n"
        )


@pytest.mark.parametrize("phase", ["sparse", "dense"])
def test_edge_data_survives_a_kill_during_indexing(tmp_path: Path, phase: str) -> None:
    root = tmp_path / "corpus"
    _corpus(root, 240)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_INDEXER, str(root), phase],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    killed_at = None
    for line in proc.stdout:
        word, _, count = line.partition(" ")
        if word == phase and int(count) >= (100 if phase == "sparse" else 80):
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = int(count)
            break
    proc.wait(timeout=60)
    assert killed_at is not None, "the indexer finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL

    with WorkspaceIndex(root, Settings()) as index:
        files = index.files()
        assert files, "nothing of the run before the kill survived"
        # Every file the manifest lists has all its points (and dense vectors if it says so).
        for rel, entry in files.items():
            assert index.store.count(path=rel) == entry.chunks, rel
            if entry.dense:
                assert index.store.count(path=rel, dense=True) == entry.chunks, rel
        if phase == "dense":
            assert 0 < index.coverage().dense_points < index.coverage().points
        # Files the manifest does not know have points from the killed run: move their lines,
        # so stale points (other ids) would show up as extra points after the resume.
        for path in root.rglob("*.py"):
            if path.relative_to(root).as_posix() not in files:
                path.write_text("import os\n\n" + path.read_text())
        stats = index.update()
        assert stats.files_seen == 240
        # Resumed: no duplicates, nothing missing, every point has its dense vector.
        cover = index.coverage()
        expected = sum(
            len(chunking.chunk_file(p.relative_to(root).as_posix(), p.read_text()))
            for p in root.rglob("*.py")
        )
        assert index.point_count() == cover.points == cover.dense_points == expected


@pytest.mark.slow
async def test_cli_index_and_ask_go_through_a_running_swarms_research_worker(
    sample_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from swarm_lsp.cli import main as cli_main
    from swarm_lsp.dispatch.local_swarm import LocalSwarm
    from swarm_lsp.workers.research import role as research_role

    async def not_here(*args: object) -> dict[str, object]:
        raise AssertionError("answered in the CLI process, not by the swarm's worker")

    swarm = LocalSwarm(roles=("research",))
    address = await swarm.start()
    try:
        monkeypatch.setenv("SWARM_LSP_SWARM__COORDINATOR", address)
        monkeypatch.setattr(research_role.ResearchRole, "run", not_here)
        monkeypatch.setattr(WorkspaceIndex, "update", not_here)
        index = ["index", "--quiet", str(sample_project)]
        assert await asyncio.to_thread(cli_main, index) == 0
        indexed = capsys.readouterr().out
        assert "by the swarm's research worker" in indexed and "5 indexed" in indexed
        question = "How is the area of a circle computed?"
        code = await asyncio.to_thread(cli_main, ["ask", question, "--path", str(sample_project)])
        out = capsys.readouterr().out
        assert code == 0, out
        # The sources streamed first, from the worker.
        assert out.startswith("Sources:\n[1] ")
        assert "shapes/geometry.py:7-11 `area_of_circle`" in out
    finally:
        await swarm.stop()


def test_each_chunk_gets_the_vector_it_gets_alone() -> None:
    texts = ["def add(a, b):\n    return a + b\n" * 6, "x", "class Cart:\n    pass", "y = 2"]
    calls = []
    together = embedder.embed(texts, between=lambda: calls.append(1))
    alone = [embedder.embed([text])[0] for text in texts]
    assert calls == [1]  # before each step: where a fill pauses or stops
    for mine, single in zip(together, alone, strict=True):
        assert sum(a * b for a, b in zip(mine, single, strict=True)) > 0.9999
    # Batches (asked for) group texts of the same length, never padded; int8 activations are
    # quantized per batch, so a batch's vectors move a little (cosine 0.97-1.0).
    texts += ["z = 3"]  # as long as "y = 2": the two run together
    alone.append(embedder.embed([texts[-1]])[0])
    batched = embedder.embed(texts, batch_size=2)
    for n, mine in enumerate(batched):
        cosines = [sum(a * b for a, b in zip(mine, single, strict=True)) for single in alone]
        assert cosines[n] > 0.95 and cosines[n] == max(cosines)


def test_a_stream_hands_over_groups_in_order_and_a_cancel_drops_what_is_queued() -> None:
    from swarm_lsp.workers.research.fill import Cancelled
    from swarm_lsp.workers.research.stream import STEP, EmbedStream

    seen: list[tuple[int, list[list[float]]]] = []
    stream = EmbedStream()
    groups = [["def a(): pass", "x = 1", "class B: pass"], [f"text {n}" for n in range(40)], []]

    def keep(n: int) -> Callable[[list[list[float]]], None]:
        return lambda vectors: seen.append((n, vectors))

    for n, group in enumerate(groups):
        stream.add(group, keep(n))
    stream.finish()
    assert [(n, len(vectors)) for n, vectors in seen] == [(0, 3), (1, 40), (2, 0)]
    # Each text gets the vector it gets alone, whatever its group and step.
    assert embedder.embed(["x = 1"])[0] == seen[0][1][1]
    assert embedder.embed(["text 39"])[0] == seen[1][1][39]

    steps = 0

    def between() -> None:
        nonlocal steps
        steps += 1
        if steps == 3:
            raise Cancelled

    handed: list[list[list[float]]] = []
    stream = EmbedStream(between)
    with pytest.raises(Cancelled):
        stream.add([f"chunk {n}" for n in range(5 * STEP)], handed.append)
    stream.abort()
    assert steps == 3 and handed == []


def test_a_fill_after_the_sparse_side_plans_from_the_last_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swarm_lsp import threads

    monkeypatch.setattr(threads, "METER", threads.CpuMeter())  # no samples yet
    # Without a sample a quarter second old, a plan falls back to the minute's load average.
    assert threads.METER.busy_elsewhere() is None
    monkeypatch.setattr(threads, "METER", threads.CpuMeter())
    embedder.preload()  # the sparse writer's first step, even with the model loaded already
    time.sleep(threads.CpuMeter.MIN_WINDOW_S)  # the sparse side being written
    assert threads.METER.busy_elsewhere() is not None  # the fill's first step plans from it
