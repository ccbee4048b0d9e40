"""What the engine reads: open documents first, then the disk, with a small text cache.

A prompt names a file by its path relative to the workspace (its *display* path); a file that
is not open is read (skipping missing, too big and binary files) and parsed on demand, and the
text of indexed files is cached by path, mtime and size so repeated prompts do not reread it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from swarm_lsp.context import languages
from swarm_lsp.context.documents import Document, DocumentStore, uri_to_path
from swarm_lsp.context.index import SymbolIndex, looks_binary
from swarm_lsp.context.text import decode

#: Texts of files that are not open, most recently used kept.
TEXT_CACHE_FILES = 64


class WorkspaceFiles:
    """Documents and file texts of one workspace (``index.root`` may be None)."""

    def __init__(self, documents: DocumentStore, index: SymbolIndex, max_file_bytes: int) -> None:
        self.documents = documents
        self.index = index
        self.max_file_bytes = max_file_bytes
        self._cache: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._cache_lock = threading.Lock()

    def document(self, uri: str) -> Document | None:
        """The open document, or a snapshot read from disk, or None."""
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        path = uri_to_path(uri)
        if path is None:
            return None
        data = self.read_bytes(path)
        if data is None:
            return None
        language = languages.language_for_path(path)
        tree = None
        if language is not None:
            tree = languages.get_parser(language).parse(data)
        return Document(uri, decode(data), language, tree, -1, data)

    def read_bytes(self, path: Path) -> bytes | None:
        """A file's bytes, or None when missing, too big or binary."""
        try:
            if path.stat().st_size > self.max_file_bytes:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        return None if looks_binary(data[:8192]) else data

    def display_path(self, uri: str, doc: Document | None) -> str:
        """The path a prompt names a document by (relative to the workspace)."""
        path = doc.path if doc is not None else uri_to_path(uri)
        if path is None:
            return uri
        return self.index.relative(path) if self.index.root is not None else path.name

    def text(self, rel: str) -> str | None:
        """Text of an indexed file: the open document when there is one, else disk."""
        path = self.index.absolute(rel)
        resolved = path.resolve()
        for doc in self.documents:
            if doc.path is not None and (doc.path == path or doc.path.resolve() == resolved):
                return doc.text
        try:
            st = path.stat()
        except OSError:
            return None
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._cache_lock:
            text = self._cache.get(key)
            if text is not None:
                self._cache.move_to_end(key)
                return text
        data = self.read_bytes(path)
        if data is None:
            return None
        text = decode(data)
        with self._cache_lock:
            self._cache[key] = text
            while len(self._cache) > TEXT_CACHE_FILES:
                self._cache.popitem(last=False)
        return text
