"""The context engine: what the LSP server and the workers call.

It owns the open documents, the workspace symbol index, the repo map and the zstd
dictionary, and turns a cursor position into model context:

* :meth:`ContextEngine.completion_context` — small and fast (every keystroke): a preamble
  (file path, imports, signatures of the symbols used near the cursor that are defined in
  other files, the enclosing scope) and the prefix/suffix around the cursor. Stable
  material comes first so llama.cpp can reuse its evaluated prompt prefix.
* :meth:`ContextEngine.task_context` — larger, for remote tasks: a repo map, the full text
  of the most relevant definitions, and the current file around the cursor.

Unknown languages degrade to plain-text context; nothing here raises for a bad position.
"""

from __future__ import annotations

import contextlib
import posixpath
import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from swarm_lsp.config import ContextSettings
from swarm_lsp.context import compression, languages
from swarm_lsp.context.documents import Document, DocumentStore, path_to_uri, uri_to_path
from swarm_lsp.context.index import (
    CancelCheck,
    FileTags,
    IndexStats,
    ProgressCallback,
    SymbolIndex,
    looks_binary,
)
from swarm_lsp.context.packing import (
    PackedContext,
    TokenCounter,
    counter_or_estimate,
    fit_count,
    keep_head,
    keep_tail,
)
from swarm_lsp.context.repomap import (
    ITERATIONS,
    MAX_DEFINING_FILES,
    RepoMap,
    render_signatures,
)
from swarm_lsp.context.symbols import Symbol, match_score, symbol_of, symbol_tree
from swarm_lsp.context.tags import Tag, extract_tags, signature_of
from swarm_lsp.context.text import decode
from swarm_lsp.errors import CompressionError, ContextError

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

_LINE_COMMENT = {
    "python": "#",
    "lua": "--",
}

# Top-level statements that import things, per language.
_IMPORT_NODES: dict[str, frozenset[str]] = {
    "python": frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    "javascript": frozenset({"import_statement"}),
    "typescript": frozenset({"import_statement"}),
    "tsx": frozenset({"import_statement"}),
    "go": frozenset({"package_clause", "import_declaration"}),
    "rust": frozenset({"use_declaration", "extern_crate_declaration"}),
    "java": frozenset({"package_declaration", "import_declaration"}),
    "c": frozenset({"preproc_include"}),
    "cpp": frozenset({"preproc_include", "using_declaration"}),
    "lua": frozenset(),
}

# Nodes that open a named scope whose header helps a completion inside it.
_SCOPE_NODES = frozenset(
    {
        "function_definition",
        "class_definition",
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "method_declaration",
        "constructor_declaration",
        "enum_declaration",
        "record_declaration",
        "function_item",
        "impl_item",
        "trait_item",
        "mod_item",
        "struct_item",
        "enum_item",
        "class_specifier",
        "struct_specifier",
        "namespace_definition",
        "arrow_function",
        "function_expression",
    }
)

#: Share of the completion budget the preamble may use (the rest is prefix and suffix).
PREAMBLE_SHARE = 0.35
#: Share of what is left after the preamble that goes to the suffix.
SUFFIX_SHARE = 0.25
#: A name defined in more files than this is used only when an imported module defines it.
AMBIGUOUS_FILES = 4
#: Lines around the cursor whose identifiers count as "used near the cursor".
NEAR_LINES_BEFORE = 30
NEAR_LINES_AFTER = 8
_DICT_DIR = "dictionaries"
_CURRENT_DICT = "current"
#: Below this much indexed code a dictionary learns little the frames do not already say.
MIN_TRAIN_CODE_BYTES = 64 * 1024
_TRAIN_PAYLOADS = 96
_TRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class CompletionContext:
    """Context for one completion request.

    The prompt is ``preamble + prefix`` (then ``suffix`` for FIM models). ``symbols`` names
    the other-file definitions whose signatures made it into the preamble.
    """

    prefix: str
    suffix: str
    preamble: str
    language: str | None
    path: str
    tokens: int = 0
    symbols: tuple[str, ...] = ()

    @property
    def prompt_prefix(self) -> str:
        return self.preamble + self.prefix


def comment_prefix(language: str | None) -> str:
    if language is None:
        return "#"
    return _LINE_COMMENT.get(language, "//")


def _comment_block(text: str, language: str | None) -> str:
    marker = comment_prefix(language)
    return "".join(f"{marker} {line}".rstrip() + "\n" for line in text.splitlines())


def _ends_with_path(path: str, tail: str) -> bool:
    """``a/b/c`` ends with ``b/c`` (whole segments only)."""
    return path == tail or path.endswith("/" + tail)


_SOURCE_EXTENSIONS = frozenset(
    {".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".lua"}
)


_NOT_PATH_SEGMENTS = frozenset({"", ".", "..", "crate", "self", "super"})


def _outermost(tags: list[Tag]) -> list[Tag]:
    """``tags`` without those inside another one of them (a method of a listed class)."""
    kept: list[Tag] = []
    for tag in tags:
        inside = any(
            other is not tag
            and other.path == tag.path
            and other.start_line <= tag.start_line
            and tag.end_line <= other.end_line
            and (other.start_line, other.end_line) != (tag.start_line, tag.end_line)
            for other in tags
        )
        if not inside:
            kept.append(tag)
    return kept


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
        self._dict_lock = threading.Lock()
        self._dictionaries = compression.load_dictionaries(cache_dir / _DICT_DIR)
        self._dictionary_id = self._read_current_dictionary()
        self._file_cache: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._file_cache_lock = threading.Lock()

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
            and self._dictionary_id is None
            and self._code_bytes_at_least(MIN_TRAIN_CODE_BYTES)
        ):
            # A tiny workspace has too little code to train on: frames go without one.
            if progress is not None:
                progress(stats.files_total, stats.files_total, "Training the zstd dictionary")
            with contextlib.suppress(CompressionError):
                self.train_dictionary(should_cancel=should_cancel)
        return stats

    def _code_bytes_at_least(self, threshold: int) -> bool:
        total = 0
        for rel in self.index.files():
            with contextlib.suppress(OSError):
                total += self.index.absolute(rel).stat().st_size
            if total >= threshold:
                return True
        return False

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
        return self._dictionary_id

    @property
    def dictionary(self) -> bytes | None:
        if self._dictionary_id is None:
            return None
        return self._dictionaries.get(self._dictionary_id)

    @property
    def dictionaries(self) -> dict[int, bytes]:
        """Every stored dictionary by id (send these to peers once)."""
        return dict(self._dictionaries)

    def training_samples(
        self,
        files: Sequence[str] | None = None,
        payloads: int = _TRAIN_PAYLOADS,
        seconds: float = _TRAIN_SECONDS,
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
        rng = random.Random(0)
        chosen = list(self.index.files() if files is None else files)
        samples: list[bytes] = []
        if not chosen:
            return samples
        cancel = should_cancel or (lambda: False)
        deadline = time.monotonic() + seconds
        attempts = 0
        while len(samples) < payloads and attempts < payloads * 3 and not cancel():
            if time.monotonic() > deadline:
                break
            attempts += 1
            rel = rng.choice(chosen)
            text = self._file_text(rel)
            if not text:
                continue
            line = rng.randrange(text.count("\n") + 1)
            # Fewer PageRank iterations: a sample needs a plausible map, not a converged one.
            packed = self._task_context(
                path_to_uri(self.index.absolute(rel)), line, 0, rng.randint(500, 2500), None, 12
            )
            samples.append(packed.text.encode("utf-8", "surrogatepass"))
        if sum(len(s) for s in samples) < 256 * 1024:
            for rel in chosen:
                data = self._read_bytes(self.index.absolute(rel))
                if data is not None:
                    samples.extend(compression.sample_chunks(data))
                if sum(len(s) for s in samples) >= 512 * 1024:
                    break
        return samples

    def train_dictionary(
        self, samples: Iterable[bytes] | None = None, should_cancel: CancelCheck | None = None
    ) -> int:
        """Train and store a dictionary (default: on :meth:`training_samples`); return its id.

        Raises :class:`CompressionError` when there is too little material.
        """
        if samples is None:
            samples = self.training_samples(should_cancel=should_cancel)
        data = compression.train_dictionary(samples)
        with self._dict_lock:
            directory = self.cache_dir / _DICT_DIR
            ident = compression.save_dictionary(directory, data)
            (directory / _CURRENT_DICT).write_text(str(ident), encoding="ascii")
            self._dictionaries[ident] = data
            self._dictionary_id = ident
        return ident

    def _read_current_dictionary(self) -> int | None:
        try:
            ident = int((self.cache_dir / _DICT_DIR / _CURRENT_DICT).read_text("ascii").strip())
        except (OSError, ValueError):
            return None
        return ident if ident in self._dictionaries else None

    def compress(self, data: bytes) -> tuple[bytes, int | None]:
        """zstd-compress ``data`` with the workspace dictionary (if any)."""
        dictionary = self.dictionary
        return compression.compress(data, dictionary), self._dictionary_id if dictionary else None

    def decompress(self, data: bytes) -> bytes:
        """Inverse of :meth:`compress`, capped at ``max_decompressed_bytes``."""
        return compression.decompress(
            data, self.settings.max_decompressed_bytes, self._dictionaries
        )

    # -- documents and files -------------------------------------------------------------
    def _document(self, uri: str) -> Document | None:
        """The open document, or a snapshot read from disk, or None."""
        doc = self.documents.get(uri)
        if doc is not None:
            return doc
        path = uri_to_path(uri)
        if path is None:
            return None
        data = self._read_bytes(path)
        if data is None:
            return None
        language = languages.language_for_path(path)
        tree = None
        if language is not None:
            tree = languages.get_parser(language).parse(data)
        return Document(uri, decode(data), language, tree, -1, data)

    def _read_bytes(self, path: Path) -> bytes | None:
        """A file's bytes, or None when missing, too big or binary."""
        try:
            if path.stat().st_size > self.settings.max_file_bytes:
                return None
            data = path.read_bytes()
        except OSError:
            return None
        return None if looks_binary(data[:8192]) else data

    def _display_path(self, uri: str, doc: Document | None) -> str:
        path = doc.path if doc is not None else uri_to_path(uri)
        if path is None:
            return uri
        return self.index.relative(path) if self.root is not None else path.name

    def _file_text(self, rel: str) -> str | None:
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
        with self._file_cache_lock:
            text = self._file_cache.get(key)
            if text is not None:
                self._file_cache.move_to_end(key)
                return text
        data = self._read_bytes(path)
        if data is None:
            return None
        text = decode(data)
        with self._file_cache_lock:
            self._file_cache[key] = text
            while len(self._file_cache) > 64:
                self._file_cache.popitem(last=False)
        return text

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
        count = counter_or_estimate(count_tokens)
        doc = self._document(uri)
        display = self._display_path(uri, doc)
        if doc is None:
            return CompletionContext("", "", "", None, display)
        offset = doc.offset_at(line, character)
        window = max(256, budget * 12)  # bytes: more than any budget can hold
        head_start = max(0, offset - window)
        prefix_raw = decode(doc.source[head_start:offset])
        if head_start > 0:
            prefix_raw = prefix_raw[prefix_raw.find("\n") + 1 :] if "\n" in prefix_raw else ""
        suffix_raw = decode(doc.source[offset : offset + window])
        if offset + window < len(doc.source) and "\n" in suffix_raw:
            suffix_raw = suffix_raw[: suffix_raw.rfind("\n") + 1]

        language = doc.language
        preamble_budget = int(budget * PREAMBLE_SHARE)
        preamble, symbols = self._completion_preamble(
            doc, display, offset, prefix_raw, suffix_raw, head_start, preamble_budget, count
        )
        remaining = max(0, budget - count(preamble))
        suffix = keep_head(suffix_raw, int(remaining * SUFFIX_SHARE), count)
        prefix = keep_tail(prefix_raw, remaining - count(suffix), count)
        tokens = count(preamble) + count(prefix) + count(suffix)
        return CompletionContext(prefix, suffix, preamble, language, display, tokens, symbols)

    # Public pieces for :mod:`swarm_lsp.context.completion_window`.
    def document(self, uri: str) -> Document | None:
        """The open document, or a snapshot read from disk, or None."""
        return self._document(uri)

    def display_path(self, uri: str, doc: Document | None) -> str:
        """The path a prompt names a document by (relative to the workspace)."""
        return self._display_path(uri, doc)

    def completion_preamble(
        self,
        doc: Document,
        display: str,
        offset: int,
        prefix_raw: str,
        suffix_raw: str,
        head_start: int,
        budget: int,
        count: TokenCounter,
    ) -> tuple[str, tuple[str, ...]]:
        """Path, imports (when the prefix starts after ``head_start`` > 0), other files'
        signatures used near the cursor and enclosing scopes, within ``budget`` tokens."""
        return self._completion_preamble(
            doc, display, offset, prefix_raw, suffix_raw, head_start, budget, count
        )

    def _completion_preamble(
        self,
        doc: Document,
        display: str,
        offset: int,
        prefix_raw: str,
        suffix_raw: str,
        head_start: int,
        budget: int,
        count: TokenCounter,
    ) -> tuple[str, tuple[str, ...]]:
        language = doc.language
        header = _comment_block(f"Path: {display}", language)
        if count(header) > budget:
            return "", ()
        parts = [header]
        used = count(header)
        # Imports: stable, and only worth it when the prefix no longer shows the file's top.
        if doc.tree is not None and language is not None and head_start > 0:
            imports = self._imports_text(doc, language)
            if imports:
                block = keep_head(imports, (budget - used) // 2, count)
                if block:
                    parts.append(block if block.endswith("\n") else block + "\n")
                    used += count(parts[-1])
        # Enclosing scope: cursor-local, goes last, but reserve its room now.
        scope_text = ""
        if doc.tree is not None:
            scope_text = self._enclosing_scope(doc, offset, head_start, language)
            if scope_text and used + count(scope_text) > budget:
                scope_text = ""
        reserve = count(scope_text)
        # Signatures of other files' definitions used near the cursor, best first.
        names = self._names_near_cursor(prefix_raw, suffix_raw)
        defs = self._definitions_for(names, doc, display, per_name=2) if language else []
        chosen: tuple[str, ...] = ()
        if defs:

            def render(k: int) -> str:
                if k == 0:
                    return ""
                subset = sorted(defs[:k], key=lambda t: (t.path, t.start_line, t.line))
                return _comment_block(render_signatures(subset, self.repomap.parents_of), language)

            k, block = fit_count(len(defs), render, budget - used - reserve, count)
            if block:
                parts.append(block)
                chosen = tuple(dict.fromkeys(t.name for t in defs[:k]))
        if scope_text:
            parts.append(scope_text)
        return "".join(parts), chosen

    def _imports_text(self, doc: Document, language: str) -> str:
        kinds = _IMPORT_NODES.get(language, frozenset())
        root = doc.tree.root_node if doc.tree is not None else None
        if root is None:
            return ""
        pieces: list[str] = []
        for child in root.children:
            if child.type in kinds or (
                language == "lua"
                and child.type == "variable_declaration"
                and b"require" in doc.source[child.start_byte : child.end_byte]
            ):
                pieces.append(decode(doc.source[child.start_byte : child.end_byte]))
            if child.start_byte > 0 and len(pieces) > 200:
                break
        return "\n".join(pieces) + ("\n" if pieces else "")

    def _enclosing_scope(
        self, doc: Document, offset: int, head_start: int, language: str | None
    ) -> str:
        """Headers of the scopes around the cursor whose first line the prefix cut off."""
        tree = doc.tree
        if tree is None:
            return ""
        node: Node | None = tree.root_node.descendant_for_byte_range(offset, offset)
        headers: list[str] = []
        while node is not None:
            if node.type in _SCOPE_NODES and node.start_byte < head_start:
                headers.append(signature_of(doc.source, node))
            node = node.parent
        if not headers:
            return ""
        lines = [f"in: {h}" for h in reversed(headers) if h]
        return _comment_block("\n".join(lines), language)

    @staticmethod
    def _names_near_cursor(prefix_raw: str, suffix_raw: str) -> list[str]:
        """Identifiers around the cursor, nearest first."""
        before_start = len(prefix_raw)
        for _ in range(NEAR_LINES_BEFORE + 1):
            before_start = prefix_raw.rfind("\n", 0, max(0, before_start - 1))
            if before_start < 0:
                before_start = 0
                break
        after_end = 0
        for _ in range(NEAR_LINES_AFTER):
            found = suffix_raw.find("\n", after_end + 1)
            if found < 0:
                after_end = len(suffix_raw)
                break
            after_end = found
        before = [
            (len(prefix_raw) - m.end(), m.group())
            for m in _IDENTIFIER.finditer(prefix_raw, before_start)
        ]
        after = [(m.start(), m.group()) for m in _IDENTIFIER.finditer(suffix_raw, 0, after_end)]
        ordered = sorted(before + after, key=lambda item: item[0])
        return list(dict.fromkeys(name for _, name in ordered))

    def _definitions_for(
        self, names: Iterable[str], doc: Document, display: str, per_name: int
    ) -> list[Tag]:
        """Definitions in *other* files of ``names`` (in order), best candidates first."""
        own = self.index.get(display) if self.root is not None else None
        own_names = {t.name for t in own.definitions} if own is not None else set()
        modules = self._imported_paths(own)
        chosen: list[Tag] = []
        for name in names:
            if name in own_names:
                continue  # the local definition is the one in use
            candidates = [t for t in self.index.definitions(name) if t.path != display]
            files = len({t.path for t in candidates})
            if not candidates or files > MAX_DEFINING_FILES:
                continue
            ranked = [(self._candidate_rank(t, display, modules), t) for t in candidates]
            ranked.sort(key=lambda item: item[0])
            if ranked[0][0][0] == 0:  # defined by a module this file imports: only those
                ranked = [item for item in ranked if item[0][0] == 0]
            elif files > AMBIGUOUS_FILES:
                continue  # a common name (get, join …) none of our imports defines: noise
            chosen.extend(t for _, t in ranked[:per_name])
        return chosen

    @staticmethod
    def _imported_paths(own: FileTags | None) -> list[str]:
        """Imported modules as path fragments, whatever the language spells them as.

        ``shapes.geometry`` → ``shapes/geometry``; ``./util/geometry`` → ``util/geometry``;
        ``crate::geo::shapes`` → ``geo/shapes``; ``"geometry.h"`` → ``geometry``;
        ``example.com/project/geo`` keeps its last segments usable (``…/project/geo``).
        """
        if own is None:
            return []
        out = []
        for tag in own.imports:
            if tag.kind != "module":
                continue
            name = tag.name.strip()
            stem, ext = posixpath.splitext(name)
            if ext.lower() in _SOURCE_EXTENSIONS:
                name = stem
            name = name.replace("::", "/")
            if "/" not in name:
                name = name.replace(".", "/")  # Python/Java dotted modules
            parts = [
                p for p in name.split("/") if p not in ("", ".", "..", "crate", "self", "super")
            ]
            if parts:
                out.append("/".join(parts))
        return out

    @staticmethod
    def _candidate_rank(tag: Tag, display: str, modules: list[str]) -> tuple[int, int, str]:
        """Sort key: defined by an imported module first, then nearer folders, then path."""
        stem = posixpath.splitext(tag.path)[0]
        folder = posixpath.dirname(tag.path)
        imported = any(
            _ends_with_path(stem, m)
            or (folder and (_ends_with_path(m, folder) or _ends_with_path(folder, m)))
            for m in modules
        )
        here = display.split("/")[:-1]
        there = tag.path.split("/")[:-1]
        shared = 0
        for a, b in zip(here, there, strict=False):
            if a != b:
                break
            shared += 1
        return (0 if imported else 1, -shared, tag.path)

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
        return self._task_context(uri, line, character, budget_tokens, count_tokens)

    def _task_context(
        self,
        uri: str | None,
        line: int | None,
        character: int | None,
        budget_tokens: int | None,
        count_tokens: TokenCounter | None,
        iterations: int = ITERATIONS,
    ) -> PackedContext:
        budget = budget_tokens if budget_tokens is not None else self.settings.task_budget_tokens
        count = counter_or_estimate(count_tokens)
        packed = PackedContext(budget=budget)
        if uri and iterations == ITERATIONS:  # a real request, not a training sample
            self.refresh_document(uri)
        doc = self._document(uri) if uri else None
        display = self._display_path(uri, doc) if uri else ""
        language = doc.language if doc is not None else None
        offset = doc.offset_at(line or 0, character or 0) if doc is not None else 0

        names: list[str] = []
        if doc is not None:
            window = 8000
            before = decode(doc.source[max(0, offset - window) : offset])
            after = decode(doc.source[offset : offset + window])
            names = self._names_near_cursor(before, after)

        header = f"Workspace: {self.root.name if self.root else '(none)'}\n"
        if doc is not None:
            header += f"Current file: {display} ({language or 'plain text'})"
            if line is not None:
                header += f", cursor at line {line + 1}"
            header += "\n"
        packed.add("header", header + "\n", count)
        left = budget - packed.tokens

        map_budget = int(left * (0.3 if doc is not None else 1.0))
        focus_files = [display] if doc is not None else []
        map_text, _ = self.repomap.fit(
            map_budget, focus_files, names, focus_files, count, iterations=iterations
        )
        if map_text:
            packed.add("repo map", "Repository map (signatures):\n" + map_text + "\n", count)
        if doc is None:
            return packed

        left = budget - packed.tokens
        defs_budget = int(left * 0.45)
        defs = _outermost(self._definitions_for(names, doc, display, per_name=1)[:64])
        blocks = [b for b in (self._definition_block(t) for t in defs) if b]
        if blocks:

            def render(k: int) -> str:
                return "Relevant definitions:\n" + "".join(blocks[:k]) + "\n" if k else ""

            _, text = fit_count(len(blocks), render, defs_budget, count)
            if text:
                packed.add("definitions", text, count)

        left = budget - packed.tokens
        title = f"--- {display} ---\n"
        left -= count(title)
        if left > 0:
            before = decode(doc.source[:offset])
            after = decode(doc.source[offset:])
            after_part = keep_head(after, left // 3, count)
            before_part = keep_tail(before, left - count(after_part), count)
            packed.add("current file", title + before_part + after_part, count)
        return packed

    def _definition_block(self, tag: Tag, max_lines: int = 80) -> str:
        text = self._file_text(tag.path)
        if text is None:
            return ""
        lines = text.splitlines()
        start = max(0, min(tag.start_line, len(lines)))
        end = min(len(lines), tag.end_line + 1, start + max_lines)
        body = "\n".join(lines[start:end])
        more = " (truncated)" if tag.end_line + 1 > end else ""
        return f"--- {tag.path} lines {start + 1}-{end}{more} ---\n{body}\n"

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
        doc = self._document(uri)
        if doc is None or doc.language is None or not languages.is_supported(doc.language):
            return []
        display = self._display_path(uri, doc)
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
    "CompletionContext",
    "ContextEngine",
    "IndexStats",
    "PackedContext",
    "Symbol",
]
