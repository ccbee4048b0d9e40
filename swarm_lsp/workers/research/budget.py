"""The research worker's place in the machine's inference budget (:mod:`swarm_lsp.threads`).

The embedder is a background engine: it takes the cores nobody interactive needs and drops to
one thread while the editor's completion model runs. The budget is planned again before every
batch, so a long dense fill follows how busy the machine is.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_slot: Any = None


def _embedder_slot() -> Any:
    global _slot
    with _lock:
        if _slot is None:
            try:
                threads = importlib.import_module("swarm_lsp.threads")
            except ImportError:
                return None
            _slot = threads.Slot("research-embedder", threads.BACKGROUND)
        return _slot


@contextlib.contextmanager
def embedding() -> Iterator[int]:
    """Run one embedding batch: yields its thread count; the engine shows busy meanwhile."""
    slot = _embedder_slot()
    if slot is None:
        yield 1
        return
    with slot.active() as budget:
        yield max(1, int(budget.torch_threads))
