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


def prepare() -> None:
    """A fill is coming: take the machine's CPU sample now, so the fill's first step plans
    from the time since (the sparse side being written) instead of the minute-long load
    average (after a build that says the cores are taken, and the first quarter second of
    the fill ran on one thread)."""
    threads.METER.busy_elsewhere()


def step() -> int:
    """Before one step of an embedding stream: re-plan, show the engine busy; its threads."""
    return max(1, _embedder_slot().refresh(active=True).torch_threads)


def idle() -> None:
    """The stream is paused or done: the engine shows idle."""
    _embedder_slot().refresh(active=False)


def background_thread() -> None:
    """Lower the calling thread's priority (a dense fill; threads it starts inherit it)."""
    threads.lower_priority(threads.BACKGROUND_NICE)
