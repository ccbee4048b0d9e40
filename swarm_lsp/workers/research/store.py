"""Where the research index's points live: Qdrant Edge in process, or a Qdrant server.

Both stores hold one point per chunk with a sparse BM25 vector (``sparse``, IDF applied by the
engine) and, once the background fill reaches it, a dense vector (``dense``, cosine). A point
without a dense vector is still found by the sparse side; queries fuse whatever is there.

- :class:`EdgeStore`: Qdrant's own engine embedded (``qdrant-edge-py``): segments, HNSW and a
  write-ahead log on disk, no server. The WAL takes a lock, so one process at a time opens a
  folder; others wait their turn (``wait_s``), then get :class:`~swarm_lsp.errors.ResourceBusy`.
- :class:`ServerStore`: a Qdrant server at ``research.qdrantUrl`` (qdrant-client) for indexes
  too big for one machine's memory; one collection per workspace.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from swarm_lsp.errors import ResourceBusy, WorkerError

DENSE = "dense"
SPARSE = "sparse"
RRF_K = 60
WRITE_BATCH = 512


@dataclasses.dataclass
class StoredPoint:
    """One chunk as stored: id, payload, its sparse vector and (maybe) its dense vector."""

    id: int
    payload: dict[str, Any]
    sparse: tuple[list[int], list[float]]
    dense: list[float] | None = None


@dataclasses.dataclass(frozen=True)
class Found:
    """One search result: score and payload."""

    id: int
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    def set_dense(self, vectors: Sequence[tuple[int, list[float]]]) -> None: ...

    def delete_paths(self, rels: Sequence[str]) -> None: ...

    def points_of(self, rels: Sequence[str]) -> list[tuple[int, dict[str, Any]]]: ...

    def count(self, *, path: str | None = None, dense: bool = False) -> int: ...

    def query(
        self,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
    ) -> list[Found]: ...

    def optimize(self) -> None: ...

    def clear(self) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _id_payloads(
    page: Callable[[Any], tuple[Sequence[Any], Any]],
) -> list[tuple[int, dict[str, Any]]]:
    """(id, payload) of every record a scroll returns, ``page(offset)`` after ``page(None)``
    until it answers no next offset."""
    out: list[tuple[int, dict[str, Any]]] = []
    offset: Any = None
    while True:
        records, offset = page(offset)
        out.extend((int(r.id), dict(r.payload or {})) for r in records)
        if offset is None:
            return out


class EdgeStore:
    """Qdrant Edge: one shard folder on disk, opened by one process at a time."""

    def __init__(self, path: Path, dimensions: int, *, wait_s: float = 30.0) -> None:
        try:
            import qdrant_edge as qe
        except ImportError as err:
            raise WorkerError(
                "the research extra is not installed: `pip install 'swarm-lsp[research]'` "
                "(qdrant-edge-py)"
            ) from err
        self._qe = qe
        self.path = path
        self._lock = threading.RLock()
        self._config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dimensions, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            # Searches are small; one thread each keeps them off the cores the models use.
            max_search_threads=1,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.shard = self._open()
                break
            except Exception as err:
                if "WouldBlock" not in str(err) and "lock" not in str(err).lower():
                    raise WorkerError(f"cannot open the index at {path}: {err}") from err
                if time.monotonic() >= deadline:
                    raise ResourceBusy(
                        f"the index at {path} is in use by another process; try again when "
                        "it is done, or point research.qdrantUrl at a Qdrant server"
                    ) from err
                time.sleep(0.2)

    def _open(self) -> Any:
        qe = self._qe
        if (self.path / "edge_config.json").exists():
            return qe.EdgeShard.load(str(self.path), self._config)
        shard = qe.EdgeShard.create(str(self.path), self._config)
        shard.update(qe.UpdateOperation.create_field_index("path", qe.PayloadSchemaType.Keyword))
        return shard

    def clear(self) -> None:
        """Drop every point (a new, empty shard in the same folder)."""
        with self._lock:
            self.shard.close()
            shutil.rmtree(self.path, ignore_errors=True)
            self.shard = self._open()

    def _path_filter(self, rels: Sequence[str]) -> Any:
        qe = self._qe
        return qe.Filter(must=[qe.FieldCondition("path", match=qe.MatchAny(list(rels)))])

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        qe = self._qe
        for batch in _batches(points, WRITE_BATCH):
            edge_points = []
            for p in batch:
                vector: dict[str, Any] = {SPARSE: qe.SparseVector(*p.sparse)}
                if p.dense is not None:
                    vector[DENSE] = p.dense
                edge_points.append(qe.Point(p.id, vector, p.payload))
            with self._lock:
                self.shard.update(qe.UpdateOperation.upsert_points(edge_points))

    def set_dense(self, vectors: Sequence[tuple[int, list[float]]]) -> None:
        qe = self._qe
        for batch in _batches(vectors, WRITE_BATCH):
            update = [qe.PointVectors(pid, {DENSE: v}) for pid, v in batch]
            with self._lock:
                self.shard.update(qe.UpdateOperation.update_vectors(update))

    def delete_paths(self, rels: Sequence[str]) -> None:
        if not rels:
            return
        for batch in _batches(rels, 256):
            with self._lock:
                self.shard.update(
                    self._qe.UpdateOperation.delete_points_by_filter(self._path_filter(batch))
                )

    def points_of(self, rels: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
        qe = self._qe

        def page(offset: Any) -> tuple[Sequence[Any], Any]:
            with self._lock:
                return self.shard.scroll(
                    qe.ScrollRequest(
                        offset=offset,
                        limit=1024,
                        filter=self._path_filter(rels),
                        with_payload=True,
                        with_vector=False,
                    )
                )

        return _id_payloads(page)

    def count(self, *, path: str | None = None, dense: bool = False) -> int:
        qe = self._qe
        conditions: list[Any] = []
        if path is not None:
            conditions.append(qe.FieldCondition("path", match=qe.MatchValue(path)))
        if dense:
            conditions.append(qe.HasVectorCondition(DENSE))
        flt = qe.Filter(must=conditions) if conditions else None
        request = qe.CountRequest(exact=True, filter=flt)
        with self._lock:
            return int(self.shard.count(request))

    def query(
        self,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
    ) -> list[Found]:
        qe = self._qe
        prefetches = []
        if dense is not None:
            prefetches.append(
                qe.Prefetch(limit=limit * 4, query=qe.Query.Nearest(dense, using=DENSE))
            )
        if sparse is not None and sparse[0]:
            prefetches.append(
                qe.Prefetch(
                    limit=limit * 4,
                    query=qe.Query.Nearest(qe.SparseVector(*sparse), using=SPARSE),
                )
            )
        if not prefetches:
            return []
        if len(prefetches) == 1:
            request = qe.QueryRequest(
                limit=limit, query=prefetches[0].query, with_payload=True, with_vector=False
            )
        else:
            request = qe.QueryRequest(
                limit=limit,
                prefetches=prefetches,
                query=qe.Fusion.Rrf(k=RRF_K),
                with_payload=True,
                with_vector=False,
            )
        with self._lock:
            points = self.shard.query(request)
        return [Found(int(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def optimize(self) -> None:
        """Build the HNSW index and merge segments (blocking; after a big fill)."""
        with self._lock:
            self.shard.optimize()

    def flush(self) -> None:
        with self._lock:
            self.shard.flush()

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.shard.close()


class ServerStore:
    """A Qdrant server (qdrant-client): one collection per workspace."""

    def __init__(self, url: str, collection: str, dimensions: int) -> None:
        from qdrant_client import QdrantClient, models

        self._models = models
        self.collection = collection
        self.dimensions = dimensions
        self.client: Any = QdrantClient(url=url, timeout=30)
        self._create()

    def _create(self) -> None:
        models = self._models
        collection = self.collection
        dimensions = self.dimensions
        if not self.client.collection_exists(collection):
            self.client.create_collection(
                collection,
                vectors_config={
                    DENSE: models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            self.client.create_payload_index(collection, "path", models.PayloadSchemaType.KEYWORD)

    def _path_filter(self, rels: Sequence[str]) -> Any:
        m = self._models
        return m.Filter(must=[m.FieldCondition(key="path", match=m.MatchAny(any=list(rels)))])

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        m = self._models
        for batch in _batches(points, 256):
            structs = []
            for p in batch:
                indices, values = p.sparse
                vector: dict[str, Any] = {SPARSE: m.SparseVector(indices=indices, values=values)}
                if p.dense is not None:
                    vector[DENSE] = p.dense
                structs.append(m.PointStruct(id=p.id, vector=vector, payload=p.payload))
            self.client.upsert(self.collection, points=structs, wait=True)

    def set_dense(self, vectors: Sequence[tuple[int, list[float]]]) -> None:
        m = self._models
        for batch in _batches(vectors, 256):
            self.client.update_vectors(
                self.collection,
                points=[m.PointVectors(id=pid, vector={DENSE: v}) for pid, v in batch],
                wait=True,
            )

    def delete_paths(self, rels: Sequence[str]) -> None:
        if rels:
            self.client.delete(
                self.collection,
                points_selector=self._models.FilterSelector(filter=self._path_filter(rels)),
                wait=True,
            )

    def points_of(self, rels: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
        def page(offset: Any) -> tuple[Sequence[Any], Any]:
            return self.client.scroll(
                self.collection,
                scroll_filter=self._path_filter(rels),
                limit=1024,
                offset=offset,
                with_payload=True,
                with_vectors=False,
            )

        return _id_payloads(page)

    def count(self, *, path: str | None = None, dense: bool = False) -> int:
        m = self._models
        conditions: list[Any] = []
        if path is not None:
            conditions.append(m.FieldCondition(key="path", match=m.MatchValue(value=path)))
        if dense:
            conditions.append(m.HasVectorCondition(has_vector=DENSE))
        flt = m.Filter(must=conditions) if conditions else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def query(
        self,
        dense: list[float] | None,
        sparse: tuple[list[int], list[float]] | None,
        limit: int,
    ) -> list[Found]:
        m = self._models
        prefetch = []
        if dense is not None:
            prefetch.append(m.Prefetch(query=dense, using=DENSE, limit=limit * 4))
        if sparse is not None and sparse[0]:
            vector = m.SparseVector(indices=sparse[0], values=sparse[1])
            prefetch.append(m.Prefetch(query=vector, using=SPARSE, limit=limit * 4))
        if not prefetch:
            return []
        if len(prefetch) == 1:
            response = self.client.query_points(
                self.collection,
                query=prefetch[0].query,
                using=prefetch[0].using,
                limit=limit,
                with_payload=True,
            )
        else:
            response = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=m.FusionQuery(fusion=m.Fusion.RRF),
                limit=limit,
                with_payload=True,
            )
        return [Found(int(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    def optimize(self) -> None:
        pass  # the server optimizes by itself

    def clear(self) -> None:
        self.client.delete_collection(self.collection)
        self._create()

    def flush(self) -> None:
        pass  # every write above waits for the server

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
