"""Workspace snapshots by reference: manifests, a content-addressed blob store, materialising.

A task carries a manifest (relative path → sha256 of the file's bytes) instead of the files.
Blobs live once per content hash; a worker fetches only the hashes its cache lacks, so a second
run after a one-line edit moves one file. Every manifest path is checked: relative, no ``..``,
no drive letters or backslashes, nothing that resolves outside the snapshot folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from swarm_lsp.errors import DispatchError

_HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_FILES = 50_000
MAX_PATH_LENGTH = 1024


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
    if not path or len(path) > MAX_PATH_LENGTH:
        raise SnapshotError(f"bad snapshot path {path[:80]!r}: empty or too long")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise SnapshotError(f"bad snapshot path {path[:80]!r}: backslash or control character")
    pure = PurePosixPath(path)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", path):
        raise SnapshotError(f"bad snapshot path {path!r}: must be relative")
    if any(part in ("..", ".", "") for part in path.split("/")):
        raise SnapshotError(f"bad snapshot path {path!r}: '..', '.' or empty parts are not allowed")
    return pure


def check_manifest(files: Mapping[str, str]) -> None:
    if len(files) > MAX_MANIFEST_FILES:
        raise SnapshotError(f"snapshot has {len(files)} files, more than {MAX_MANIFEST_FILES}")
    for path, digest in files.items():
        check_relative_path(path)
        check_hash(digest)


def manifest_of(files: Mapping[str, bytes]) -> dict[str, str]:
    """path → bytes  ⇒  path → sha256 (paths checked)."""
    manifest = {path: blob_hash(data) for path, data in files.items()}
    check_manifest(manifest)
    return manifest


class BlobStore:
    """Raw blobs on disk, named by their sha256 (written atomically, verified on write)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        check_hash(digest)
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def missing(self, digests: Iterable[str]) -> list[str]:
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    def put(self, digest: str, data: bytes) -> None:
        if blob_hash(data) != check_hash(digest):
            raise SnapshotError(f"blob {digest[:12]}…: content does not match its hash")
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)

    def get(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise SnapshotError(f"blob {digest[:12]}… is not in the store") from None


async def materialise(
    manifest: Mapping[str, str],
    dest: Path,
    store: BlobStore,
    fetch: Callable[[list[str]], Awaitable[dict[str, bytes]]],
) -> tuple[int, int]:
    """Write the manifest's files under ``dest``; fetch only missing blobs.

    Returns (blobs fetched, files written). Disk work runs in a thread so a big snapshot does
    not hold up the caller's event loop (and with it the worker's heartbeats).
    """
    check_manifest(manifest)
    missing = store.missing(manifest.values())
    if missing:
        fetched = await fetch(missing)
        for digest in missing:
            if digest not in fetched:
                raise SnapshotError(f"blob {digest[:12]}… is not available from the coordinator")
        await asyncio.to_thread(_store_all, store, {d: fetched[d] for d in missing})
    await asyncio.to_thread(_place, manifest, dest, store)
    return len(missing), len(manifest)


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
