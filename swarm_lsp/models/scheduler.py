"""One model, one request at a time, newest first for each document.

A ``ModelScheduler`` owns a thread that runs jobs on one engine. A job submitted with a
``key`` (a document URI for completions) supersedes every older job with the same key: a
queued one is dropped (its awaiter gets ``GenerationCancelled``) and a running one is told to
stop. A job whose awaiting coroutine is cancelled (``$/cancelRequest``) is dropped or stopped
the same way, so a cancelled request frees the model at once. A *background* job (a
speculative completion) gives way to any other job: submitting one drops or stops every
background job.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from swarm_lsp.errors import GenerationCancelled

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")


@dataclasses.dataclass(eq=False)
class _Job(Generic[E]):
    seq: int
    key: str | None
    fn: Callable[[E, threading.Event], Any]
    future: concurrent.futures.Future[Any]
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    background: bool = False


class ModelScheduler(Generic[E]):
    """Serialises work on one engine; see the module docstring."""

    def __init__(self, engine: E, name: str = "model") -> None:
        self.engine = engine
        self.name = name
        self._pending: list[_Job[E]] = []
        self._running: _Job[E] | None = None
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"swarm-{name}", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        with self._cond:
            return len(self._pending) + (1 if self._running else 0)

    def submit(
        self,
        fn: Callable[[E, threading.Event], T],
        key: str | None = None,
        *,
        background: bool = False,
    ) -> _Job[E]:
        """Queue ``fn(engine, cancel_event)``; returns the job (its ``future`` has the result)."""
        job: _Job[E] = _Job(
            next(self._seq), key, fn, concurrent.futures.Future(), background=background
        )
        with self._cond:
            if self._closed:
                raise GenerationCancelled(f"{self.name}: scheduler is shut down")

            def superseded(old: _Job[E]) -> bool:
                return (key is not None and old.key == key) or (not background and old.background)

            for old in [j for j in self._pending if superseded(j)]:
                self._pending.remove(old)
                old.future.set_exception(GenerationCancelled("superseded by a newer request"))
            if self._running is not None and superseded(self._running):
                self._running.cancel.set()
            self._pending.append(job)
            self._cond.notify()
        return job

    def drop(self, job: _Job[E]) -> None:
        """Stop ``job``: remove it if queued, signal it if running."""
        job.cancel.set()
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
                if not job.future.done():
                    job.future.set_exception(GenerationCancelled("cancelled"))

    async def run(
        self,
        fn: Callable[[E, threading.Event], T],
        key: str | None = None,
        *,
        background: bool = False,
    ) -> T:
        """Run ``fn`` on the engine thread and await its result; cancellation stops it."""
        job = self.submit(fn, key, background=background)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self.drop(job)
            raise

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                job = self._pending.pop(0)
                self._running = job
            try:
                if not job.future.set_running_or_notify_cancel():
                    continue
                if job.cancel.is_set():
                    job.future.set_exception(GenerationCancelled("cancelled before it started"))
                    continue
                result = job.fn(self.engine, job.cancel)
                job.future.set_result(result)
            except BaseException as err:  # delivered to the awaiter, never lost
                if not job.future.done():
                    job.future.set_exception(err)
            finally:
                with self._cond:
                    self._running = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in self._pending:
                job.future.set_exception(GenerationCancelled("server shutting down"))
            self._pending.clear()
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
