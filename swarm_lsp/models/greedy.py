"""Greedy decoding straight from llama.cpp's logits, with no per-token Python sampler.

llama-cpp-python's ``create_completion`` samples through a sampler chain; a logits processor
(token healing) joins that chain as a Python callback that copies the whole vocabulary's
logits (262k for Gemma 3) into a strided record array and back on every token, and the
streaming loop detokenises the whole completion again per token. Measured on this 2-core
machine that doubled a completion's time (210 against 123 ms for 8 tokens). Completions are
greedy (temperature 0), so this loop reads the last row of logits as a NumPy view, picks the
best token with ``argmax`` (or among the few tokens healing allows,
:meth:`~swarm_lsp.models.healing.FirstWordConstraint.choose`), and decodes it: the same work
llama-server does in C, plus microseconds.
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from swarm_lsp.models.healing import FirstWordConstraint

TokenCallback = Callable[[str], None]


@dataclasses.dataclass
class Decoded:
    """What one greedy run produced, before the engine wraps it in a ``Generation``."""

    text: str
    tokens: int
    reused: int
    prompt_ms: float
    generation_ms: float
    stop_reason: str


class PromptLogits:
    """The logits after the last prompt evaluated, kept for a request with the same prompt.

    With token healing, every keystroke inside a word gives the same trimmed prompt (``sel``
    and ``self`` both trim to the text before the word); its last token's logits are the same,
    so the next request needs no decode before its first pick. A copy is one row of floats
    (1 MB for Gemma 3's vocabulary).
    """

    def __init__(self) -> None:
        self.tokens: tuple[int, ...] = ()
        self.row: np.ndarray[Any, Any] | None = None

    def get(self, tokens: Sequence[int]) -> np.ndarray[Any, Any] | None:
        if (
            self.row is not None
            and len(tokens) == len(self.tokens)
            and tuple(tokens) == self.tokens
        ):
            return self.row
        return None

    def put(self, tokens: Sequence[int], row: np.ndarray[Any, Any]) -> None:
        self.tokens = tuple(tokens)
        self.row = np.array(row, copy=True)


def prepare(
    llm: Any,
    tokens: Sequence[int],
    saved: PromptLogits | None = None,
    *,
    chunk: int = 0,
    between: Callable[[], None] | None = None,
) -> tuple[int, np.ndarray[Any, Any] | None]:
    """Make the context hold ``tokens`` with the last one's logits ready.

    Returns the tokens reused and, when they came from ``saved`` rather than a decode, the
    logits to pick the first token from. Only what differs from the evaluated prompt is
    evaluated; when the whole prompt is there and its logits are known, nothing is.
    ``chunk`` > 0 evaluates at most that many tokens per decode and runs ``between`` before
    each (a background engine pauses there for the editor's request).
    """
    n = len(tokens)
    previous = llm.input_ids
    shared = 0
    limit = min(int(llm.n_tokens), n)
    while shared < limit and int(previous[shared]) == tokens[shared]:
        shared += 1
    if shared == n and llm.n_tokens == n and not llm._requires_eval:
        return shared, None  # the last decode was this prompt's last token: logits current
    row = saved.get(tokens) if saved is not None and shared == n else None
    if row is not None and (llm.n_tokens == n or llm._ctx.kv_cache_seq_rm(-1, n, -1)):
        llm.n_tokens = n
        llm._requires_eval = True  # the context's own logits are another position's
        return shared, row
    keep = min(shared, n - 1)  # re-evaluate at least one token for fresh logits
    if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
        llm.n_tokens = keep
    else:
        llm.reset()
        keep = 0
    llm._requires_eval = True
    rest = list(tokens[keep:])
    pieces = max(1, -(-len(rest) // chunk)) if chunk > 0 else 1
    step = max(1, -(-len(rest) // pieces))  # even chunks: no decode of a last token or two alone
    for start in range(0, len(rest), step):
        if between is not None:
            between()
        llm.eval(rest[start : start + step])
    if saved is not None:
        saved.put(tokens, logits_row(llm))
    return shared, None


_ROWS: dict[tuple[int, int], np.ndarray[Any, Any]] = {}  # (address, vocabulary) → view


def logits_row(llm: Any) -> np.ndarray[Any, Any]:
    """The last decoded token's logits, a view into llama.cpp's buffer (valid until next decode).

    One decode of one token writes the same row of the same buffer every time: the view over
    it is made once per address (making it costs a ctypes cast and an array type per call).
    """
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    address = ctypes.cast(pointer, ctypes.c_void_p).value or 0
    key = (address, llm.n_vocab())
    array = _ROWS.get(key)
    if array is None:
        array = np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(key[1],)
        )
        if len(_ROWS) > 64:  # contexts come and go (tests): keep the table small
            _ROWS.clear()
        _ROWS[key] = array
    return array


def decode(
    llm: Any,
    tokens: Sequence[int],
    *,
    max_tokens: int,
    stop: Sequence[str] = (),
    constraint: FirstWordConstraint | None = None,
    cancel: threading.Event | None = None,
    on_token: TokenCallback | None = None,
    deadline: float | None = None,
    between: Callable[[], None] | None = None,
    saved: PromptLogits | None = None,
    chunk: int = 0,
) -> Decoded:
    """Evaluate ``tokens`` (reusing the cache) and greedily generate up to ``max_tokens``.

    Stops at an end-of-generation token, at the first of ``stop`` (the text is cut there),
    when ``cancel`` is set, or at ``deadline``. ``between`` runs between decodes (thread
    re-planning). ``saved`` keeps the prompt's logits from one call to the next. ``chunk``
    > 0 evaluates the prompt that many tokens at a time, with ``between`` before each.
    """
    import llama_cpp

    start = time.perf_counter()
    reused, first_row = prepare(llm, tokens, saved, chunk=chunk, between=between)
    vocab = llm._model.vocab
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = ""
    generated: list[int] = []
    first: float | None = None
    stop_reason = "length"
    buffer = (ctypes.c_char * 64)()
    for step in range(max_tokens):
        logits = first_row if step == 0 and first_row is not None else logits_row(llm)
        if constraint is not None and not constraint.done:
            token = constraint.choose(generated, logits)
        else:
            token = int(np.argmax(logits))
        if first is None:
            first = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            stop_reason = "stop"
            break
        generated.append(token)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        piece = utf8.decode(buffer.raw[: max(0, n)])
        if piece:
            text += piece
            hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
            if hits:
                text = text[: min(hits)]
                stop_reason = "stop"
                break
            if on_token is not None:
                on_token(piece)
        if cancel is not None and cancel.is_set():
            stop_reason = "cancelled"
            break
        if deadline is not None and time.perf_counter() >= deadline:
            stop_reason = "deadline"
            break
        if step + 1 < max_tokens:
            if between is not None:
                between()
            llm.eval([token])
    end = time.perf_counter()
    first = first or end
    return Decoded(
        text=text,
        tokens=len(generated),
        reused=reused,
        prompt_ms=(first - start) * 1000,
        generation_ms=(end - first) * 1000,
        stop_reason=stop_reason,
    )
