"""When a streamed answer is done: a tiny local model that has said what it knows goes on.

It starts a new turn (``Question:``, ``Sources:`` …), says again what it already said, or
degenerates into one ever-growing word (``area-of-circle-area-of-circle-radius-…``) or a list
whose items grow by one hyphenated part. :class:`StopWhenDone` watches the stream and says stop
at the first of these, so an answer ends when it is done rather than at a token cap.

What is compared are *units*: the text's words, split further at hyphens, so a loop hidden
inside one hyphenated word is seen like a loop of words. Legitimate answers keep their shape:
inside a fenced code block a repeat has to be much longer (code repeats lines and call
patterns), and paths and ``file:line`` citations are single units (never split at ``/``, ``.``
or ``:``), so citing one file many times is not a loop.
"""

from __future__ import annotations

import re

#: A model that starts another turn of the conversation is done.
_NEW_TURN = re.compile(r"\n\s*(Question|Sources|Answer|User|Assistant)\s*:|<\|im_start\|>")
#: A complete unit: a run of characters up to whitespace or a hyphen (the last run of the text
#: may still be growing and is not complete until something follows it).
_DASHES = "\\-\u2013\u2014"  # hyphen, en dash, em dash
_UNIT = re.compile(rf"[^\s{_DASHES}]+(?=[\s{_DASHES}])")
_WORD = re.compile(r"\S+")
_JOINERS = re.compile(rf"[{_DASHES}_]+")  # what joins the parts of one runaway word
_SENTENCE_START = re.compile(r"(?:^|(?<=[.!?])\s+|\n+)")
_FENCE = "```"
_STRIP = ".,;:!?\"'`()[]*|"

REPEAT_WORDS = 8  # a run of this many units said again is a loop
CODE_REPEAT_WORDS = 32  # ... when all of them are inside a fenced code block
NUMBER_RUN = 16  # so many numbers in a row outside code: counting, not answering
MAX_JOINED = 12  # parts joined by hyphens or underscores in one word ("state-of-the-art": 4)
MAX_RUN_CHARS = 160  # characters without whitespace outside code (long paths are ~100)
CODE_MAX_RUN_CHARS = 400
PERIODIC_TAIL = 48  # a word ending in this many characters of one short pattern ("blobblob…")
MAX_PERIOD = 16


class StopWhenDone:
    """Watches an answer as it streams; says stop when the model is done but goes on.

    Done means: it starts a new turn; says again a run of :data:`REPEAT_WORDS` units it already
    said (:data:`CODE_REPEAT_WORDS` when all are inside a code block); counts
    (:data:`NUMBER_RUN` numbers in a row); or writes one word that never ends (more than
    :data:`MAX_JOINED` joined parts, :data:`MAX_RUN_CHARS` characters, or a short pattern
    repeated over :data:`PERIODIC_TAIL` characters). :attr:`text` is the answer up to the
    sentence where that began (or its word, when the sentence was the whole answer);
    :attr:`reason` says which rule it was.
    """

    def __init__(self) -> None:
        self.raw = ""
        self.cut: int | None = None
        self.reason = ""
        self._seen: dict[int, set[tuple[tuple[str, bool], ...]]] = {}
        self._units: list[tuple[str, int, bool]] = []  # (normalised unit, offset, in code)
        self._scanned = 0  # where the next complete unit may start
        self._fences = 0  # code fences opened or closed before _fence_scanned
        self._fence_scanned = 0
        self._word_start = 0  # where the last word checked for runaway length starts

    @property
    def text(self) -> str:
        return self.raw if self.cut is None else self.raw[: self.cut].rstrip()

    def feed(self, piece: str) -> bool:
        """Add a streamed piece; True when generation should stop."""
        if self.cut is not None:
            return True
        scan_from = max(0, len(self.raw) - 16)
        self.raw += piece
        turn = _NEW_TURN.search(self.raw, scan_from)
        if turn is not None:
            self.cut, self.reason = turn.start(), "new turn"
            return True
        for match in _UNIT.finditer(self.raw, self._scanned):
            self._scanned = match.end()
            raw_unit = match.group()
            if not raw_unit.strip("|"):
                continue  # a table's column separators
            unit = raw_unit.lower().strip(_STRIP) or raw_unit  # punctuation alone stays itself
            self._units.append((unit, match.start(), self._in_code(match.start())))
            if self._loops():
                return True
        return self._runaway_word()

    def _loops(self) -> bool:
        """The newest unit ends a repeated run, or a run of numbers."""
        units = self._units
        if len(units) < REPEAT_WORDS:
            return False
        size = REPEAT_WORDS if not all(code for _, _, code in units[-REPEAT_WORDS:]) else 0
        size = size or CODE_REPEAT_WORDS  # all inside code: repeated lines are normal there
        if len(units) >= size:
            window = units[-size:]
            gram = tuple((unit, code) for unit, _, code in window)
            seen = self._seen.setdefault(size, set())
            if gram in seen:
                return self._stop(window[0][1], "repeat")
            seen.add(gram)
        run = units[-NUMBER_RUN:]
        if len(run) == NUMBER_RUN and all(u.isdigit() and not code for u, _, code in run):
            return self._stop(run[0][1], "counting")
        return False

    def _runaway_word(self) -> bool:
        """One word that keeps growing: too many joined parts, too long, or one pattern."""
        for match in _WORD.finditer(self.raw, self._word_start):
            word = match.group()
            in_code = self._in_code(match.start())
            if len(word) > (CODE_MAX_RUN_CHARS if in_code else MAX_RUN_CHARS) or (
                not in_code and (_joined_parts(word) > MAX_JOINED or _periodic_tail(word))
            ):
                return self._stop(match.start(), "runaway word")
            self._word_start = match.start()  # the last word may still grow: look again
        return False

    def _in_code(self, position: int) -> bool:
        """Whether ``position`` is inside a fenced code block (fences counted incrementally)."""
        if position > self._fence_scanned:
            self._fences += self.raw.count(_FENCE, self._fence_scanned, position)
            # A fence that ends past ``position`` is counted by the next look, not this one.
            self._fence_scanned = max(self._fence_scanned, position - len(_FENCE) + 1)
        return self._fences % 2 == 1

    def _stop(self, position: int, reason: str) -> bool:
        """Cut at the sentence where the loop began; at its word when nothing would be left."""
        cut = self._sentence_start(position)
        if not self.raw[:cut].strip():
            cut = max(self.raw.rfind(" ", 0, position), self.raw.rfind("\n", 0, position)) + 1
        self.cut, self.reason = cut, reason
        return True

    def _sentence_start(self, position: int) -> int:
        best = 0
        for match in _SENTENCE_START.finditer(self.raw, 0, position + 1):
            if match.end() <= position:
                best = match.end()
        return best


def _joined_parts(word: str) -> int:
    return sum(1 for part in _JOINERS.split(word) if part.strip(_STRIP))


def _periodic_tail(word: str) -> bool:
    """``word`` ends in :data:`PERIODIC_TAIL` characters of one pattern of letters or digits."""
    if len(word) < PERIODIC_TAIL:
        return False
    tail = word[-PERIODIC_TAIL:]
    return any(
        tail[period:] == tail[:-period] and any(c.isalnum() for c in tail[:period])
        for period in range(1, MAX_PERIOD + 1)
    )
