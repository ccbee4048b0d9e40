"""The context engine: what the LSP server and the workers call.

It owns the open documents, the workspace symbol index, the repo map and the zstd
dictionary, and turns a cursor position into model context:

* :meth:`ContextEngine.completion_context` — small and fast (every keystroke): a preamble
  (file path, imports, signatures of the symbols used near the cursor that are defined in
  other files, the enclosing scope) and the prefix/suffix around the cursor. Stable
  material comes first so llama.cpp can reuse its evaluated prompt prefix.
* :meth:`ContextEngine.task_context` — larger, for remote tasks: a repo map, the full text
  of the most relevant definitions, and the current file around the cursor.

The work is done by :mod:`~swarm_lsp.context.completion_context`,
:mod:`~swarm_lsp.context.preamble`, :mod:`~swarm_lsp.context.task_context`,
:mod:`~swarm_lsp.context.dictionary` and :mod:`~swarm_lsp.context.files`; this class wires
them to one workspace. Unknown languages degrade to plain-text context; nothing here raises
for a bad position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from swarm_lsp.config import ContextSettings
from swarm_lsp.context import compression, languages
from swarm_lsp.context.completion_context import (
    PREAMBLE_SHARE,
    SUFFIX_SHARE,
    CompletionContext,
    completion_context,
)
from swarm_lsp.context.dictionary import (
    MIN_TRAIN_CODE_BYTES,
    TRAIN_PAYLOADS,
    TRAIN_SECONDS,
    Dictionaries,
    code_bytes_at_least,
    training_samples,
)
from swarm_lsp.context.documents import Document, DocumentStore, path_to_uri
from swarm_lsp.context.files import WorkspaceFiles
from swarm_lsp.context.index import CancelCheck, IndexStats, ProgressCallback, SymbolIndex
from swarm_lsp.context.packing import PackedContext, TokenCounter, counter_or_estimate
from swarm_lsp.context.preamble import (
    AMBIGUOUS_FILES,
    NEAR_LINES_AFTER,
    NEAR_LINES_BEFORE,
    comment_prefix,
)
from swarm_lsp.context.repomap import RepoMap
from swarm_lsp.context.symbols import Symbol, match_score, symbol_of, symbol_tree
from swarm_lsp.context.tags import Tag, extract_tags
from swarm_lsp.context.task_context import task_context as _task_context
from swarm_lsp.errors import CompressionError, ContextError

#: PageRank iterations of a dictionary training sample: it needs a plausible map, not a
#: converged one.
_SAMPLE_ITERATIONS = 12


class ContextEngine:
    """Code context for one workspace (``root`` may be None: open documents only)."""

    def __init__(
        self,
        root: Path | None,
        settings: ContextSettings,
        cache_dir: Path,
        *,
        ignore: Iterable[str] = (),
    ) -> None:
        """``ignore`` adds gitignore-style patterns to the workspace's own .gitignore files."""
        self.root = root.resolve() if root is not None else None
        self.settings = settings
        self.cache_dir = cache_dir
        self.documents = DocumentStore(max_parse_bytes=settings.max_file_bytes)
        self.index = SymbolIndex(self.root, cache_dir, settings.max_file_bytes, ignore)
        self.repomap = RepoMap(self.index)
        self.files = WorkspaceFiles(self.documents, self.index, settings.max_file_bytes)
        self._dictionaries = Dictionaries(cache_dir)

    # -- workspace ----------------------------------------------------------------------
    def index_workspace(
        self,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> IndexStats:
        """Index the workspace (cached files are cheap), then train a dictionary if none."""
        stats = self.index.build(progress=progress, should_cancel=should_cancel)
        if (
            not stats.cancelled
            and self.dictionary_id is None
            and code_bytes_at_least(self.index, MIN_TRAIN_CODE_BYTES)
        ):
            # A tiny workspace has too little code to train on: frames go without one.
            if progress is not None:
                progress(stats.files_total, stats.files_total, "Training the zstd dictionary")
            with contextlib.suppress(CompressionError):
                self.train_dictionary(should_cancel=should_cancel)
        return stats

    def file_changed(self, path: Path) -> None:
        """A file was created or saved on disk (didSave, didChangeWatchedFiles)."""
        self.index.update_file(path)

    def refresh_document(self, uri: str) -> None:
        """Re-index an open document from its unsaved text, reusing its tree.

        Call it debounced after didChange (and :meth:`file_changed` after didClose, so the
        index returns to what is on disk); :meth:`task_context` calls it itself.
        """
        doc = self.documents.get(uri)
        if doc is None or doc.path is None or doc.language is None:
            return
        if not languages.is_supported(doc.language):
            return
        with contextlib.suppress(ContextError):
            self.index.update_source(doc.path, doc.source, doc.language, doc.tree)

    def file_deleted(self, path: Path) -> None:
        self.index.remove_file(path)

    def close(self) -> None:
        self.index.close()

    # -- dictionaries -------------------------------------------------------------------
    @property
    def dictionary_id(self) -> int | None:
        """Id of the dictionary new frames use, or None when there is none yet."""
        return self._dictionaries.current_id

    @property
    def dictionary(self) -> bytes | None:
        return self._dictionaries.current

    @property
    def dictionaries(self) -> dict[int, bytes]:
        """Every stored dictionary by id (send these to peers once)."""
        return self._dictionaries.all()

    def training_samples(
        self,
        files: Sequence[str] | None = None,
        payloads: int = TRAIN_PAYLOADS,
        seconds: float = TRAIN_SECONDS,
        should_cancel: CancelCheck | None = None,
    ) -> list[bytes]:
        """Training material for the dictionary: real task payloads of this workspace.

        The frames the dictionary is for are :meth:`task_context` payloads, so the samples
        are exactly that, for random cursors in random files (``files``, default all),
        with budgets spread over the 2 to 8 KB range. They share what payloads of one
        workspace share (its most-used signatures, our section headers), which code
        chunks alone do not teach: on the standard library the gain on held-out payloads
        is about 1.7x against 1.1x for a dictionary trained on raw code. Sampling stops
        after ``payloads`` samples or ``seconds``; a tiny workspace adds its code.
        """

        def payload(rel: str, line: int, budget: int) -> str:
            uri = path_to_uri(self.index.absolute(rel))
            return _task_context(
                self.files,
                self.repomap,
                uri,
                line,
                0,
                budget,
                counter_or_estimate(None),
                iterations=_SAMPLE_ITERATIONS,
            ).text

        chosen = list(self.index.files() if files is None else files)
        return training_samples(self.files, chosen, payload, payloads, seconds, should_cancel)

    def train_dictionary(
        self, samples: Iterable[bytes] | None = None, should_cancel: CancelCheck | None = None
    ) -> int:
        """Train and store a dictionary (default: on :meth:`training_samples`); return its id.

        Raises :class:`CompressionError` when there is too little material.
        """
        if samples is None:
            samples = self.training_samples(should_cancel=should_cancel)
        return self._dictionaries.add(compression.train_dictionary(samples))

    def compress(self, data: bytes) -> tuple[bytes, int | None]:
        """zstd-compress ``data`` with the workspace dictionary (if any)."""
        return self._dictionaries.compress(data)

    def decompress(self, data: bytes) -> bytes:
        """Inverse of :meth:`compress`, capped at ``max_decompressed_bytes``."""
        return self._dictionaries.decompress(data, self.settings.max_decompressed_bytes)

    # -- completion ----------------------------------------------------------------------
    def completion_context(
        self,
        uri: str,
        line: int,
        character: int,
        budget_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> CompletionContext:
        """Preamble + prefix/suffix around a cursor, fitted to ``budget_tokens``."""
        budget = (
            budget_tokens if budget_tokens is not None else self.settings.completion_budget_tokens
        )
        return completion_context(
            self.files,
            self.repomap,
            uri,
            line,
            character,
            budget,
            counter_or_estimate(count_tokens),
        )

    # Public pieces for :mod:`swarm_lsp.context.completion_window` (with
    # :func:`swarm_lsp.context.preamble.completion_preamble` over :attr:`repomap`).
    def document(self, uri: str) -> Document | None:
        """The open document, or a snapshot read from disk, or None."""
        return self.files.document(uri)

    def display_path(self, uri: str, doc: Document | None) -> str:
        """The path a prompt names a document by (relative to the workspace)."""
        return self.files.display_path(uri, doc)

    # -- task context -----------------------------------------------------------------
    def task_context(
        self,
        uri: str | None,
        line: int | None,
        character: int | None,
        budget_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> PackedContext:
        """Repo map, relevant definitions in full, and the current file around the cursor."""
        budget = budget_tokens if budget_tokens is not None else self.settings.task_budget_tokens
        if uri:
            self.refresh_document(uri)
        return _task_context(
            self.files,
            self.repomap,
            uri,
            line,
            character,
            budget,
            counter_or_estimate(count_tokens),
        )

    def task_context_bytes(
        self,
        uri: str | None,
        line: int | None,
        character: int | None,
        budget_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> tuple[bytes, int | None]:
        """:meth:`task_context` as one zstd frame for ``Task.context``, and its dict id."""
        packed = self.task_context(uri, line, character, budget_tokens, count_tokens)
        return self.compress(packed.text.encode("utf-8", "surrogatepass"))

    # -- symbols -------------------------------------------------------------------------
    def document_symbols(self, uri: str) -> list[Symbol]:
        """Hierarchical symbols of a document (open, or read from disk)."""
        doc = self.files.document(uri)
        if doc is None or doc.language is None or not languages.is_supported(doc.language):
            return []
        display = self.files.display_path(uri, doc)
        try:
            tags = extract_tags(doc.source, doc.language, display, doc.tree)
        except ContextError:
            return []
        return symbol_tree(t for t in tags if t.role == "def")

    def workspace_symbols(self, query: str, limit: int = 200) -> list[Symbol]:
        """Definitions whose names match ``query`` (fuzzy), best first, with their paths."""
        scored: list[tuple[int, int, str, int, Tag]] = []
        for name in self.index.names():  # score each distinct name once
            score = match_score(query, name)
            if score is None:
                continue
            for tag in self.index.definitions(name):
                scored.append((-score, len(name), tag.path, tag.line, tag))
        scored.sort(key=lambda item: item[:4])
        return [
            symbol_of(item[4], str(self.index.absolute(item[4].path))) for item in scored[:limit]
        ]


__all__ = [
    "AMBIGUOUS_FILES",
    "MIN_TRAIN_CODE_BYTES",
    "NEAR_LINES_AFTER",
    "NEAR_LINES_BEFORE",
    "PREAMBLE_SHARE",
    "SUFFIX_SHARE",
    "CompletionContext",
    "ContextEngine",
    "IndexStats",
    "PackedContext",
    "Symbol",
    "comment_prefix",
]
