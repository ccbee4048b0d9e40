"""A workspace's vector index in Qdrant: incremental indexing and hybrid search.

Storage: Qdrant local mode on disk under ``paths.workspace_cache_dir(root)/qdrant`` by default,
or a Qdrant server at ``research.qdrantUrl`` (checked by the locality guard first). Each point
is one :class:`~.chunking.Chunk` with a dense vector (all-MiniLM-L6-v2) and a sparse BM25
vector (:mod:`.sparse`); search fuses the two with Qdrant's query API (two prefetches, RRF).

Incremental: a manifest (path → content hash) beside the index says what is already in it; a
run re-chunks and re-embeds only files whose hash changed and deletes the points of files that
are gone. The manifest is saved after every batch, so an interrupted run resumes where it
stopped. Local mode is exact search and slows down past about 20,000 points: writes are
batched, and a Qdrant server is the answer for bigger trees.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.errors import WorkerError
from swarm_lsp.workers.research import chunking, embedder, sparse

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "dist",
        "build",
        "target",
        ".swarm-report",
    }
)
BATCH_CHUNKS = 128
MAX_LINE_CHARS = 5000  # longer lines mean minified or generated files
PAYLOAD_TEXT_CHARS = 4000
LOCAL_MODE_WARN_POINTS = 20_000
INDEX_VERSION = f"{embedder.MODEL_NAME}/chunker-{chunking.CHUNKER_VERSION}/sparse-1"

ProgressCallback = Callable[[int, int, str], None]


@dataclasses.dataclass
class IndexStats:
    """What one indexing run did."""

    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks: int = 0
    points: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        return data


@dataclasses.dataclass(frozen=True)
class Hit:
    """One retrieved chunk."""

    path: str
    start_line: int
    end_line: int
    symbol: str
    kind: str
    score: float
    text: str

    def citation(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.start_line,
            "end_line": self.end_line,
            "symbol": self.symbol,
            "score": round(self.score, 4),
        }


LOCK_WAIT_S = 30.0

_open_clients: set[Any] = set()
_open_lock = threading.Lock()


def _open_local(path: Path, wait_s: float) -> Any:
    """A local-mode client of ``path``, waiting up to ``wait_s`` for another user to finish.

    Local mode locks its folder for one client at a time (across processes and within one):
    a CLI run and a worker, or two tasks of one workspace, take turns.
    """
    from qdrant_client import QdrantClient

    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client = QdrantClient(path=str(path))
        except RuntimeError as err:
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"the index at {path} is in use by another process ({err}); "
                    "try again when it is done, or point research.qdrantUrl at a Qdrant server"
                ) from err
            time.sleep(0.2)
            continue
        with _open_lock:
            _open_clients.add(client)
        return client


@atexit.register
def close_local_clients() -> None:
    """Close every local-mode client still open in this process (tests and CLI exit)."""
    with _open_lock:
        clients = list(_open_clients)
        _open_clients.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()


def file_problem(path: Path, max_bytes: int) -> str | None:
    """Why ``path`` should not be indexed, or None. Reads at most the first 8 KiB."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return f"too large ({size} bytes, limit {max_bytes})"
        with path.open("rb") as handle:
            head = handle.read(8192)
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if b"\0" in head:
        return "binary"
    return None


class WorkspaceIndex:
    """The index of one workspace folder."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        identity: str | None = None,
        lock_wait_s: float = LOCK_WAIT_S,
    ) -> None:
        """``identity`` names the workspace when ``root`` is a per-task snapshot folder, so
        the same index is found again for the next task of that workspace."""
        if not root.exists():
            raise WorkerError(f"cannot index {root}: no such folder")
        if not root.is_dir():
            raise WorkerError(f"cannot index {root}: not a folder")
        self.root = root.resolve()
        self.settings = settings
        self.cache_dir = paths.workspace_cache_dir(Path(identity) if identity else self.root)
        research = settings.research
        self.collection = research.collection
        self.remote = bool(research.qdrant_url)
        if self.remote:
            from swarm_lsp.dispatch.locality import check_peer

            check_peer(research.qdrant_url, settings.swarm.allowed_hosts)
            from qdrant_client import QdrantClient

            # One server holds many workspaces: one collection each.
            self.collection = f"{research.collection}-{self.cache_dir.name}"
            self.client: Any = QdrantClient(url=research.qdrant_url, timeout=30)
            self.manifest_path = self.cache_dir / f"manifest-{self.collection}.json"
        else:
            store = (
                Path(research.qdrant_path) if research.qdrant_path else self.cache_dir / "qdrant"
            )
            self.client = _open_local(store, lock_wait_s)
            self.manifest_path = store / f"manifest-{self.collection}.json"
        self.max_file_bytes = settings.context.max_file_bytes

    def close(self) -> None:
        """Release the index (local mode: its folder lock) for other processes and tasks."""
        with _open_lock:
            _open_clients.discard(self.client)
        with contextlib.suppress(Exception):
            self.client.close()

    def __enter__(self) -> WorkspaceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifest -------------------------------------------------------------------------

    def _load_manifest(self) -> dict[str, str]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return {}
        files = data.get("files")
        return dict(files) if isinstance(files, dict) else {}

    def _save_manifest(self, files: dict[str, str]) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": INDEX_VERSION, "files": files}), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    # -- collection -----------------------------------------------------------------------

    def _ensure_collection(self, reset: bool) -> None:
        from qdrant_client import models

        exists = self.client.collection_exists(self.collection)
        if exists and reset:
            self.client.delete_collection(self.collection)
            exists = False
        if not exists:
            self.client.create_collection(
                self.collection,
                vectors_config={
                    "dense": models.VectorParams(
                        size=embedder.DIMENSIONS, distance=models.Distance.COSINE
                    )
                },
                sparse_vectors_config={
                    "sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            if self.remote:  # local mode has no payload indexes
                self.client.create_payload_index(
                    self.collection, "path", models.PayloadSchemaType.KEYWORD
                )

    def _delete_paths(self, rels: list[str]) -> None:
        from qdrant_client import models

        if not rels:
            return
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[models.FieldCondition(key="path", match=models.MatchAny(any=rels))]
                )
            ),
            wait=True,
        )

    def point_count(self) -> int:
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection, exact=True).count)

    # -- indexing -------------------------------------------------------------------------

    def walk(self) -> Iterator[Path]:
        """Files under the root, sorted, skipping VCS, caches, dependencies and hidden dirs."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
            )
            for name in sorted(filenames):
                yield Path(dirpath) / name

    def update(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> IndexStats:
        """Bring the index up to date with the files on disk; returns what was done."""
        start = time.perf_counter()
        stats = IndexStats()
        manifest = {} if rebuild else self._load_manifest()
        if not manifest and self.point_count():
            rebuild = True  # points without a manifest: start clean rather than duplicate
        self._ensure_collection(reset=rebuild)
        if rebuild:
            manifest = {}
            self._save_manifest(manifest)

        candidates: list[tuple[Path, str]] = []
        for path in self.walk():
            rel = path.relative_to(self.root).as_posix()
            if path.is_symlink() or not chunking.is_indexable(rel):
                continue
            candidates.append((path, rel))
        stats.files_seen = len(candidates)
        seen: set[str] = set()
        pending_files: dict[str, str] = {}
        pending_chunks: list[chunking.Chunk] = []

        def flush() -> None:
            if not pending_files:
                return
            self._delete_paths([rel for rel in pending_files if rel in manifest])
            self._write(pending_chunks)
            stats.chunks += len(pending_chunks)
            manifest.update(pending_files)
            self._save_manifest(manifest)
            pending_files.clear()
            pending_chunks.clear()

        for done, (path, rel) in enumerate(candidates, start=1):
            if cancel is not None and cancel.is_set():
                flush()
                raise WorkerError(f"indexing cancelled after {done - 1} of {len(candidates)} files")
            if progress is not None:
                progress(done, len(candidates), rel)
            problem = file_problem(path, self.max_file_bytes)
            if problem is None:
                data = path.read_bytes()
                try:
                    source = data.decode("utf-8")
                except UnicodeDecodeError:
                    problem = "not UTF-8 text"
                else:
                    if any(len(line) > MAX_LINE_CHARS for line in source.splitlines()):
                        problem = f"lines over {MAX_LINE_CHARS} characters (minified?)"
            if problem is not None:
                stats.skipped.append((rel, problem))
                continue
            seen.add(rel)
            digest = hashlib.sha256(data).hexdigest()
            if manifest.get(rel) == digest:
                stats.files_unchanged += 1
                continue
            try:
                chunks = chunking.chunk_file(rel, source)
            except Exception as err:  # a grammar bug must not stop the whole run
                stats.skipped.append((rel, f"could not be chunked: {err}"))
                continue
            stats.files_indexed += 1
            pending_files[rel] = digest
            pending_chunks.extend(chunks)
            if len(pending_chunks) >= BATCH_CHUNKS:
                flush()
        flush()
        removed = sorted(set(manifest) - seen)
        if removed:
            self._delete_paths(removed)
            for rel in removed:
                manifest.pop(rel, None)
            self._save_manifest(manifest)
        stats.files_removed = len(removed)
        stats.points = self.point_count()
        if not self.remote and stats.points > LOCAL_MODE_WARN_POINTS:
            stats.warnings.append(
                f"{stats.points} points in Qdrant local mode: search and writes slow down past "
                f"{LOCAL_MODE_WARN_POINTS}; set research.qdrantUrl to a Qdrant server"
            )
        stats.seconds = time.perf_counter() - start
        return stats

    def _write(self, chunks: list[chunking.Chunk]) -> None:
        from qdrant_client import models

        if not chunks:
            return
        dense = embedder.embed([f"{c.path}: {c.symbol}\n{c.text}" for c in chunks])
        points = []
        for number, (chunk, vector) in enumerate(zip(chunks, dense, strict=True)):
            indices, values = sparse.document_vector(f"{chunk.path} {chunk.symbol}\n{chunk.text}")
            key = f"{chunk.path}#{chunk.start_line}-{chunk.end_line}#{number}#{chunk.symbol}"
            points.append(
                models.PointStruct(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
                    vector={
                        "dense": vector,
                        "sparse": models.SparseVector(indices=indices, values=values),
                    },
                    payload={
                        "path": chunk.path,
                        "symbol": chunk.symbol,
                        "kind": chunk.kind,
                        "start_line": chunk.start_line,
                        "end_line": chunk.end_line,
                        "language": chunk.language,
                        "text": chunk.text[:PAYLOAD_TEXT_CHARS],
                    },
                )
            )
        for first in range(0, len(points), 256):
            self.client.upsert(self.collection, points=points[first : first + 256], wait=True)

    # -- search ---------------------------------------------------------------------------

    def search(self, question: str, top_k: int = 5, *, mode: str = "hybrid") -> list[Hit]:
        """Hybrid search: dense and sparse prefetches fused by reciprocal rank.

        ``mode`` ``dense`` or ``sparse`` runs one side alone (for comparisons in benchmarks).
        """
        from qdrant_client import models

        if not question.strip():
            raise WorkerError("the question is empty")
        if not self.client.collection_exists(self.collection):
            raise WorkerError(f"{self.root} is not indexed yet: run `swarm-lsp index {self.root}`")
        top_k = max(1, min(int(top_k), 50))
        dense = embedder.embed([question])[0]
        indices, values = sparse.query_vector(question)
        sparse_query = models.SparseVector(indices=indices, values=values)
        if mode == "dense" or (mode == "sparse" and not indices):
            response = self.client.query_points(
                self.collection, query=dense, using="dense", limit=top_k, with_payload=True
            )
        elif mode == "sparse":
            response = self.client.query_points(
                self.collection, query=sparse_query, using="sparse", limit=top_k, with_payload=True
            )
        else:
            prefetch = [models.Prefetch(query=dense, using="dense", limit=top_k * 4)]
            if indices:
                prefetch.append(
                    models.Prefetch(query=sparse_query, using="sparse", limit=top_k * 4)
                )
            response = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=top_k,
                with_payload=True,
            )
        hits = []
        for point in response.points:
            payload = point.payload or {}
            hits.append(
                Hit(
                    path=str(payload.get("path", "")),
                    start_line=int(payload.get("start_line", 1)),
                    end_line=int(payload.get("end_line", 1)),
                    symbol=str(payload.get("symbol", "")),
                    kind=str(payload.get("kind", "")),
                    score=float(point.score),
                    text=str(payload.get("text", "")),
                )
            )
        return hits
