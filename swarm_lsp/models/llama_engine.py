"""llama.cpp in process, through llama-cpp-python.

One ``LlamaEngine`` owns one model and one context; it is not thread-safe on its own (the
:mod:`swarm_lsp.models.scheduler` serialises requests on it). llama-cpp-python keeps the tokens
of the last prompt evaluated and re-evaluates only what differs, so prompts put stable context
first and cursor-local text last; ``Generation.reused_tokens`` reports how much was reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from swarm_lsp import threads
from swarm_lsp.errors import ModelError, ModelNotFoundError
from swarm_lsp.models import chat_prompt, fim, greedy, healing, kv_states, vocabulary

log = logging.getLogger(__name__)

TokenCallback = Callable[[str], None]

RETUNE_EVERY_S = 0.5  # how often a running generation re-reads the machine's budget
#: A background engine evaluates its prompt this many tokens per decode and can pause between
#: them: an editor's request that arrives meanwhile waits for one piece (~0.2 s at 2 threads),
#: not a whole prompt. Smaller pieces cost prompt speed on 2 threads: 64 tokens made an answer's
#: first token 760 ms against 593 ms in one batch (median, load 2); on 1 thread ~1%.
PAUSABLE_BATCH = 128

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
    healed: str = ""  # the partial word trimmed off the prompt and written again
    restored: bool = False  # the document's saved KV state was put back first
    threads: int = 0  # llama.cpp's prompt threads, when the engine recorded them

    @property
    def total_ms(self) -> float:
        return self.prompt_ms + self.generation_ms


class LlamaEngine:
    """A GGUF model loaded with llama.cpp, loaded lazily on first use.

    Thread counts come from the machine's inference budget (:mod:`swarm_lsp.threads`) for the
    engine's ``role``, re-planned before every job and while a long one runs; ``n_threads`` > 0
    fixes them instead (a user's setting).
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_batch: int = 512,
        seed: int = 7,
        role: str = threads.BACKGROUND,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.fixed_threads = n_threads
        self.role = role
        self.slot: threads.Slot | None = None
        self._applied: tuple[int, int] | None = None
        self.n_batch = n_batch
        self.seed = seed
        self._llm: Any = None
        self._fim: fim.FimTokens | None = None
        self._vocab: healing.Vocabulary | None = None
        self._vocab_lock = threading.Lock()
        self._vocab_started = False
        self._load_lock = threading.Lock()
        self.load_ms: float = 0.0
        # The last prompt's final logits: typing inside a word keeps the healed prompt.
        self._prompt_logits = greedy.PromptLogits()

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
            slot = self._slot()
            budget = slot.refresh(active=False)
            threads.lower_priority(budget.nice)
            with _LOAD_LOCK:
                try:
                    self._llm = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=budget.n_threads,
                        n_threads_batch=budget.n_threads_batch,
                        n_batch=self.n_batch,
                        seed=self.seed,
                        verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as err:
                    raise ModelError(f"cannot load {self.model_path}: {err}") from err
            self._applied = (budget.n_threads, budget.n_threads_batch)
            self.load_ms = (time.perf_counter() - start) * 1000
            self._fim = fim.detect(self._is_single_special_token)
            log.info(
                "loaded %s in %.0f ms (fim: %s; %d threads: %s)",
                self.model_path.name,
                self.load_ms,
                self._fim.prefix if self._fim else "none",
                budget.threads,
                budget.reason,
            )

    # -- the machine's thread budget --------------------------------------------------------
    def _slot(self) -> threads.Slot:
        if self.slot is None:
            name = f"{self.model_path.stem}-{id(self):x}"
            # A background engine pauses between decodes while an editor's engine runs a job.
            self.slot = threads.Slot(
                name, self.role, fixed=self.fixed_threads, yields=self.role == threads.BACKGROUND
            )
        return self.slot

    @property
    def budget(self) -> threads.Budget:
        """The thread budget this engine runs with now."""
        return self._slot().budget

    def _use(self, budget: threads.Budget) -> None:
        """Give llama.cpp the budget's thread counts (between decodes) and priority."""
        threads.lower_priority(budget.nice)
        wanted = (budget.n_threads, budget.n_threads_batch)
        if self._llm is not None and wanted != self._applied:
            self._llm._ctx.set_n_threads(*wanted)
            self._applied = wanted
            log.debug("%s: %d threads (%s)", self.name, budget.threads, budget.reason)

    @contextlib.contextmanager
    def _job(self) -> Iterator[threads.Slot]:
        """A model job: re-plan threads, and let other engines see this one busy."""
        slot = self._slot()
        with slot.active() as budget:
            self._use(budget)
            yield slot

    def leave_budget(self) -> None:
        """Withdraw this engine's claim (safe from any thread; a later job registers again)."""
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.close()

    def close(self) -> None:
        """Free the model and leave the machine's budget."""
        with self._load_lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()
        self.leave_budget()

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

    @property
    def vocabulary(self) -> healing.Vocabulary:
        """Every token's text: from the user cache, else built (about 2 s for 262k tokens)."""
        with self._vocab_lock:
            if self._vocab is None:
                self._vocab = healing.Vocabulary(self._vocabulary_pieces())
        return self._vocab

    @property
    def vocabulary_ready(self) -> bool:
        return self._vocab is not None

    def prepare_vocabulary(self) -> None:
        """Build the token table on a thread of its own: no request waits for it."""
        if self._vocab is None and not self._vocab_started:
            self._vocab_started = True
            threading.Thread(
                target=lambda: self.vocabulary, name="swarm-vocabulary", daemon=True
            ).start()

    def _vocabulary_pieces(self) -> list[str]:
        return vocabulary.pieces(self.llm, self.model_path)

    def warm(self, prompt: str, cancel: threading.Event | None = None) -> int:
        """Evaluate ``prompt`` into the KV cache without generating; returns tokens evaluated.

        Stops between batches when ``cancel`` is set (a real request arrived).
        """
        return self._warm_tokens(self._fit(self.tokenize(prompt), 1), cancel)

    def _warm_tokens(self, tokens: list[int], cancel: threading.Event | None = None) -> int:
        llm = self.llm
        shared = self._reusable_prefix(tokens)
        if shared >= len(tokens):
            return 0
        with self._job():
            if shared > 0 and llm._ctx.kv_cache_seq_rm(-1, shared, -1):
                llm.n_tokens = shared
                llm._requires_eval = True  # the logits are not the last kept token's
            else:
                llm.reset()
            step = 64
            for start in range(llm.n_tokens, len(tokens), step):
                if cancel is not None and cancel.is_set():
                    break
                llm.eval(tokens[start : start + step])
        return llm.n_tokens - shared

    def warm_chat(self, messages: list[dict[str, str]], upto: str) -> int:
        """Evaluate a conversation's fixed head: its chat prompt up to the text ``upto``
        (a system prompt and the start of a user turn), so the next chat evaluates only the
        rest. Returns the tokens evaluated (0 when the head is already in the context)."""
        llm = self.llm
        prompt = chat_prompt.render(llm, messages)
        if prompt is None or upto not in prompt:
            return 0
        # Cut the tokens, not the text: "\n\n" alone is one token, "\n\n[" three.
        tokens = list(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
        end = len(prompt[: prompt.index(upto)].encode("utf-8"))
        head = 0
        for token in tokens:
            end -= len(llm.detokenize([token], special=True))
            if end < 0:
                break
            head += 1
        return self._warm_tokens(tokens[:head]) if head else 0

    def snapshot(self) -> kv_states.KvState | None:
        """The evaluated prompt's KV state, to restore when its document comes back."""
        return kv_states.save(self.llm) if self._llm is not None else None

    def restore(self, state: kv_states.KvState) -> bool:
        """Put a saved KV state back (False when llama.cpp refused it)."""
        return kv_states.load(self.llm, state)

    def _fit(self, tokens: list[int], max_tokens: int) -> list[int]:
        budget = self.n_ctx - max_tokens - 1
        if budget <= 0:
            raise ModelError(f"{self.name}: context of {self.n_ctx} tokens is too small")
        if len(tokens) > budget:
            # Keep BOS and the text nearest the cursor; the caller's budget should avoid this.
            tokens = tokens[:1] + tokens[len(tokens) - budget + 1 :]
        return tokens

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
        retune_at = start + RETUNE_EVERY_S
        try:
            for chunk in stream:
                now = time.perf_counter()
                if first is None:
                    first = now
                slot = self.slot
                if slot is not None and (slot.yield_to_interactive() > 0 or now >= retune_at):
                    # A long job yields to an editor's request that arrived meanwhile.
                    self._use(slot.refresh(active=True))
                    retune_at = time.perf_counter() + RETUNE_EVERY_S
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
        heal: bool = False,
        names: Sequence[str] = (),
    ) -> Generation:
        """Continue ``prompt`` (raw, special tokens allowed) for up to ``max_tokens`` tokens.

        With ``heal``, a partial word at the end of the prompt is trimmed off and written again
        by the model (token healing); ``names`` that start with it are favoured. The returned
        text never repeats the partial word.
        """
        tokens = self._fit(self.tokenize(prompt), max_tokens)
        healed = ""
        trimmed = 0
        constraint: healing.FirstWordConstraint | None = None
        if heal:
            vocab = self.vocabulary
            full = len(tokens)
            tokens, healed = healing.trim_partial_word(tokens, prompt, vocab)
            trimmed = full - len(tokens)
            if healed:
                constraint = healing.FirstWordConstraint(
                    vocab,
                    len(tokens),
                    heal=healed,
                    candidates=healing.candidate_texts(healed, names),
                )
        # The tokens the model writes again count in ``max_tokens``: a healed request decodes
        # as many tokens as a plain one (the bench compares 8 decoded tokens a side).
        budget = max(max_tokens, trimmed + 1 if healed else 1)
        if cancel is not None and cancel.is_set():
            return Generation(
                "", len(tokens), self._reusable_prefix(tokens), 0, 0.0, 0.0, "cancelled"
            )
        with self._job() as slot:
            if temperature <= 0:
                generation = self._greedy(
                    tokens, budget, stop, constraint, cancel, on_token, deadline, slot
                )
            else:
                generation = self._sampled(
                    tokens, budget, stop, temperature, constraint, cancel, on_token, deadline
                )
        if healed:
            text = generation.text
            # The word the user typed is already in the document: insert only what follows.
            generation.text = text[len(healed) :] if text.startswith(healed) else ""
            generation.healed = healed
        return generation

    def _greedy(
        self,
        tokens: list[int],
        max_tokens: int,
        stop: list[str] | None,
        constraint: healing.FirstWordConstraint | None,
        cancel: threading.Event | None,
        on_token: TokenCallback | None,
        deadline: float | None,
        slot: threads.Slot,
    ) -> Generation:
        """Greedy decoding in our own loop (:mod:`swarm_lsp.models.greedy`)."""
        retune_at = [time.perf_counter() + RETUNE_EVERY_S]

        def between() -> None:
            waited = slot.yield_to_interactive()
            now = time.perf_counter()
            if waited > 0 or now >= retune_at[0]:
                # A long job yields to an editor's request that arrived meanwhile.
                self._use(slot.refresh(active=True))
                retune_at[0] = now + RETUNE_EVERY_S

        try:
            done = greedy.decode(
                self.llm,
                tokens,
                saved=self._prompt_logits,
                max_tokens=max_tokens,
                stop=stop or (),
                constraint=constraint,
                cancel=cancel,
                on_token=on_token,
                deadline=deadline,
                between=between,
                chunk=PAUSABLE_BATCH if slot.yields else 0,
            )
        except (RuntimeError, ValueError) as err:
            raise ModelError(f"{self.name}: generation failed: {err}") from err
        return Generation(
            text=done.text,
            prompt_tokens=len(tokens),
            reused_tokens=done.reused,
            completion_tokens=done.tokens,
            prompt_ms=done.prompt_ms,
            generation_ms=done.generation_ms,
            stop_reason=done.stop_reason,
        )

    def _sampled(
        self,
        tokens: list[int],
        max_tokens: int,
        stop: list[str] | None,
        temperature: float,
        constraint: healing.FirstWordConstraint | None,
        cancel: threading.Event | None,
        on_token: TokenCallback | None,
        deadline: float | None,
    ) -> Generation:
        """Sampling at a temperature, through llama-cpp-python's own sampler chain."""
        processors = None
        if constraint is not None:
            from llama_cpp import LogitsProcessorList

            processors = LogitsProcessorList([constraint])
        reused = self._reusable_prefix(tokens)
        stream = self.llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop or [],
            stream=True,
            logits_processor=processors,
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
        """Answer a conversation with the model's own chat template.

        Greedy (``temperature`` 0) runs in the engine's own decoding loop: only the prompt
        tokens that differ from the last request's are evaluated (a fixed system prompt is
        kept), and the generation says how many were reused.
        """
        llm = self.llm
        if cancel is not None and cancel.is_set():
            return Generation("", 0, 0, 0, 0.0, 0.0, "cancelled")
        prompt = chat_prompt.render(llm, messages) if temperature <= 0 else None
        if prompt is not None:
            tokens = llm.tokenize(prompt.encode("utf-8", "replace"), add_bos=False, special=True)
            if len(tokens) + max_tokens >= self.n_ctx:
                max_tokens = self.n_ctx - len(tokens) - 1
                if max_tokens < 1:
                    raise ModelError(f"{self.name}: the conversation does not fit {self.n_ctx}")
            with self._job() as slot:
                prompt_threads = slot.budget.n_threads_batch
                generation = self._greedy(
                    list(tokens), max_tokens, None, None, cancel, on_token, deadline, slot
                )
            generation.threads = prompt_threads
            return generation
        with self._job():
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
