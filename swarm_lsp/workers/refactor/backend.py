"""The chat model a worker role talks to, and running it without blocking the event loop.

Two backends share one small protocol (:class:`ChatModel`): llama.cpp in process
(:class:`~swarm_lsp.models.llama_engine.LlamaEngine`, any GGUF; the packaged SmolLM2 by
default) and a self-hosted OpenAI-compatible endpoint
(:class:`~swarm_lsp.models.openai_http.OpenAIEndpoint`, behind the locality guard) when
``models.endpointUrl`` is set. :func:`run_chat` runs a request in a thread, streams tokens to
an async callback in order, and turns the task's asyncio cancel event into the thread event
the engines check between tokens.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from swarm_lsp.config import Settings

AsyncTokenSink = Callable[[str], Awaitable[None]]


class ChatModel(Protocol):
    """What the roles need from a model: a streaming chat call returning ``.text``."""

    @property
    def name(self) -> str: ...

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = ...,
        cancel: threading.Event | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Any: ...


_engines: dict[tuple[str, int, int], Any] = {}
_engine_locks: dict[int, threading.Lock] = {}
_engines_lock = threading.Lock()


class _LockedEngine:
    """Serialises calls on one shared LlamaEngine (an engine is not thread-safe)."""

    def __init__(self, engine: Any, lock: threading.Lock) -> None:
        self._engine = engine
        self._lock = lock

    @property
    def name(self) -> str:
        return str(self._engine.name)

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        with self._lock:
            return self._engine.chat(messages, **kwargs)

    def warm_chat(self, messages: list[dict[str, str]], upto: str) -> int:
        """Load the model and evaluate a conversation's fixed head (see LlamaEngine)."""
        with self._lock:
            return int(self._engine.warm_chat(messages, upto))


@atexit.register
def close_engines() -> None:
    """Free llama.cpp models before the interpreter tears its modules down."""
    with _engines_lock:
        for engine in _engines.values():
            close = getattr(engine, "close", None)
            llm = getattr(engine, "_llm", None)
            with contextlib.suppress(Exception):
                if close is not None:
                    close()
                elif llm is not None:
                    llm.close()
        _engines.clear()


def local_chat_model(settings: Settings) -> ChatModel:
    """The in-process llama.cpp chat model (configured GGUF or the packaged default)."""
    from swarm_lsp.models import defaults
    from swarm_lsp.models.llama_engine import LlamaEngine

    path = defaults.resolve(settings.models.chat_model, "chat")
    n_ctx = max(settings.models.n_ctx, 4096)
    key = (str(Path(path).resolve()), n_ctx, settings.models.n_threads)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = LlamaEngine(path, n_ctx=n_ctx, n_threads=settings.models.n_threads)
            _engines[key] = engine
        lock = _engine_locks.setdefault(id(engine), threading.Lock())
    return _LockedEngine(engine, lock)


def endpoint_model(settings: Settings) -> ChatModel:
    """The self-hosted endpoint named in ``models.endpointUrl`` (locality-checked per call)."""
    from swarm_lsp.models.openai_http import OpenAIEndpoint

    return OpenAIEndpoint(
        settings.models.endpoint_url,
        model=settings.models.endpoint_model,
        allowed_hosts=settings.swarm.allowed_hosts,
    )


def chat_model_for(settings: Settings) -> ChatModel:
    """The big model when an endpoint is configured, else llama.cpp in process."""
    if settings.models.endpoint_url:
        return endpoint_model(settings)
    return local_chat_model(settings)


async def run_chat(
    model: ChatModel,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    cancel_event: asyncio.Event | None = None,
    on_token: AsyncTokenSink | None = None,
    stats: dict[str, Any] | None = None,
) -> str:
    """Run ``model.chat`` in a thread; stream tokens to ``on_token``; honour cancellation.

    ``stats``, when given, receives what the engine reported of the call (prompt tokens, how
    many were reused from the last request, time to the first token, threads).
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def token(piece: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, piece)

    async def forward() -> None:
        while (piece := await queue.get()) is not None:
            if on_token is not None:
                await on_token(piece)

    async def watch() -> None:
        if cancel_event is not None:
            await cancel_event.wait()
            stop.set()

    forwarder = asyncio.ensure_future(forward())
    watcher = asyncio.ensure_future(watch())
    try:
        result = await asyncio.to_thread(
            model.chat,
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            cancel=stop,
            on_token=token,
        )
    except BaseException:
        stop.set()
        forwarder.cancel()
        raise
    finally:
        watcher.cancel()
        loop.call_soon_threadsafe(queue.put_nowait, None)
    with contextlib.suppress(asyncio.CancelledError):
        await forwarder
    if stats is not None:
        for field in STAT_FIELDS:
            value = getattr(result, field, None)
            if isinstance(value, int | float):
                stats[field] = value
    text = getattr(result, "text", result)
    return str(text)


#: What :func:`run_chat` copies into ``stats`` from an engine's result (``Generation``).
STAT_FIELDS = (
    "prompt_tokens",
    "reused_tokens",
    "completion_tokens",
    "prompt_ms",
    "generation_ms",
    "threads",
)
