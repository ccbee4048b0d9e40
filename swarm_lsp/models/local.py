"""The fast local models the LSP server answers from: one for completion, one for chat.

Plain Python, no LSP: the server translates requests into calls here. Each model has its own
scheduler thread, so a long chat answer never holds up completions of another model, and a
newer completion for a document supersedes an older one.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from swarm_lsp import threads
from swarm_lsp.config import ModelSettings
from swarm_lsp.errors import GenerationCancelled
from swarm_lsp.models import defaults, fim
from swarm_lsp.models.kv_states import KvStates
from swarm_lsp.models.llama_engine import Generation, LlamaEngine
from swarm_lsp.models.scheduler import ModelScheduler
from swarm_lsp.models.trim import trim_completion

LINE_CACHE_SIZE = 50_000  # token counts of recently seen lines

CHAT_SYSTEM_PROMPT = (
    "You are swarm-lsp, a concise coding assistant running entirely on the user's own machine. "
    "Answer briefly and precisely; use code blocks for code."
)


@dataclasses.dataclass
class Completion:
    """A trimmed completion and the timings of the generation that produced it."""

    text: str
    raw: str
    generation: Generation
    model: str
    used_fim: bool


class LocalModels:
    """Lazily loaded completion and chat engines behind their schedulers."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._completion: ModelScheduler[LlamaEngine] | None = None
        self._chat: ModelScheduler[LlamaEngine] | None = None
        self._line_tokens: OrderedDict[str, int] = OrderedDict()
        self._count_lock = threading.Lock()
        self.kv = KvStates()

    def _engine(self, which: str) -> ModelScheduler[LlamaEngine]:
        with self._lock:
            current = self._completion if which == "completion" else self._chat
            if current is not None:
                return current
            configured = (
                self.settings.completion_model
                if which == "completion"
                else self.settings.chat_model
            )
            path: Path = defaults.resolve(configured, which)
            engine = LlamaEngine(
                path,
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.n_threads,
                role=threads.INTERACTIVE,  # the editor waits on these: they pre-empt the swarm
            )
            scheduler = ModelScheduler(engine, name=which)
            if which == "completion":
                self._completion = scheduler
            else:
                self._chat = scheduler
            return scheduler

    @property
    def completion(self) -> ModelScheduler[LlamaEngine]:
        return self._engine("completion")

    @property
    def chat_scheduler(self) -> ModelScheduler[LlamaEngine]:
        return self._engine("chat")

    def update(self, settings: ModelSettings) -> None:
        """Apply new settings; a changed model path or context size reloads on next use."""
        reload_keys = ("completion_model", "chat_model", "n_ctx", "n_threads")
        with self._lock:
            old = self.settings
            self.settings = settings
            if any(getattr(old, k) != getattr(settings, k) for k in reload_keys):
                for scheduler in (self._completion, self._chat):
                    if scheduler is not None:
                        scheduler.close()
                        scheduler.engine.leave_budget()
                self._completion = None
                self._chat = None
                self.kv = KvStates()
                with self._count_lock:
                    self._line_tokens.clear()

    async def warm_up(self) -> None:
        """Load both models now so the first keystroke is not the one that pays for it.

        The completion model goes first, with the token table healing needs; the chat model
        after it, so the two loads do not compete for the cores.
        """

        def load_completion(engine: LlamaEngine, _cancel: threading.Event) -> None:
            engine.load()
            if engine.fim is None:
                engine.prepare_vocabulary()  # for token healing; requests do not wait for it

        await self.completion.run(load_completion)
        await self.chat_scheduler.run(lambda engine, _cancel: engine.load())

    async def ensure_loaded(self) -> None:
        """Wait for the completion model (token counts and prompt windows need its tokenizer)."""
        if not self.completion.engine.loaded:
            await self.completion.run(lambda engine, _cancel: engine.load())

    @staticmethod
    def prompt_for(engine: LlamaEngine, preamble: str, prefix: str, suffix: str) -> str:
        fim_tokens = engine.fim
        if fim_tokens is not None:
            return fim_tokens.prompt(preamble, prefix, suffix)
        return fim.continuation_prompt(preamble, prefix)

    async def warm(
        self, *, key: str, preamble: str, prefix: str, suffix: str, background: bool = False
    ) -> int:
        """Evaluate the prompt a completion at this cursor would use, generating nothing.

        Called when a document opens or typing pauses, so the next request finds its prompt
        in the KV cache. A completion request for the same document supersedes it; a
        ``background`` warm (typing paused, file saved) gives way to any request and never
        supersedes one.
        """

        def work(engine: LlamaEngine, cancel: threading.Event) -> int:
            self.kv.switch(engine, key)
            return engine.warm(self.prompt_for(engine, preamble, prefix, suffix), cancel)

        if background:
            return await self.completion.run(work, key=f"{key}\x00warm", background=True)
        return await self.completion.run(work, key=key)

    def forget(self, key: str) -> None:
        """A document closed: drop its saved KV state."""
        self.kv.forget(key)

    def count_tokens(self, text: str) -> int:
        """Tokens by the completion model's own tokenizer, counted line by line.

        Packing asks for the counts of many overlapping windows of the same text on every
        keystroke; counting per line with a cache makes that cost proportional to the lines
        that changed. Lines tokenised apart can differ from the joined text by about a token
        at a line break, well inside the budget's slack.
        """
        engine = self.completion.engine
        if not engine.loaded:
            return max(1, int(len(text) / 3.5))
        total = 0
        cache = self._line_tokens
        with self._count_lock:
            for line in text.splitlines(keepends=True):
                count = cache.get(line)
                if count is None:
                    count = engine.count_tokens(line)
                    cache[line] = count
                    if len(cache) > LINE_CACHE_SIZE:
                        cache.popitem(last=False)
                else:
                    cache.move_to_end(line)
                total += count
        return total

    async def complete(
        self,
        *,
        key: str,
        preamble: str,
        prefix: str,
        suffix: str,
        max_tokens: int | None = None,
        names: Sequence[str] = (),
        heal: bool = True,
        speculative: bool = False,
    ) -> Completion:
        """Complete at the cursor between ``prefix`` and ``suffix``; newest per ``key`` wins.

        A partial word before the cursor is healed (continuation prompts only) and ``names``
        that continue it are favoured; the result never repeats the partial word. A
        ``speculative`` completion (for a cursor the user may reach next) gives way to any
        other request for the model.
        """
        settings = self.settings

        def work(engine: LlamaEngine, cancel: threading.Event) -> Completion:
            fim_tokens = engine.fim
            if fim_tokens is None:
                engine.prepare_vocabulary()  # heals once it is there
            restored = self.kv.switch(engine, key)
            prompt = self.prompt_for(engine, preamble, prefix, suffix)
            deadline = time.perf_counter() + settings.completion_timeout_ms / 1000
            lines_seen = [0]
            stop = threading.Event()  # set by a superseding request or by too many lines

            def watch(piece: str) -> None:
                # Stop decoding once we have more lines than we could ever keep.
                lines_seen[0] += piece.count("\n")
                if cancel.is_set() or lines_seen[0] > settings.completion_max_lines + 1:
                    stop.set()

            generation = engine.complete(
                prompt,
                max_tokens=max_tokens or settings.completion_max_tokens,
                temperature=settings.temperature,
                stop=["\n\n\n", "<|file_separator|>", "<end_of_turn>", "<eos>"],
                cancel=stop,
                on_token=watch,
                deadline=deadline,
                heal=heal and fim_tokens is None and engine.vocabulary_ready,
                names=names,
            )
            generation.restored = restored
            if cancel.is_set():
                raise GenerationCancelled("superseded by a newer request")
            text = trim_completion(
                generation.text, prefix, suffix, max_lines=settings.completion_max_lines
            )
            return Completion(
                text, generation.text, generation, engine.name, fim_tokens is not None
            )

        # A speculation never supersedes the document's real request; a newer one replaces it.
        job_key = f"{key}\x00speculative" if speculative else key
        return await self.completion.run(work, key=job_key, background=speculative)

    async def chat(
        self, messages: list[dict[str, str]], *, on_token: Callable[[str], None] | None = None
    ) -> Generation:
        """Answer ``messages`` (a system prompt is added), streaming each piece to ``on_token``."""
        settings = self.settings
        full = [{"role": "system", "content": CHAT_SYSTEM_PROMPT}, *messages]

        def work(engine: LlamaEngine, cancel: threading.Event) -> Generation:
            return engine.chat(
                full,
                max_tokens=settings.chat_max_tokens,
                temperature=max(settings.temperature, 0.2),
                cancel=cancel,
                on_token=on_token,
            )

        return await self.chat_scheduler.run(work)

    def close(self) -> None:
        for scheduler in (self._completion, self._chat):
            if scheduler is not None:
                scheduler.close()
                scheduler.engine.leave_budget()
