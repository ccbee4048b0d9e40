"""llama.cpp in process, through llama-cpp-python.

One ``LlamaEngine`` owns one model and one context; it is not thread-safe on its own (the
:mod:`swarm_lsp.models.scheduler` serialises requests on it). llama-cpp-python keeps the tokens
of the last prompt evaluated and re-evaluates only what differs, so prompts put stable context
first and cursor-local text last; ``Generation.reused_tokens`` reports how much was reused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from swarm_lsp.errors import ModelError, ModelNotFoundError
from swarm_lsp.models import fim

log = logging.getLogger(__name__)

TokenCallback = Callable[[str], None]

# llama.cpp's backend and model loading are not safe to run on two threads at once.
_LOAD_LOCK = threading.Lock()


@dataclasses.dataclass
class Generation:
    """The text a model produced and how long each phase took."""

    text: str
    prompt_tokens: int
    reused_tokens: int
    completion_tokens: int
    prompt_ms: float  # time to the first token: prompt evaluation plus one decode step
    generation_ms: float  # the rest of the decoding
    stop_reason: str  # "stop" | "length" | "cancelled" | "deadline"

    @property
    def total_ms(self) -> float:
        return self.prompt_ms + self.generation_ms


class LlamaEngine:
    """A GGUF model loaded with llama.cpp, loaded lazily on first use."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_batch: int = 512,
        seed: int = 7,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        self.n_batch = n_batch
        self.seed = seed
        self._llm: Any = None
        self._fim: fim.FimTokens | None = None
        self._load_lock = threading.Lock()
        self.load_ms: float = 0.0

    @property
    def name(self) -> str:
        return self.model_path.name

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        """Load the model now (idempotent); raises ModelError with the reason."""
        with self._load_lock:
            if self._llm is not None:
                return
            if not self.model_path.is_file():
                raise ModelNotFoundError(f"model file {self.model_path} does not exist")
            try:
                from llama_cpp import Llama
            except ImportError as err:  # pragma: no cover - install problem
                raise ModelError(
                    "llama-cpp-python is not installed; run `make install` (it builds llama.cpp)"
                ) from err
            start = time.perf_counter()
            with _LOAD_LOCK:
                try:
                    self._llm = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_batch=self.n_batch,
                        seed=self.seed,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as err:
                    raise ModelError(f"cannot load {self.model_path}: {err}") from err
            self.load_ms = (time.perf_counter() - start) * 1000
            self._fim = fim.detect(self._is_single_special_token)
            log.info(
                "loaded %s in %.0f ms (fim: %s)",
                self.model_path.name,
                self.load_ms,
                self._fim.prefix if self._fim else "none",
            )

    @property
    def llm(self) -> Any:
        self.load()
        return self._llm

    @property
    def fim(self) -> fim.FimTokens | None:
        self.load()
        return self._fim

    def _is_single_special_token(self, text: str) -> bool:
        llm = self._llm
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        if len(tokens) != 1:
            return False
        plain = llm.tokenize(text.encode(), add_bos=False, special=False)
        return len(plain) > 1

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=True, special=True))

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer (no BOS)."""
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def _reusable_prefix(self, tokens: list[int]) -> int:
        llm = self.llm
        previous = list(llm.input_ids[: llm.n_tokens])
        shared = 0
        for old, new in zip(previous, tokens, strict=False):
            if old != new:
                break
            shared += 1
        return shared

    def _run(
        self,
        stream: Iterator[Any],
        *,
        prompt_tokens: int,
        reused: int,
        cancel: threading.Event | None,
        on_token: TokenCallback | None,
        deadline: float | None,
        delta: Callable[[Any], str],
    ) -> Generation:
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        count = 0
        stop_reason = "stop"
        try:
            for chunk in stream:
                now = time.perf_counter()
                if first is None:
                    first = now
                piece = delta(chunk)
                finish = chunk["choices"][0].get("finish_reason")
                if piece:
                    pieces.append(piece)
                    count += 1
                    if on_token is not None:
                        on_token(piece)
                if finish == "length":
                    stop_reason = "length"
                if cancel is not None and cancel.is_set():
                    stop_reason = "cancelled"
                    break
                if deadline is not None and now >= deadline:
                    stop_reason = "deadline"
                    break
        except (RuntimeError, ValueError) as err:
            raise ModelError(f"{self.name}: generation failed: {err}") from err
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        end = time.perf_counter()
        first = first or end
        return Generation(
            text="".join(pieces),
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
            completion_tokens=count,
            prompt_ms=(first - start) * 1000,
            generation_ms=(end - first) * 1000,
            stop_reason=stop_reason,
        )

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: list[str] | None = None,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
        on_token: TokenCallback | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Continue ``prompt`` (raw, special tokens allowed) for up to ``max_tokens`` tokens."""
        llm = self.llm
        tokens = self.tokenize(prompt)
        budget = self.n_ctx - max_tokens - 1
        if budget <= 0:
            raise ModelError(f"{self.name}: context of {self.n_ctx} tokens is too small")
        if len(tokens) > budget:
            # Keep BOS and the text nearest the cursor; the caller's budget should avoid this.
            tokens = tokens[:1] + tokens[len(tokens) - budget + 1 :]
        reused = self._reusable_prefix(tokens)
        if cancel is not None and cancel.is_set():
            return Generation("", len(tokens), reused, 0, 0.0, 0.0, "cancelled")
        stream = llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop or [],
            stream=True,
        )
        return self._run(
            stream,
            prompt_tokens=len(tokens),
            reused=reused,
            cancel=cancel,
            on_token=on_token,
            deadline=deadline,
            delta=lambda chunk: chunk["choices"][0].get("text") or "",
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.2,
        cancel: threading.Event | None = None,
        on_token: TokenCallback | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Answer a conversation with the model's own chat template."""
        llm = self.llm
        if cancel is not None and cancel.is_set():
            return Generation("", 0, 0, 0, 0.0, 0.0, "cancelled")
        stream = llm.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
        )
        return self._run(
            stream,
            prompt_tokens=0,
            reused=0,
            cancel=cancel,
            on_token=on_token,
            deadline=deadline,
            delta=lambda chunk: chunk["choices"][0].get("delta", {}).get("content") or "",
        )
