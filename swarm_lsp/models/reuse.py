"""Answers that need no model call: typed-ahead and recent completions by prefix.

When the user types the start of the suggestion on screen, the rest of it is still the
answer (llama.vim, Copilot do the same); when the cursor comes back to a prefix answered a
moment ago, so is that answer. Both are lookups here, keyed by the text before the cursor
and the rest of the cursor's line.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

TAIL_CHARS = 512  # how much of the text before the cursor identifies a position


@dataclasses.dataclass(frozen=True)
class Hit:
    """A reused answer: the text to insert now, and how it was found."""

    text: str
    kind: str  # "typed-ahead" | "cached"
    typed: int  # characters of the suggestion the user has typed since


class CompletionCache:
    """A small LRU of (document, prefix tail, line rest) → completion text."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, prefix: str, line_rest: str, text: str) -> None:
        """Remember ``text`` as the answer at a cursor with ``prefix`` before it."""
        if not text:
            return
        entry = (key, prefix[-TAIL_CHARS:], line_rest)
        with self._lock:
            self._entries[entry] = text
            self._entries.move_to_end(entry)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def lookup(self, key: str, prefix: str, line_rest: str) -> Hit | None:
        """The answer for this cursor without a model call, or None."""
        tail = prefix[-TAIL_CHARS:]
        with self._lock:
            exact = self._entries.get((key, tail, line_rest))
            if exact is not None:
                self._entries.move_to_end((key, tail, line_rest))
                return Hit(exact, "cached", 0)
            for (doc, seen, rest), text in reversed(self._entries.items()):
                if doc != key or rest != line_rest:
                    continue
                typed = _typed_into(prefix, seen, text)
                if typed:
                    remaining = text[typed:]
                    self._entries[(key, tail, line_rest)] = remaining
                    self._entries.move_to_end((key, tail, line_rest))
                    return Hit(remaining, "typed-ahead", typed)
        return None

    def forget(self, key: str) -> None:
        with self._lock:
            for entry in [e for e in self._entries if e[0] == key]:
                del self._entries[entry]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _typed_into(prefix: str, seen: str, text: str) -> int:
    """How many characters of ``text`` the user typed after ``seen`` to get ``prefix``.

    0 when ``prefix`` is not ``seen`` followed by a proper, non-empty start of ``text``.
    """
    limit = min(len(text) - 1, len(prefix))
    for typed in range(limit, 0, -1):
        if prefix.endswith(text[:typed]) and prefix[: len(prefix) - typed].endswith(seen):
            return typed
    return 0
