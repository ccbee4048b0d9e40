"""Phase 2 of a research index: dense vectors filled in after the sparse side is written.

:func:`fill_dense` embeds every chunk of a :class:`~.index.WorkspaceIndex` that has no dense
vector yet, files in the order it is given (:mod:`.priority`: open, recently edited and central
files first), :data:`DENSE_BATCH_CHUNKS` chunks at a time, through one
:class:`~.stream.EmbedStream` (the next group is read and queued while the last is embedded). A
file whose content changed while its group was being embedded keeps no vector (the next fill
does it again); the manifest is saved after the vectors it describes, so after a crash a group
is at worst embedded again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from swarm_lsp.workers.research.stream import EmbedStream, GroupDone

if TYPE_CHECKING:
    from swarm_lsp.workers.research.index import WorkspaceIndex

# Chunks embedded and written together (the embedder takes them shortest first).
DENSE_BATCH_CHUNKS = 256

ProgressCallback = Callable[[int, int, str], None]


def dense_text(payload: dict[str, Any]) -> str:
    """What the embedder sees of a chunk: where it is, its symbol, then its text."""
    return f"{payload.get('path', '')}: {payload.get('symbol', '')}\n{payload.get('text', '')}"


class Cancelled(Exception):
    """A dense fill was cancelled inside a group (its vectors are not written)."""


def missing_dense(index: WorkspaceIndex, order: Sequence[str] = ()) -> list[str]:
    """Files whose chunks still lack dense vectors, ``order`` first, then by path."""
    with index._lock:
        missing = {rel for rel, e in index._files.items() if not e.dense and e.chunks}
    first = [rel for rel in dict.fromkeys(order) if rel in missing]
    chosen = set(first)
    return first + sorted(missing - chosen)


def _next_group(index: WorkspaceIndex, missing: list[str]) -> tuple[list[str], dict[str, str]]:
    """The next files to embed (about :data:`DENSE_BATCH_CHUNKS` chunks) and their hashes."""
    group: list[str] = []
    size = 0
    with index._lock:
        for rel in missing:
            group.append(rel)
            size += index._files[rel].chunks
            if size >= DENSE_BATCH_CHUNKS:
                break
        return group, {rel: index._files[rel].hash for rel in group}


def _write(
    index: WorkspaceIndex,
    points: list[tuple[int, dict[str, Any]]],
    vectors: list[list[float]],
    hashes: dict[str, str],
) -> None:
    """Store a group's vectors, but only for files unchanged since the group was read."""
    with index._lock:
        current = {
            rel
            for rel, digest in hashes.items()
            if getattr(index._files.get(rel), "hash", None) == digest
        }
        index.store.set_dense(
            [
                (pid, vec)
                for (pid, payload), vec in zip(points, vectors, strict=True)
                if payload.get("path") in current
            ]
        )
        for rel in current:
            index._files[rel].dense = True
        index._save_manifest()


def fill_dense(
    index: WorkspaceIndex,
    *,
    order: Sequence[str] | Callable[[], Sequence[str]] = (),
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    may_run: Callable[[], None] | None = None,
) -> int:
    """Embed every chunk of ``index`` that has no dense vector yet; returns how many were.

    ``order`` (or a function giving it, asked again between groups) puts files first;
    ``may_run`` is called before every embedding step and may block (the research role pauses
    the fill while a question is answered). The groups go through one
    :class:`~.stream.EmbedStream`: the next group is read and queued while the last one is
    embedded, and a group's vectors are written as soon as its last step is done.
    """
    done = 0
    total = 0
    queued: set[str] = set()  # files of groups queued and not written yet

    def between() -> None:  # before each embedding step: pause, or give up the group
        if may_run is not None:
            may_run()
        if cancel is not None and cancel.is_set():
            raise Cancelled

    def writer(
        group: list[str], points: list[tuple[int, dict[str, Any]]], hashes: dict[str, str]
    ) -> GroupDone:
        def write(vectors: list[list[float]]) -> None:
            nonlocal done
            _write(index, points, vectors, hashes)
            queued.difference_update(group)
            done += len(points)
            if progress is not None:
                progress(min(done, total), max(total, done), group[-1])

        return write

    stream = EmbedStream(between)
    try:
        while not (cancel is not None and cancel.is_set()):
            wanted = order() if callable(order) else order
            missing = [rel for rel in missing_dense(index, wanted) if rel not in queued]
            if not missing:
                if not queued:
                    break
                stream.finish()  # the files in flight are written: look again
                continue
            if not total:
                cover = index.coverage()
                total = cover.points - cover.dense_points
            group, hashes = _next_group(index, missing)
            points = index.store.points_of(group)
            queued.update(group)
            stream.add(
                [dense_text(payload) for _, payload in points], writer(group, points, hashes)
            )
        stream.finish()
    except Cancelled:
        stream.abort()
    except BaseException:
        stream.abort()
        raise
    finally:
        with index._lock:
            index._save_manifest(force=True)
    return done
