"""Workspace snapshots by reference: manifests, a content-addressed blob store, materialising.

A task carries a manifest (relative path → sha256 of the file's bytes) instead of the files.
Blobs live once per content hash; a worker fetches only the hashes its cache lacks, so a second
run after a one-line edit moves one file. Every manifest is checked whole before it is used:
paths relative, no ``..``, no drive letters or backslashes, each part at most 255 bytes, the
path at most 1024 bytes, no path that is both a file and a folder (``a`` and ``a/b``), at most
50,000 files — so materialising cannot fail half-way for a reason known in advance.

A blob store may have a size cap: past it, the least recently used blobs are removed (never
ones pinned by a snapshot being materialised, nor ones the caller says to keep).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath

from swarm_lsp.errors import DispatchError

_HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_FILES = 50_000
MAX_PATH_LENGTH = 1024  # bytes of UTF-8
MAX_NAME_LENGTH = 255  # bytes of UTF-8 per path part (NAME_MAX on Linux and macOS)
DEFAULT_CACHE_BYTES = 4 * 1024**3  # a worker's blob cache, unless told otherwise


class SnapshotError(DispatchError):
    """A manifest path or blob is not acceptable."""


def blob_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_hash(value: str) -> str:
    if not _HASH.match(value):
        raise SnapshotError(f"bad blob hash {value[:80]!r}: expected 64 lowercase hex digits")
    return value


def check_relative_path(path: str) -> PurePosixPath:
    """A manifest path as a safe relative POSIX path, or SnapshotError."""
    if not path:
        raise SnapshotError("bad snapshot path '': empty")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise SnapshotError(f"bad snapshot path {path[:80]!r}: not valid UTF-8") from None
    if size > MAX_PATH_LENGTH:
        raise SnapshotError(
            f"bad snapshot path {path[:80]!r}…: {size} bytes, more than {MAX_PATH_LENGTH}"
        )
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise SnapshotError(f"bad snapshot path {path[:80]!r}: backslash or control character")
    pure = PurePosixPath(path)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        raise SnapshotError(f"bad snapshot path {path[:80]!r}: must be relative")
    parts = path.split("/")
    if any(part in ("..", ".", "") for part in parts):
        raise SnapshotError(
            f"bad snapshot path {path[:80]!r}: '..', '.' or empty parts are not allowed"
        )
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME_LENGTH:
            raise SnapshotError(
                f"bad snapshot path {path[:80]!r}: the part {part[:40]!r}… is longer than "
                f"{MAX_NAME_LENGTH} bytes"
            )
    return pure


def check_manifest(files: Mapping[str, str]) -> None:
    """Every path and hash is acceptable and the paths form a tree (no file is a folder)."""
    if len(files) > MAX_MANIFEST_FILES:
        raise SnapshotError(f"snapshot has {len(files)} files, more than {MAX_MANIFEST_FILES}")
    folders: set[str] = set()
    for path, digest in files.items():
        check_relative_path(path)
        check_hash(digest)
        parts = path.split("/")
        folders.update("/".join(parts[:end]) for end in range(1, len(parts)))
    clash = next((folder for folder in folders if folder in files), None)
    if clash is not None:
        raise SnapshotError(
            f"bad snapshot: {clash[:80]!r} is both a file and a folder of other files"
        )


def manifest_of(files: Mapping[str, bytes]) -> dict[str, str]:
    """path → bytes  ⇒  path → sha256 (paths checked)."""
    manifest = {path: blob_hash(data) for path, data in files.items()}
    check_manifest(manifest)
    return manifest


class BlobStore:
    """Raw blobs on disk, named by their sha256 (written atomically, verified on write).

    ``max_bytes`` caps the store (0: no cap; None: :data:`DEFAULT_CACHE_BYTES`). Reads and
    writes refresh a blob's modification time, which orders the least-recently-used prune.
    ``on_evict(digest, size)`` hears of every blob the prune removes.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int | None = None,
        on_evict: Callable[[str, int], None] | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = DEFAULT_CACHE_BYTES if max_bytes is None else max_bytes
        self.on_evict = on_evict
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # puts run in threads; the byte count must stay right
        self._bytes: int | None = None  # counted on first need
        self._pins: collections.Counter[str] = collections.Counter()

    def path(self, digest: str) -> Path:
        check_hash(digest)
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def missing(self, digests: Iterable[str]) -> list[str]:
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    def size(self, digest: str) -> int:
        """Bytes of a stored blob (SnapshotError when it is not stored)."""
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise SnapshotError(f"blob {digest[:12]}… is not in the store") from None

    def total_bytes(self) -> int:
        with self._lock:
            return self._count()

    def _count(self) -> int:
        if self._bytes is None:
            self._bytes = sum(entry.stat().st_size for entry in self._entries())
        return self._bytes

    def _entries(self) -> Iterator[Path]:
        for folder in self.root.iterdir():
            if folder.is_dir() and len(folder.name) == 2:
                yield from (p for p in folder.iterdir() if not p.name.startswith(".tmp-"))

    def put(self, digest: str, data: bytes) -> int:
        """Store ``data`` under its hash; the bytes newly written (0 when it was there)."""
        if blob_hash(data) != check_hash(digest):
            raise SnapshotError(f"blob {digest[:12]}…: content does not match its hash")
        target = self.path(digest)
        if target.exists():
            with contextlib.suppress(OSError):
                os.utime(target)
            return 0
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
        with self._lock:
            self._bytes = None if self._bytes is None else self._bytes + len(data)
        if self.max_bytes:
            self.prune(keep=(digest,))
        return len(data)

    def get(self, digest: str) -> bytes:
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotError(f"blob {digest[:12]}… is not in the store") from None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: last to be pruned
        return data

    def pin(self, digests: Iterable[str]) -> None:
        """The prune leaves these blobs alone until as many ``unpin`` calls."""
        wanted = dict.fromkeys(digests, 1)
        if wanted:
            with self._lock:
                self._pins.update(wanted)

    def unpin(self, digests: Iterable[str]) -> None:
        wanted = dict.fromkeys(digests, 1)
        if wanted:
            with self._lock:
                for digest in wanted:
                    left = self._pins[digest] - 1
                    if left > 0:
                        self._pins[digest] = left
                    else:
                        self._pins.pop(digest, None)

    @contextlib.contextmanager
    def pinned(self, digests: Iterable[str]) -> Iterator[None]:
        """While inside, the prune leaves these blobs alone."""
        wanted = list(dict.fromkeys(digests))
        self.pin(wanted)
        try:
            yield
        finally:
            self.unpin(wanted)

    def prune(self, *, target: int | None = None, keep: Iterable[str] = ()) -> list[str]:
        """Remove least recently used blobs until the store holds at most ``target`` bytes.

        ``target`` defaults to 80% of ``max_bytes`` once the store is over ``max_bytes``
        (so puts do not prune one blob at a time). Returns the digests removed.
        """
        with self._lock:
            total = self._count()
            if target is None:
                if not self.max_bytes or total <= self.max_bytes:
                    return []
                target = self.max_bytes * 4 // 5
            if total <= target:
                return []
            spared = set(keep) | set(self._pins)
            entries = []
            for path in self._entries():
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    entries.append((info.st_mtime_ns, path, info.st_size))
            entries.sort()
            removed: list[tuple[str, int]] = []
            for _mtime, path, size in entries:
                if total <= target:
                    break
                if path.name in spared:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    total -= size
                    removed.append((path.name, size))
            self._bytes = total
        if self.on_evict is not None:
            for digest, size in removed:
                self.on_evict(digest, size)
        return [digest for digest, _size in removed]


async def materialise(
    manifest: Mapping[str, str],
    dest: Path,
    store: BlobStore,
    fetch: Callable[[list[str]], Awaitable[dict[str, bytes]]],
) -> tuple[int, int]:
    """Write the manifest's files under ``dest``; fetch only missing blobs.

    Returns (blobs fetched, files written). Disk work runs in a thread so a big snapshot does
    not hold up the caller's event loop (and with it the worker's heartbeats). Every failure
    is a SnapshotError (a full disk too), and the snapshot's blobs stay in the cache until
    it is written.
    """
    check_manifest(manifest)
    with store.pinned(manifest.values()):
        missing = store.missing(manifest.values())
        if missing:
            fetched = await fetch(missing)
            for digest in missing:
                if digest not in fetched:
                    raise SnapshotError(
                        f"blob {digest[:12]}… is not available from the coordinator"
                    )
            await _in_thread(_store_all, store, {d: fetched[d] for d in missing})
        await _in_thread(_place, manifest, dest, store)
    return len(missing), len(manifest)


async def _in_thread(function: Callable[..., None], *args: object) -> None:
    try:
        await asyncio.to_thread(function, *args)
    except OSError as err:
        raise SnapshotError(f"cannot write the snapshot: {err}") from err


def _store_all(store: BlobStore, blobs: Mapping[str, bytes]) -> None:
    for digest, data in blobs.items():
        store.put(digest, data)


def _place(manifest: Mapping[str, str], dest: Path, store: BlobStore) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for path, digest in manifest.items():
        target = (root / check_relative_path(path)).resolve()
        if not target.is_relative_to(root):
            raise SnapshotError(f"snapshot path {path!r} escapes the snapshot folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        # A copy, not a hard link: roles may edit their snapshot, never the cache.
        shutil.copyfile(store.path(digest), target)
