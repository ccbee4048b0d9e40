"""Texts embedded back to back: the int8 runners never wait for the fill's bookkeeping.

The dense fill (:mod:`.fill`) hands groups of texts to an :class:`EmbedStream`. The stream
takes a group :data:`STEP` texts at a time, shortest first: before each step it lets the caller
pause or give up (``between``) and plans its thread count from the machine's budget, then
tokenizes the step and queues it on the runners (one one-thread ONNX Runtime session per thread,
:meth:`~.embedder._OnnxBackend.submit`). While that step runs it waits for the step before it,
and once a group's last step is done it hands the group's vectors to the group's callback, on
the caller's thread. So tokenizing, planning, reading the next group from the store and writing
the last group's vectors all happen while the runners embed (before, the runners sat idle for
each of them: an eighth of the fill). At most one step is queued ahead, so a pause or a cancel
waits for one step at most. Back-ends without runners (torch, static), or a ``batch`` above 1,
embed each step at once (a step is then at least ``batch`` texts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from typing import Any

from swarm_lsp.workers.research import budget, embedder

STEP = 16  # texts per step: the thread budget is planned, and a pause can land, between steps

GroupDone = Callable[[list[list[float]]], None]


class EmbedStream:
    """Embeds groups of texts in order; see the module's docstring."""

    def __init__(self, between: Callable[[], None] | None = None, batch: int | None = None) -> None:
        self.backend = embedder.load()
        self.between = between
        self.batch = batch or self.backend.batch
        self.runners = self.batch == 1 and hasattr(self.backend, "submit")
        self.step = STEP if self.runners else max(STEP, self.batch)
        self._queued: deque[tuple[list[Future[None]], Callable[[], None] | None]] = deque()

    def add(self, texts: Sequence[str], done: GroupDone) -> None:
        """Queue ``texts``; ``done(vectors)`` runs (on this thread, in order) once all of them
        are embedded, during a later :meth:`add` or in :meth:`finish`. ``between`` may raise
        here: the caller then calls :meth:`abort`."""
        import numpy as np

        items = list(texts)
        result = np.zeros((len(items), embedder.DIMENSIONS), dtype=np.float32)

        def finished() -> None:
            result[:] /= np.clip(np.linalg.norm(result, axis=1, keepdims=True), 1e-12, None)
            done([[float(x) for x in row] for row in result])

        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        steps = [order[first : first + self.step] for first in range(0, len(order), self.step)]
        if not steps:
            self._queued.append(([], finished))
        for n, picked in enumerate(steps):
            budget.idle()  # a paused stream holds no cores (one step may still be running)
            if self.between is not None:
                self.between()
            threads = budget.step()
            futures = self._submit([items[i] for i in picked], picked, result, threads)
            self._queued.append((futures, finished if n == len(steps) - 1 else None))
            self._drain(keep=1)

    def _submit(
        self, texts: list[str], rows: list[int], result: Any, threads: int
    ) -> list[Future[None]]:
        if self.runners:
            futures: list[Future[None]] = self.backend.submit(texts, rows, result, threads)
            return futures
        result[rows] = self.backend.encode(texts, self.batch, threads)
        return []

    def _drain(self, keep: int) -> None:
        """Wait until at most ``keep`` steps are queued; run finished groups' callbacks."""
        while len(self._queued) > keep:
            futures, finished = self._queued[0]
            for future in futures:
                future.result()
            self._queued.popleft()
            if finished is not None:
                finished()

    def finish(self) -> None:
        """Wait for everything queued and hand over the last groups' vectors."""
        try:
            self._drain(keep=0)
        finally:
            budget.idle()

    def abort(self) -> None:
        """Drop what is queued (running texts end first); no callback runs."""
        futures = [future for step, _ in self._queued for future in step]
        self._queued.clear()
        for future in futures:
            future.cancel()
        wait(futures)
        budget.idle()


def embed(
    texts: Sequence[str],
    between: Callable[[], None] | None = None,
    batch: int | None = None,
) -> list[list[float]]:
    """One group through a stream of its own (:func:`.embedder.embed`)."""
    out: list[list[list[float]]] = []
    stream = EmbedStream(between, batch)
    try:
        stream.add(texts, out.append)
        stream.finish()
    except BaseException:
        stream.abort()
        raise
    return out[0]
