"""A completion prompt that stays put while the user types.

llama.cpp reuses the part of the previous prompt that did not change, so a keystroke should
only append to the prompt. :class:`CompletionWindows` keeps, per open document,

- an *anchor*: the line the prefix starts at. It stays while the text from it to the cursor
  fits the budget; when it no longer does (or the cursor jumps above it), a new anchor leaves
  a quarter of the budget free, so the window moves in large steps, not a line per keystroke;
- a *preamble* (path, imports the window no longer shows, signatures of other files' names
  used near the cursor, enclosing scopes), computed only when the window is anchored and at
  stable moments the server signals with :meth:`mark_stale` (save, typing paused), never on
  a keystroke;
- an *extra* section before it: the :class:`~swarm_lsp.context.ring.ContextRing`'s chunks
  of code from other places, taken when the document's first window is made and at those
  stable moments only (a window that moves because the prefix outgrew it keeps its extra).

It also collects the names a partial word at the cursor may complete to (identifiers of the
document and definitions in the workspace index), for the model's first-word candidates.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import threading
import time

from swarm_lsp.context.completion_context import raw_suffix
from swarm_lsp.context.documents import Document
from swarm_lsp.context.engine import ContextEngine
from swarm_lsp.context.packing import TokenCounter, counter_or_estimate, keep_head, keep_tail
from swarm_lsp.context.preamble import completion_preamble
from swarm_lsp.context.ring import ContextRing
from swarm_lsp.context.text import decode, encode

PREAMBLE_SHARE = 0.25  # of the budget, at most, for the preamble
SUFFIX_SHARE = 0.15  # of the budget for the suffix, when the model sees it (FIM)
FRESH_FILL = 0.75  # a new window fills this much of the prefix budget: the rest is for typing
BYTES_PER_TOKEN_MAX = 12  # raw text read around the cursor: more than any budget can hold
NAME_LIMIT = 48
NAMES_REFRESH_S = 5.0
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


@dataclasses.dataclass
class _Window:
    anchor_line: int
    preamble: str
    symbols: tuple[str, ...]
    prefix_budget: int
    extra: str = ""
    ring_version: int = -1
    stale: bool = False


@dataclasses.dataclass(frozen=True)
class StableContext:
    """What a completion at one cursor sends to the model."""

    preamble: str
    prefix: str
    suffix: str
    path: str
    language: str | None
    anchor_line: int
    moved: bool  # a new window (or preamble) was made for this request
    symbols: tuple[str, ...] = ()
    extra: str = ""  # the ring's section, sent before the preamble
    ring_version: int = -1  # the ring's version the extra was rendered from

    @property
    def head(self) -> str:
        """What comes before the prefix in the prompt: extra context, then the preamble."""
        return self.extra + self.preamble


class CompletionWindows:
    """Per-document prompt windows over a :class:`ContextEngine`; see the module docstring."""

    def __init__(self, engine: ContextEngine, ring: ContextRing | None = None) -> None:
        self.engine = engine
        self.ring = ring
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._names_at = 0.0
        self._names_size = -1

    # -- stable moments ---------------------------------------------------------------------
    def mark_stale(self, uri: str | None = None) -> None:
        """Recompute the preamble at the next request (``None``: every document's)."""
        with self._lock:
            for key, window in self._windows.items():
                if uri is None or key == uri:
                    window.stale = True

    def forget(self, uri: str) -> None:
        with self._lock:
            self._windows.pop(uri, None)

    # -- a request --------------------------------------------------------------------------
    def context(
        self,
        uri: str,
        line: int,
        character: int,
        *,
        count_tokens: TokenCounter | None = None,
        suffix_in_prompt: bool = False,
        budget_tokens: int | None = None,
    ) -> StableContext | None:
        """Preamble, prefix and suffix at a cursor; None when the document is unknown."""
        engine = self.engine
        doc = engine.document(uri)
        if doc is None:
            return None
        budget = budget_tokens or engine.settings.completion_budget_tokens
        count = counter_or_estimate(count_tokens)
        offset = doc.offset_at(line, character)
        cursor_line = doc.lines.position(offset)[0]
        reach = budget * BYTES_PER_TOKEN_MAX
        suffix_raw = raw_suffix(doc, offset, reach)
        suffix = keep_head(suffix_raw, int(budget * SUFFIX_SHARE), count)
        room = budget - (count(suffix) if suffix_in_prompt else 0)

        with self._lock:
            window = self._windows.get(uri)
        if window is not None and window.anchor_line <= cursor_line:
            start = doc.lines.line_start(window.anchor_line)
            prefix = decode(doc.source[start:offset])
            if not window.stale and count(prefix) <= window.prefix_budget:
                return self._result(doc, window, prefix, suffix, moved=False)
            if window.stale:
                # A stable moment: new preamble and extra context, and the anchor stays if
                # the prefix still fits.
                fresh = self._make_window(
                    doc, offset, suffix_raw, room, window.anchor_line, count, None
                )
                if count(prefix) <= fresh.prefix_budget:
                    with self._lock:
                        self._windows[uri] = fresh
                    return self._result(doc, fresh, prefix, suffix, moved=True)

        # The prefix outgrew its window (or the cursor went above it): a new anchor, but the
        # extra context stays what it was unless this is also a stable moment.
        keep = window if window is not None and not window.stale else None
        window = self._make_window(doc, offset, suffix_raw, room, None, count, keep)
        with self._lock:
            self._windows[uri] = window
        start = doc.lines.line_start(window.anchor_line)
        prefix = decode(doc.source[start:offset])
        if count(prefix) > window.prefix_budget:  # one huge line: cut it, unanchored
            prefix = keep_tail(prefix, window.prefix_budget, count)
        return self._result(doc, window, prefix, suffix, moved=True)

    def _result(
        self, doc: Document, window: _Window, prefix: str, suffix: str, *, moved: bool
    ) -> StableContext:
        return StableContext(
            window.preamble,
            prefix,
            suffix,
            self.engine.display_path(doc.uri, doc),
            doc.language,
            window.anchor_line,
            moved,
            window.symbols,
            window.extra,
            window.ring_version,
        )

    def _make_window(
        self,
        doc: Document,
        offset: int,
        suffix_raw: str,
        room: int,
        anchor_line: int | None,
        count: TokenCounter,
        keep_extra: _Window | None,
    ) -> _Window:
        engine = self.engine
        preamble_max = int(room * PREAMBLE_SHARE)
        reach = room * BYTES_PER_TOKEN_MAX
        head_start = max(0, offset - reach)
        head = decode(doc.source[head_start:offset])
        if head_start > 0 and "\n" in head:
            cut = head.find("\n") + 1
            head_start += len(encode(head[:cut]))
            head = head[cut:]
        if anchor_line is None:
            target = int((room - preamble_max) * FRESH_FILL)
            kept = head if count(head) <= target else keep_tail(head, target, count)
            anchor_offset = offset - len(encode(kept))
            anchor_line = doc.lines.position(anchor_offset)[0]
        anchor_offset = doc.lines.line_start(anchor_line)
        display = engine.display_path(doc.uri, doc)
        preamble, symbols = completion_preamble(
            engine.repomap,
            doc,
            display,
            offset,
            head,
            suffix_raw,
            anchor_offset,
            preamble_max,
            count,
        )
        if keep_extra is not None:
            extra, version = keep_extra.extra, keep_extra.ring_version
        else:
            extra, version = self._extra(doc, anchor_offset, offset)
        return _Window(anchor_line, preamble, symbols, room - count(preamble), extra, version)

    def _extra(self, doc: Document, anchor_offset: int, offset: int) -> tuple[str, int]:
        """The ring's section for this document, leaving out chunks the prefix repeats."""
        ring = self.ring
        if ring is None or not ring.enabled:
            return "", -1
        version = ring.version
        shown = decode(doc.source[anchor_offset:offset]).split("\n")
        near = "\n".join(shown[-ring.chunk_lines :])
        return ring.render(near), version

    # -- names for the first word -----------------------------------------------------------
    def names_for(self, word: str, ctx: StableContext, limit: int = NAME_LIMIT) -> list[str]:
        """Names ``word`` may be the start of: the document's own first, then the index's."""
        if not word:
            return []
        found: dict[str, None] = {}
        local = ctx.suffix + "\n" + ctx.prefix + "\n" + ctx.preamble + "\n" + ctx.extra
        for match in _IDENTIFIER.finditer(local):
            name = match.group()
            if name != word and name.startswith(word):
                found[name] = None
        names = self._index_names()
        start = bisect.bisect_left(names, word)
        for name in names[start:]:
            if not name.startswith(word) or len(found) >= limit:
                break
            if name != word:
                found.setdefault(name, None)
        return list(found)[:limit]

    def _index_names(self) -> list[str]:
        index = self.engine.index
        now = time.monotonic()
        size = len(index)
        if size != self._names_size or now - self._names_at > NAMES_REFRESH_S:
            self._names = sorted(index.names())
            self._names_at = now
            self._names_size = size
        return self._names
