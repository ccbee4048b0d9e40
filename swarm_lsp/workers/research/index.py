"""A workspace's research index: sparse first, dense filled in, hybrid search over both.

Storage: Qdrant Edge in process (:class:`~.store.EdgeStore`) under
``paths.workspace_cache_dir(root)/qdrant/edge-<collection>`` by default, or a Qdrant server at
``research.qdrantUrl`` (checked by the locality guard first). Each point is one
:class:`~.chunking.Chunk`.

Two phases, so the index answers in seconds and completes in the background:

1. :meth:`WorkspaceIndex.update` walks the tree and writes every changed file's chunks with
   their sparse BM25 vectors (:mod:`.sparse`, no neural model): the index is searchable now.
2. :meth:`WorkspaceIndex.fill_dense` adds dense vectors (:mod:`.fill`, :mod:`.embedder`), files
   in the order it is given (see :mod:`.priority`: open, recently edited and central files first).

Search fuses the sparse side with whatever dense vectors exist (reciprocal rank fusion in the
engine) and says how complete the dense side is (:attr:`Hits.coverage`).

Incremental and crash-safe: a manifest (path → content hash, chunk count, dense done) beside the
store says what is in it. It is written after the points it describes, so after a crash a file
is at worst done again; points of a file whose manifest entry is missing or stale are deleted
before the file is written again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.errors import WorkerError
from swarm_lsp.workers.research import chunking, embedder, fill, sparse
from swarm_lsp.workers.research.fill import DENSE_BATCH_CHUNKS as DENSE_BATCH_CHUNKS
from swarm_lsp.workers.research.fill import dense_text as dense_text
from swarm_lsp.workers.research.records import Coverage, FileEntry, Hit, Hits, IndexStats
from swarm_lsp.workers.research.store import EdgeStore, ServerStore, StoredPoint, VectorStore

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
BATCH_CHUNKS = 512
MAX_LINE_CHARS = 5000  # longer lines mean minified or generated files
PAYLOAD_TEXT_CHARS = 4000
MANIFEST_SAVE_S = 1.0
LOCK_WAIT_S = 30.0

ProgressCallback = Callable[[int, int, str], None]


def index_version() -> str:
    """What the stored points were made with; another version means a rebuild."""
    return f"{embedder.model_id()}/chunker-{chunking.CHUNKER_VERSION}/sparse-1/edge-1"


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


def point_id(chunk: chunking.Chunk, ordinal: int) -> int:
    """A stable 63-bit id of a chunk (its file's points are replaced together)."""
    key = f"{chunk.path}#{ordinal}#{chunk.start_line}-{chunk.end_line}#{chunk.symbol}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


_open_indexes: set[WorkspaceIndex] = set()
_open_lock = threading.Lock()


def close_local_clients() -> None:
    """Close every index still open in this process (tests and CLI exit)."""
    with _open_lock:
        indexes = list(_open_indexes)
        _open_indexes.clear()
    for index in indexes:
        index.close()


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
        self.snapshot = identity is not None
        self.cache_dir = paths.workspace_cache_dir(Path(identity) if identity else self.root)
        research = settings.research
        self.collection = research.collection
        self.remote = bool(research.qdrant_url)
        self.migrated = False
        self._lock = threading.RLock()
        self.store: VectorStore
        if self.remote:
            from swarm_lsp.dispatch.locality import check_peer

            check_peer(research.qdrant_url, settings.swarm.allowed_hosts)
            # One server holds many workspaces: one collection each.
            self.collection = f"{research.collection}-{self.cache_dir.name}"
            self.store = ServerStore(research.qdrant_url, self.collection, embedder.DIMENSIONS)
            self.manifest_path = self.cache_dir / f"manifest-{self.collection}.json"
        else:
            base = Path(research.qdrant_path) if research.qdrant_path else self.cache_dir / "qdrant"
            self.migrated = _remove_local_mode(base, self.collection)
            self.store = EdgeStore(
                base / f"edge-{self.collection}", embedder.DIMENSIONS, wait_s=lock_wait_s
            )
            self.manifest_path = base / f"edge-manifest-{self.collection}.json"
        self.max_file_bytes = settings.context.max_file_bytes
        self._files = self._load_manifest()
        self._saved_at = 0.0
        self._closed = False
        with _open_lock:
            _open_indexes.add(self)

    def close(self) -> None:
        """Save the manifest and release the store (its folder lock) for other processes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self.store.flush()
                self._save_manifest(force=True)
            finally:
                self.store.close()
        with _open_lock:
            _open_indexes.discard(self)

    def __enter__(self) -> WorkspaceIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifest -------------------------------------------------------------------------

    def _load_manifest(self) -> dict[str, FileEntry]:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != index_version():
            return {}
        files = data.get("files")
        if not isinstance(files, dict):
            return {}
        try:
            return {rel: FileEntry(**entry) for rel, entry in files.items()}
        except TypeError:
            return {}

    def _save_manifest(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at < MANIFEST_SAVE_S:
            return
        self._saved_at = now
        files = {rel: dataclasses.asdict(entry) for rel, entry in self._files.items()}
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": index_version(), "files": files}), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def files(self) -> dict[str, FileEntry]:
        with self._lock:
            return dict(self._files)

    def coverage(self) -> Coverage:
        with self._lock:
            entries = list(self._files.values())
        return Coverage(
            files=len(entries),
            points=sum(e.chunks for e in entries),
            dense_points=sum(e.chunks for e in entries if e.dense),
        )

    def point_count(self) -> int:
        return self.store.count()

    # -- phase 1: sparse ------------------------------------------------------------------

    def walk(self) -> Iterator[Path]:
        """Files under the root, sorted, skipping VCS, caches, dependencies and hidden dirs."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
            )
            for name in sorted(filenames):
                yield Path(dirpath) / name

    def _read(self, path: Path) -> tuple[str | None, bytes, str | None]:
        """(source, bytes, problem)."""
        problem = file_problem(path, self.max_file_bytes)
        if problem is not None:
            return None, b"", problem
        data = path.read_bytes()
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, data, "not UTF-8 text"
        if any(len(line) > MAX_LINE_CHARS for line in source.splitlines()):
            return None, data, f"lines over {MAX_LINE_CHARS} characters (minified?)"
        return source, data, None

    def update(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        dense: bool = True,
        dense_progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Bring the index up to date with the files on disk; returns what was done.

        With ``dense`` (the default) the dense vectors are filled in before it returns;
        without, only the sparse side is brought up to date (:meth:`fill_dense` does the rest).
        """
        start = time.perf_counter()
        stats = IndexStats()
        if self.migrated:
            stats.warnings.append(
                "the old Qdrant local-mode index was replaced by a Qdrant Edge index (rebuilt)"
            )
            self.migrated = False
        with self._lock:
            if rebuild or (not self._files and self.store.count()):
                # Points without a manifest: start clean rather than duplicate.
                self.store.clear()
                self._files = {}
                self._save_manifest(force=True)
            known = dict(self._files)
        if not known or not all(entry.dense for entry in known.values()):
            embedder.preload()  # a dense fill follows: the model loads while this walks

        candidates: list[tuple[Path, str]] = []
        for path in self.walk():
            rel = path.relative_to(self.root).as_posix()
            if path.is_symlink() or not chunking.is_indexable(rel):
                continue
            candidates.append((path, rel))
        stats.files_seen = len(candidates)
        seen: set[str] = set()
        pending: dict[str, FileEntry] = {}
        pending_chunks: list[tuple[chunking.Chunk, int]] = []

        def flush() -> None:
            if not pending:
                return
            embedder.preload()  # new chunks: a dense fill follows
            with self._lock:
                # Every pending file, known or not: a run killed after writing points but
                # before saving the manifest left points the manifest does not know of.
                self.store.delete_paths(list(pending))
                self.store.upsert([_sparse_point(chunk, n) for chunk, n in pending_chunks])
                self._files.update(pending)
                self._save_manifest()
            stats.chunks += len(pending_chunks)
            pending.clear()
            pending_chunks.clear()

        for done, (path, rel) in enumerate(candidates, start=1):
            if cancel is not None and cancel.is_set():
                flush()
                self._save_manifest(force=True)
                raise WorkerError(f"indexing cancelled after {done - 1} of {len(candidates)} files")
            if progress is not None:
                progress(done, len(candidates), rel)
            entry = known.get(rel)
            try:
                st = path.stat()
            except OSError:
                continue
            if (
                entry is not None
                and not self.snapshot
                and entry.mtime_ns == st.st_mtime_ns
                and entry.size == st.st_size
            ):
                seen.add(rel)
                stats.files_unchanged += 1
                continue
            source, data, problem = self._read(path)
            if problem is not None or source is None:
                stats.skipped.append((rel, problem or "unreadable"))
                continue
            seen.add(rel)
            digest = hashlib.sha256(data).hexdigest()
            if entry is not None and entry.hash == digest:
                stats.files_unchanged += 1
                if entry.mtime_ns != st.st_mtime_ns or entry.size != st.st_size:
                    with self._lock:
                        entry.mtime_ns, entry.size = st.st_mtime_ns, st.st_size
                continue
            try:
                chunks = chunking.chunk_file(rel, source)
            except Exception as err:  # a grammar bug must not stop the whole run
                stats.skipped.append((rel, f"could not be chunked: {err}"))
                continue
            stats.files_indexed += 1
            pending[rel] = FileEntry(digest, len(chunks), False, st.st_mtime_ns, st.st_size)
            pending_chunks.extend((chunk, n) for n, chunk in enumerate(chunks))
            if len(pending_chunks) >= BATCH_CHUNKS:
                flush()
        flush()
        with self._lock:
            removed = sorted(set(self._files) - seen)
            if removed:
                self.store.delete_paths(removed)
                for rel in removed:
                    self._files.pop(rel, None)
            self._save_manifest(force=True)
        stats.files_removed = len(removed)
        stats.sparse_seconds = time.perf_counter() - start
        if dense:
            stats.dense_chunks = self.fill_dense(progress=dense_progress, cancel=cancel)
        cover = self.coverage()
        stats.points, stats.dense_points = cover.points, cover.dense_points
        stats.seconds = time.perf_counter() - start
        return stats

    # -- phase 2: dense (:mod:`.fill`) -----------------------------------------------------

    def missing_dense(self, order: Sequence[str] = ()) -> list[str]:
        """Files whose chunks still lack dense vectors, ``order`` first, then by path."""
        return fill.missing_dense(self, order)

    def fill_dense(
        self,
        *,
        order: Sequence[str] | Callable[[], Sequence[str]] = (),
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        may_run: Callable[[], None] | None = None,
    ) -> int:
        """Embed every chunk that has no dense vector yet; returns how many were embedded
        (:func:`.fill.fill_dense`)."""
        return fill.fill_dense(self, order=order, progress=progress, cancel=cancel, may_run=may_run)

    def optimize(self) -> None:
        """Build the engine's HNSW index over what is stored (after a big fill)."""
        self.store.optimize()

    # -- search ---------------------------------------------------------------------------

    def search(self, question: str, top_k: int = 5, *, mode: str = "hybrid") -> Hits:
        """Hybrid search: dense and sparse prefetches fused by reciprocal rank.

        Dense runs only over the chunks that have dense vectors (none at all before the fill
        starts); ``mode`` ``dense`` or ``sparse`` runs one side alone (for benchmarks).
        """
        if not question.strip():
            raise WorkerError("the question is empty")
        cover = self.coverage()
        if not cover.files and not self.store.count():
            raise WorkerError(f"{self.root} is not indexed yet: run `swarm-lsp index {self.root}`")
        top_k = max(1, min(int(top_k), 50))
        dense_query = None
        if mode != "sparse" and cover.dense_points:
            dense_query = embedder.embed_query(question)
        sparse_query = None if mode == "dense" else sparse.query_vector(question)
        if mode == "sparse" and not (sparse_query and sparse_query[0]) and cover.dense_points:
            dense_query = embedder.embed_query(question)  # no usable words: fall back
        found = self.store.query(dense_query, sparse_query, top_k)
        hits = Hits(
            Hit(
                path=str(p.payload.get("path", "")),
                start_line=int(p.payload.get("start_line", 1)),
                end_line=int(p.payload.get("end_line", 1)),
                symbol=str(p.payload.get("symbol", "")),
                kind=str(p.payload.get("kind", "")),
                score=p.score,
                text=str(p.payload.get("text", "")),
            )
            for p in found
        )
        hits.coverage = cover.fraction
        return hits


def _sparse_point(chunk: chunking.Chunk, ordinal: int) -> StoredPoint:
    return StoredPoint(
        id=point_id(chunk, ordinal),
        payload={
            "path": chunk.path,
            "symbol": chunk.symbol,
            "kind": chunk.kind,
            "start_line": chunk.start_line,
            "end_line": chunk.end_line,
            "language": chunk.language,
            "text": chunk.text[:PAYLOAD_TEXT_CHARS],
        },
        sparse=sparse.document_vector(f"{chunk.path} {chunk.symbol}\n{chunk.text}"),
    )


def _remove_local_mode(base: Path, collection: str) -> bool:
    """Remove an index made by the old store (Qdrant local mode) in ``base``; True if found.

    Its vectors came from another embedder set-up, so they are not reused: the Edge index
    is rebuilt from the files (sparse in seconds, dense in the background).
    """
    old = base / "collection" / collection
    old_manifest = base / f"manifest-{collection}.json"
    if not old.exists() and not old_manifest.exists():
        return False
    shutil.rmtree(old, ignore_errors=True)
    old_manifest.unlink(missing_ok=True)
    meta = base / "meta.json"
    if meta.exists() and not any((base / "collection").glob("*")):
        meta.unlink(missing_ok=True)
        (base / ".lock").unlink(missing_ok=True)
    return True
