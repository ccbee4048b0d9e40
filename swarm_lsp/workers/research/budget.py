"""The research embedder's place in the machine's inference budget (:mod:`swarm_lsp.threads`).

The embedder is a background engine: it takes the cores nobody interactive needs and drops to
one thread while the editor's completion model runs. The budget is planned again before every
batch, so a long dense fill follows how busy the machine is. (The answer model is a
:class:`~swarm_lsp.models.llama_engine.LlamaEngine` and takes its own slot.)
"""

from __future__ import annotations

import threading

from swarm_lsp import threads

_lock = threading.Lock()
_slot: threads.Slot | None = None


def _embedder_slot() -> threads.Slot:
    global _slot
    with _lock:
        if _slot is None:
            _slot = threads.Slot("research-embedder", threads.BACKGROUND)
        return _slot


def step() -> int:
    """Before one step of an embedding stream: re-plan, show the engine busy; its threads."""
    return max(1, _embedder_slot().refresh(active=True).torch_threads)


def idle() -> None:
    """The stream is paused or done: the engine shows idle."""
    _embedder_slot().refresh(active=False)


def background_thread() -> None:
    """Lower the calling thread's priority (a dense fill; threads it starts inherit it)."""
    threads.lower_priority(threads.BACKGROUND_NICE)
