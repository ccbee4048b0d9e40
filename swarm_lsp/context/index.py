"""Workspace symbol index: the tags of every source file, cached on disk by content hash.

The walk respects ``.gitignore`` files (nested ones too, plus ``.git/info/exclude``), skips
version-control and tool folders, binaries (a NUL byte near the start) and files larger than
``max_file_bytes``. Tags are kept per file; references are kept as name counts, which is all
the repo map needs and a fraction of the memory.

The cache is one SQLite file under the cache dir. Tag data is stored by (language, content
hash), so identical files share an entry and a checkout that only touches mtimes costs a
read and a hash, not a parse; a (path, mtime, size) table lets a restart skip even the read
for files that did not change. The schema key includes :data:`TAGS_VERSION` and a hash of
the query files, so changing a query rebuilds the cache instead of serving stale tags.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
from tree_sitter import Tree

from swarm_lsp.context import languages
from swarm_lsp.context.tags import TAGS_VERSION, Tag, extract_file_tags, query_source
from swarm_lsp.errors import ContextError

ProgressCallback = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]

#: Folders never worth indexing, whatever .gitignore says.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".jj",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".idea",
        ".swarm-lsp",
    }
)
_BINARY_SNIFF_BYTES = 8192
_COMMIT_EVERY = 200


@dataclass
class IndexStats:
    """What one index build did."""

    files_total: int = 0  # source files found by the walk
    files_parsed: int = 0  # read and parsed (new or changed)
    files_cached: int = 0  # tags served from the on-disk cache
    files_skipped: int = 0  # too big, binary or unreadable
    files_removed: int = 0  # known before, gone now
    definitions: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    skipped: list[str] = field(default_factory=list)  # "path: reason"

    @property
    def files_per_second(self) -> float:
        done = self.files_parsed + self.files_cached
        return done / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class FileTags:
    """The tags of one file: definitions and imports in full, references as name counts."""

    path: str  # workspace-relative POSIX path (absolute for files outside the workspace)
    language: str
    digest: str
    definitions: tuple[Tag, ...]
    imports: tuple[Tag, ...]
    references: dict[str, int]

    @classmethod
    def extract(
        cls, source: bytes, language: str, path: str, digest: str, tree: Tree | None = None
    ) -> FileTags:
        tags, refs = extract_file_tags(source, language, path, tree)
        defs = tuple(t for t in tags if t.role == "def")
        imports = tuple(t for t in tags if t.role == "import")
        return cls(path, language, digest, defs, imports, dict(refs))

    @classmethod
    def from_tags(cls, path: str, language: str, digest: str, tags: Iterable[Tag]) -> FileTags:
        defs: list[Tag] = []
        imports: list[Tag] = []
        refs: Counter[str] = Counter()
        for tag in tags:
            if tag.role == "def":
                defs.append(tag)
            elif tag.role == "import":
                imports.append(tag)
            else:
                refs[tag.name] += 1
        return cls(path, language, digest, tuple(defs), tuple(imports), dict(refs))

    def to_blob(self) -> bytes:
        rows = {
            "defs": [tag.to_row() for tag in self.definitions],
            "imports": [tag.to_row() for tag in self.imports],
            "refs": self.references,
        }
        return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_blob(cls, path: str, language: str, digest: str, blob: bytes) -> FileTags:
        rows = json.loads(blob)
        return cls(
            path,
            language,
            digest,
            tuple(Tag.from_row(path, row) for row in rows["defs"]),
            tuple(Tag.from_row(path, row) for row in rows["imports"]),
            {str(k): int(v) for k, v in rows["refs"].items()},
        )


def content_digest(language: str, data: bytes) -> str:
    """Cache key of a file's tags: its language and a hash of its bytes."""
    return language + ":" + hashlib.blake2b(data, digest_size=16).hexdigest()


def _schema_key() -> str:
    queries = "".join(query_source(name) for name in languages.LANGUAGES)
    digest = hashlib.blake2b(queries.encode("utf-8"), digest_size=8).hexdigest()
    return f"{TAGS_VERSION}:{digest}"


def looks_binary(head: bytes) -> bool:
    """True when a file's first bytes hold a NUL (text files in any common encoding do not)."""
    return b"\x00" in head


class _IgnoreRules:
    """The .gitignore rules in force for one folder and its parents."""

    def __init__(self, root: Path, extra: Iterable[str] = ()) -> None:
        self.root = root
        self._specs: dict[str, pathspec.PathSpec | None] = {}
        lines = list(extra)
        exclude = root / ".git" / "info" / "exclude"
        with contextlib.suppress(OSError):
            lines += exclude.read_text(encoding="utf-8", errors="replace").splitlines()
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        self._global = spec if len(spec) else None

    @staticmethod
    def _load(path: Path) -> pathspec.PathSpec | None:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        return spec if len(spec) else None

    def spec_for(self, rel_dir: str) -> pathspec.PathSpec | None:
        if rel_dir not in self._specs:
            folder = self.root / rel_dir if rel_dir else self.root
            self._specs[rel_dir] = self._load(folder / ".gitignore")
        return self._specs[rel_dir]

    def ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether ``rel_path`` (POSIX, relative to the root) is ignored."""
        candidate = rel_path + "/" if is_dir else rel_path
        if self._global is not None and self._global.match_file(candidate):
            return True
        parts = rel_path.split("/")
        # Check every .gitignore from the root down to the file's folder; a deeper file
        # matches relative to its own folder. (Re-including a file under an ignored folder
        # is impossible in git too, so pruning folders early is faithful.)
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            spec = self.spec_for(base)
            if spec is None:
                continue
            sub = "/".join(parts[depth:]) + ("/" if is_dir else "")
            if spec.match_file(sub):
                return True
        return False


def walk_sources(
    root: Path,
    skip: Iterable[Path] = (),
    should_cancel: CancelCheck | None = None,
    ignore: Iterable[str] = (),
) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, rel_posix_path)`` of every file with a grammar, honouring .gitignore.

    ``ignore`` adds gitignore-style patterns relative to the root (like .git/info/exclude).
    """
    rules = _IgnoreRules(root, ignore)
    skip_resolved = {p.resolve() for p in skip}
    for dirpath, dirnames, filenames in os.walk(root):
        if should_cancel is not None and should_cancel():
            return
        folder = Path(dirpath)
        rel_dir = folder.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in SKIP_DIRS or rules.ignored(rel, is_dir=True):
                continue
            if skip_resolved and (folder / name).resolve() in skip_resolved:
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if languages.language_for_path(name) is None:
                continue
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rules.ignored(rel, is_dir=False):
                continue
            yield folder / name, rel


class _TagCache:
    """SQLite-backed cache: digest → tag blob, and path → (mtime, size, digest)."""

    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_dir / f"tags-v{TAGS_VERSION}.sqlite"
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            # A corrupt cache is only a cache: start again.
            self.path.unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        key = _schema_key()
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or row[0] != key:
            db.execute("DROP TABLE IF EXISTS blobs")
            db.execute("DROP TABLE IF EXISTS files")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (key,))
        db.execute("CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, data BLOB)")
        db.execute(
            "CREATE TABLE IF NOT EXISTS files "
            "(path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, digest TEXT)"
        )
        db.commit()
        return db

    # After close() (say, the server shutting down while a background build still runs)
    # the cache quietly does nothing: it is only a cache.
    def files(self) -> dict[str, tuple[int, int, str]]:
        with self._lock:
            if self._closed:
                return {}
            rows = self._db.execute("SELECT path, mtime_ns, size, digest FROM files").fetchall()
        return {path: (mtime, size, digest) for path, mtime, size, digest in rows}

    def blob(self, digest: str) -> bytes | None:
        with self._lock:
            if self._closed:
                return None
            row = self._db.execute("SELECT data FROM blobs WHERE digest=?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, rel: str, mtime_ns: int, size: int, entry: FileTags, new_blob: bool) -> None:
        with self._lock:
            if self._closed:
                return
            if new_blob:
                self._db.execute(
                    "INSERT OR REPLACE INTO blobs VALUES (?, ?)", (entry.digest, entry.to_blob())
                )
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                (rel, mtime_ns, size, entry.digest),
            )

    def forget(self, rel: str) -> None:
        with self._lock:
            if not self._closed:
                self._db.execute("DELETE FROM files WHERE path=?", (rel,))

    def commit(self) -> None:
        with self._lock:
            if not self._closed:
                self._db.commit()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.commit()
                self._db.close()


class SymbolIndex:
    """Definitions, imports and reference counts of every source file in a workspace."""

    def __init__(
        self,
        root: Path | None,
        cache_dir: Path,
        max_file_bytes: int,
        ignore: Iterable[str] = (),
    ) -> None:
        self.root = root.resolve() if root is not None else None
        self.ignore = tuple(ignore)
        self.cache_dir = cache_dir
        self.max_file_bytes = max_file_bytes
        self._cache = _TagCache(cache_dir)
        self._lock = threading.RLock()
        self._files: dict[str, FileTags] = {}
        self._definitions: dict[str, list[Tag]] = {}
        self.generation = 0  # bumped on every change, so derived data knows when to refresh

    # -- paths --------------------------------------------------------------------------
    def relative(self, path: str | Path) -> str:
        """The index key of ``path``: POSIX and relative to the root when inside it."""
        p = Path(path)
        if self.root is not None:
            if not p.is_absolute():
                return p.as_posix()
            try:
                return p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                pass
        return p.resolve().as_posix() if p.is_absolute() else p.as_posix()

    def absolute(self, rel: str) -> Path:
        p = Path(rel)
        if p.is_absolute() or self.root is None:
            return p
        return self.root / p

    # -- queries ------------------------------------------------------------------------
    def files(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    def get(self, path: str | Path) -> FileTags | None:
        return self._files.get(self.relative(path))

    def entries(self) -> list[FileTags]:
        with self._lock:
            return list(self._files.values())

    def definitions(self, name: str) -> list[Tag]:
        """Every definition of ``name`` in the workspace."""
        return list(self._definitions.get(name, ()))

    def names(self) -> list[str]:
        """Every defined name in the workspace."""
        with self._lock:
            return list(self._definitions)

    def all_definitions(self) -> Iterator[Tag]:
        for entry in self.entries():
            yield from entry.definitions

    def __len__(self) -> int:
        return len(self._files)

    # -- building -----------------------------------------------------------------------
    def build(
        self,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> IndexStats:
        """Walk the workspace and (re)index it; unchanged files come from the cache."""
        stats = IndexStats()
        started = time.perf_counter()
        if self.root is None:
            return stats
        cancel = should_cancel or (lambda: False)
        if progress is not None:
            progress(0, 0, "Scanning workspace")
        found = list(
            walk_sources(self.root, [self.cache_dir], should_cancel=cancel, ignore=self.ignore)
        )
        stats.files_total = len(found)
        if cancel():
            stats.cancelled = True
            stats.seconds = time.perf_counter() - started
            return stats
        known = self._cache.files()
        seen: set[str] = set()
        for done, (path, rel) in enumerate(found, start=1):
            if cancel():
                stats.cancelled = True
                break
            seen.add(rel)
            outcome = self._index_path(path, rel, known.get(rel))
            if outcome == "parsed":
                stats.files_parsed += 1
            elif outcome == "cached":
                stats.files_cached += 1
            else:
                stats.files_skipped += 1
                stats.skipped.append(f"{rel}: {outcome}")
            if done % _COMMIT_EVERY == 0:
                self._cache.commit()
            if progress is not None and (done % 25 == 0 or done == len(found)):
                progress(done, len(found), rel)
        if not stats.cancelled:
            with self._lock:
                gone = [rel for rel in self._files if rel not in seen]
                for rel in gone:
                    self._drop(rel)
            for rel in set(known) - seen:
                self._cache.forget(rel)
            stats.files_removed = len(gone)
        self._cache.commit()
        stats.definitions = sum(len(e.definitions) for e in self.entries())
        stats.seconds = time.perf_counter() - started
        return stats

    def update_file(self, path: str | Path) -> FileTags | None:
        """Re-index one file from disk (after a save or a watched-file event).

        A file that is gone, ignored by size/binary rules or has no grammar is removed.
        """
        p = Path(path)
        if self.root is not None and not p.is_absolute():
            p = self.root / p
        rel = self.relative(p)
        if languages.language_for_path(p) is None:
            return None
        outcome = self._index_path(p, rel, None)
        self._cache.commit()
        if outcome in ("parsed", "cached"):
            return self._files.get(rel)
        self.remove_file(p)
        return None

    def update_source(
        self, path: str | Path, source: bytes, language: str | None = None, tree: Tree | None = None
    ) -> FileTags | None:
        """Index in-memory text (an open document), reusing its tree when given."""
        rel = self.relative(path)
        language = language or languages.language_for_path(rel)
        if language is None or not languages.is_supported(language):
            return None
        if len(source) > self.max_file_bytes:
            self.remove_file(path)
            return None
        digest = content_digest(language, source)
        current = self._files.get(rel)
        if current is not None and current.digest == digest:
            return current
        entry = FileTags.extract(source, language, rel, digest, tree)
        self._store(entry)
        return entry

    def remove_file(self, path: str | Path) -> None:
        """Forget a deleted (or newly ignored) file."""
        rel = self.relative(path)
        with self._lock:
            self._drop(rel)
        self._cache.forget(rel)
        self._cache.commit()

    def close(self) -> None:
        self._cache.close()

    # -- internals ----------------------------------------------------------------------
    def _index_path(self, path: Path, rel: str, known: tuple[int, int, str] | None) -> str:
        """Index one file; returns "parsed", "cached" or the reason it was skipped."""
        language = languages.language_for_path(path)
        if language is None:
            return "no grammar"
        try:
            st = path.stat()
        except OSError as err:
            return f"cannot stat ({err.strerror})"
        if st.st_size > self.max_file_bytes:
            return f"larger than {self.max_file_bytes} bytes ({st.st_size})"
        if known is not None and known[0] == st.st_mtime_ns and known[1] == st.st_size:
            blob = self._cache.blob(known[2])
            if blob is not None:
                try:
                    entry = FileTags.from_blob(rel, language, known[2], blob)
                except (ValueError, KeyError, TypeError):
                    entry = None
                if entry is not None:
                    self._store(entry)
                    return "cached"
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_file_bytes + 1)
        except OSError as err:
            return f"cannot read ({err.strerror})"
        if len(data) > self.max_file_bytes:
            return f"larger than {self.max_file_bytes} bytes"
        if looks_binary(data[:_BINARY_SNIFF_BYTES]):
            return "binary"
        digest = content_digest(language, data)
        blob = self._cache.blob(digest)
        outcome = "parsed"
        entry = None
        if blob is not None:
            try:
                entry = FileTags.from_blob(rel, language, digest, blob)
                outcome = "cached"
            except (ValueError, KeyError, TypeError):
                entry = None
        if entry is None:
            try:
                entry = FileTags.extract(data, language, rel, digest)
            except ContextError as err:
                return str(err)
        self._cache.put(rel, st.st_mtime_ns, st.st_size, entry, new_blob=blob is None)
        self._store(entry)
        return outcome

    def _store(self, entry: FileTags) -> None:
        with self._lock:
            self._drop(entry.path)
            self._files[entry.path] = entry
            for tag in entry.definitions:
                self._definitions.setdefault(tag.name, []).append(tag)
            self.generation += 1

    def _drop(self, rel: str) -> None:
        old = self._files.pop(rel, None)
        if old is None:
            return
        for tag in old.definitions:
            bucket = self._definitions.get(tag.name)
            if bucket is None:
                continue
            bucket[:] = [t for t in bucket if t.path != rel]
            if not bucket:
                del self._definitions[tag.name]
        self.generation += 1
