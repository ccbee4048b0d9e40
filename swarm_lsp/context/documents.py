"""Open documents: their text and an incrementally maintained tree-sitter tree.

Each change makes a new immutable :class:`Document` snapshot. The old tree is copied before
``Tree.edit`` so a reader holding an older snapshot (say, a completion running in a worker
thread) never sees its tree change underneath it. Parsing reuses the edited old tree, which
is what makes a keystroke in a large file cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from tree_sitter import Tree

from swarm_lsp.context import languages
from swarm_lsp.context.text import LineIndex, encode, point_after

#: Documents larger than this many bytes keep their text but get no tree by default.
DEFAULT_MAX_PARSE_BYTES = 1_000_000


def uri_to_path(uri: str) -> Path | None:
    """The local path of a ``file:`` URI, or None for other schemes (untitled:, etc.)."""
    if "://" not in uri and ":" not in uri[:10]:
        return Path(uri)  # already a plain path
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    if len(path) >= 3 and path[0] == "/" and path[2] == ":":  # /C:/x on Windows
        path = path[1:]
    return Path(path)


def path_to_uri(path: str | Path) -> str:
    """A ``file:`` URI for an absolute local path."""
    return "file://" + quote(Path(path).resolve().as_posix())


class Document:
    """One immutable snapshot of an open document."""

    __slots__ = ("_lines", "language", "path", "source", "text", "tree", "uri", "version")

    def __init__(
        self,
        uri: str,
        text: str,
        language: str | None,
        tree: Tree | None,
        version: int,
        source: bytes | None = None,
    ) -> None:
        self.uri = uri
        self.text = text
        self.source = encode(text) if source is None else source
        self.language = language
        self.tree = tree
        self.version = version
        self.path = uri_to_path(uri)
        self._lines: LineIndex | None = None

    @property
    def lines(self) -> LineIndex:
        """The line index of this snapshot, built on first use."""
        if self._lines is None:
            self._lines = LineIndex(self.source)
        return self._lines

    def offset_at(self, line: int, character: int) -> int:
        """Byte offset of an LSP position (UTF-16 character), clamped into the text."""
        return self.lines.offset(line, character)

    def __repr__(self) -> str:
        return f"Document({self.uri!r}, language={self.language!r}, version={self.version})"


class DocumentStore:
    """Open documents by URI; safe to call from several threads."""

    def __init__(self, max_parse_bytes: int = DEFAULT_MAX_PARSE_BYTES) -> None:
        self._docs: dict[str, Document] = {}
        self._lock = threading.RLock()
        self.max_parse_bytes = max_parse_bytes

    # -- queries -----------------------------------------------------------------------
    def get(self, uri: str) -> Document | None:
        """The current snapshot of ``uri``, or None when it is not open."""
        return self._docs.get(uri)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)

    # -- lifecycle ---------------------------------------------------------------------
    def open(
        self, uri: str, text: str, language_id: str | None = None, version: int = 0
    ) -> Document:
        """Open (or re-open) ``uri`` with full ``text`` and parse it from scratch."""
        language = languages.language_of(uri_to_path(uri), language_id)
        doc = self._build(uri, text, language, version)
        with self._lock:
            self._docs[uri] = doc
        return doc

    def replace(self, uri: str, text: str, version: int | None = None) -> Document:
        """Full-document sync: new text, parsed from scratch (no edit information)."""
        with self._lock:
            old = self._docs.get(uri)
            language = old.language if old else languages.language_of(uri_to_path(uri))
            new_version = version if version is not None else (old.version + 1 if old else 0)
            doc = self._build(uri, text, language, new_version)
            self._docs[uri] = doc
        return doc

    def close(self, uri: str) -> None:
        """Forget ``uri``; closing a document that is not open does nothing."""
        with self._lock:
            self._docs.pop(uri, None)

    def apply_change(
        self,
        uri: str,
        start_line: int,
        start_char_utf16: int,
        end_line: int,
        end_char_utf16: int,
        new_text: str,
        version: int | None = None,
    ) -> Document:
        """Apply one LSP incremental change (range in UTF-16 positions) and reparse.

        Positions out of range clamp to the document; a reversed range is swapped. An
        unknown ``uri`` is treated as an empty document so a lost didOpen does not crash.
        """
        with self._lock:
            old = self._docs.get(uri)
            if old is None:
                old = self.open(uri, "", None)
            start = old.offset_at(start_line, start_char_utf16)
            end = old.offset_at(end_line, end_char_utf16)
            if end < start:
                start, end = end, start
            inserted = encode(new_text)
            source = old.source[:start] + inserted + old.source[end:]
            if len(old.source) == len(old.text):  # ASCII: byte offsets are char offsets
                text = old.text[:start] + new_text + old.text[end:]
            else:
                text = source.decode("utf-8", "surrogatepass")
            new_version = version if version is not None else old.version + 1
            tree: Tree | None = None
            if len(source) > self.max_parse_bytes:
                tree = None
            elif old.tree is not None:
                edited = old.tree.copy()  # never mutate a tree an older snapshot still holds
                start_point = old.lines.point(start)
                edited.edit(
                    start_byte=start,
                    old_end_byte=end,
                    new_end_byte=start + len(inserted),
                    start_point=start_point,
                    old_end_point=old.lines.point(end),
                    new_end_point=point_after(start_point, inserted),
                )
                tree = self._parse(old.language, source, edited)
            else:
                tree = self._parse(old.language, source, None)
            doc = Document(uri, text, old.language, tree, new_version, source)
            doc._lines = old.lines.edited(start, end, inserted, source)
            self._docs[uri] = doc
        return doc

    # -- helpers -----------------------------------------------------------------------
    def _build(
        self,
        uri: str,
        text: str,
        language: str | None,
        version: int,
    ) -> Document:
        source = encode(text)
        tree = None
        if len(source) <= self.max_parse_bytes:
            tree = self._parse(language, source, None)
        return Document(uri, text, language, tree, version, source)

    @staticmethod
    def _parse(language: str | None, source: bytes, old: Tree | None) -> Tree | None:
        if language is None or not languages.is_supported(language):
            return None
        parser = languages.get_parser(language)
        return parser.parse(source, old) if old is not None else parser.parse(source)
