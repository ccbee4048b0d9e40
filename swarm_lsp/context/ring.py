"""Extra context gathered at stable moments: a ring of code chunks (llama.vim's ring buffer).

A tiny completion model sees only the window around the cursor. The code the user looked at
or worked on a moment ago, in another file or far up this one, is often what the next line
uses. :class:`ContextRing` keeps a few chunks of it:

- :meth:`ContextRing.pick` queues the lines around a cursor (the server picks when the user
  leaves a file and when they save one); an identical chunk is not queued twice, and one very
  similar to a new chunk (most of its words shared) is evicted in its favour;
- :meth:`ContextRing.update` moves the queue into the ring at a stable moment, evicting the
  oldest chunks to stay within ``max_chunks`` and ``max_tokens``, and bumps ``version``;
- :meth:`ContextRing.render` writes the ring as a prompt section for one document, leaving
  out the chunks that mostly repeat the text around its cursor (they make a small model copy
  what is already there).

The prompt puts this section first. Its text changes only when the caller renders it again,
which the completion windows do only at stable moments (file switch, save, typing paused),
never on a keystroke: llama.cpp reuses the evaluated prompt only up to the first change.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable

from swarm_lsp.context.packing import TokenCounter, estimate_tokens, keep_head
from swarm_lsp.context.preamble import comment_prefix

#: A queued chunk sharing more than this much of its words with a new one is replaced by it.
EVICT_SIMILAR = 0.9
#: A chunk sharing more than this with the text around the cursor is left out of the prompt.
SKIP_NEAR = 0.5
QUEUE_SIZE = 16
MIN_LINES = 3  # a chunk with fewer non-blank lines says too little to be worth its tokens

_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Lines of one file: ``text`` ends with a newline; ``line`` is its first line (0-based)."""

    path: str
    line: int
    text: str
    language: str | None
    tokens: int
    words: tuple[str, ...]

    @property
    def section(self) -> str:
        """The chunk as it appears in the prompt: a comment naming its place, then the code."""
        return f"{comment_prefix(self.language)} {self.path}:{self.line + 1}\n{self.text}\n"


def words_of(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text))


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """How much of two word lists is shared, 0 (nothing) to 1: 2 * common / (|a| + |b|).

    ``common`` counts the words of ``b`` that occur in ``a`` (the measure llama.vim uses).
    """
    first = list(a)
    second = list(b)
    if not first and not second:
        return 1.0
    seen = set(first)
    common = sum(1 for word in second if word in seen)
    return min(1.0, 2.0 * common / (len(first) + len(second)))


class ContextRing:
    """A bounded, deduplicated ring of code chunks; see the module docstring. Thread-safe."""

    def __init__(
        self,
        *,
        max_chunks: int = 8,
        chunk_lines: int = 32,
        max_tokens: int = 512,
        count: TokenCounter | None = None,
    ) -> None:
        self.max_chunks = max_chunks
        self.chunk_lines = max(MIN_LINES, chunk_lines)
        self.max_tokens = max_tokens
        self.count: TokenCounter = count or estimate_tokens
        self.version = 0
        self.evicted = 0
        self._chunks: list[Chunk] = []
        self._queued: list[Chunk] = []
        self._committed: tuple[Chunk, ...] = ()  # the ring at the last update
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_chunks > 0 and self.max_tokens > 0

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        with self._lock:
            return tuple(self._chunks)

    @property
    def queued(self) -> tuple[Chunk, ...]:
        with self._lock:
            return tuple(self._queued)

    @property
    def tokens(self) -> int:
        with self._lock:
            return sum(c.tokens for c in self._chunks)

    # -- gathering ----------------------------------------------------------------------------
    def pick(self, path: str, text: str, line: int, language: str | None = None) -> bool:
        """Queue the ``chunk_lines`` lines of ``text`` around ``line``; True when queued."""
        if not self.enabled:
            return False
        lines = text.split("\n")
        half = self.chunk_lines // 2
        start = max(0, min(line - half, len(lines) - self.chunk_lines))
        end = min(len(lines), start + self.chunk_lines)
        while start < end and not lines[start].strip():
            start += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if sum(1 for item in lines[start:end] if item.strip()) < MIN_LINES:
            return False
        body = "\n".join(lines[start:end]) + "\n"
        body = keep_head(body, self.max_tokens, self.count)  # one chunk never fills more
        if not body.strip():
            return False
        chunk = Chunk(path, start, body, language, self.count(body), words_of(body))
        with self._lock:
            if any(c.text == chunk.text for c in (*self._chunks, *self._queued)):
                return False
            for pool in (self._queued, self._chunks):
                for old in [c for c in pool if similarity(c.words, chunk.words) > EVICT_SIMILAR]:
                    pool.remove(old)
                    self.evicted += 1
            self._queued.append(chunk)
            del self._queued[:-QUEUE_SIZE]
        return True

    def update(self) -> bool:
        """A stable moment: move the queue into the ring; True when the ring changed.

        Chunks :meth:`pick` evicted since the last update (a similar one came) count as a
        change too.
        """
        with self._lock:
            self._chunks.extend(self._queued)
            self._queued.clear()
            while len(self._chunks) > self.max_chunks or (
                len(self._chunks) > 1 and sum(c.tokens for c in self._chunks) > self.max_tokens
            ):
                self._chunks.pop(0)
                self.evicted += 1
            now = tuple(self._chunks)
            if now == self._committed:
                return False
            self._committed = now
            self.version += 1
            return True

    def forget(self, path: str) -> None:
        """Drop every chunk of ``path`` (a deleted file); applied at the next :meth:`update`."""
        with self._lock:
            self._queued = [c for c in self._queued if c.path != path]
            self._chunks = [c for c in self._chunks if c.path != path]

    # -- the prompt section -------------------------------------------------------------------
    def render(self, near: str = "") -> str:
        """The ring as a prompt section, oldest chunk first, without chunks that mostly repeat
        ``near`` (the text around the cursor the prompt shows anyway)."""
        near_words = words_of(near)
        with self._lock:
            chunks = list(self._chunks)
        kept = [c for c in chunks if not near_words or similarity(c.words, near_words) <= SKIP_NEAR]
        return "".join(c.section for c in kept)
