"""The model scheduler: one job at a time, newest per key wins, cancellation frees the model.

The scheduler is generic over its engine; these tests give it a plain object and jobs that
wait on their cancel event, which is exactly how a llama.cpp generation observes it.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from swarm_lsp.errors import GenerationCancelled
from swarm_lsp.models.scheduler import ModelScheduler


def blocking_job(started: threading.Event, seconds: float = 10.0):
    def job(engine: object, cancel: threading.Event) -> str:
        started.set()
        if cancel.wait(seconds):
            raise GenerationCancelled("stopped")
        return "finished"

    return job


async def test_newer_job_with_same_key_supersedes_running_and_queued() -> None:
    scheduler: ModelScheduler[object] = ModelScheduler(object(), "test")
    started = threading.Event()
    running = scheduler.submit(blocking_job(started), key="doc")
    await asyncio.to_thread(started.wait, 5)
    other = scheduler.submit(lambda e, c: "other", key="other-doc")
    queued = scheduler.submit(lambda e, c: "stale", key="doc")
    newest = scheduler.submit(lambda e, c: "newest", key="doc")
    with pytest.raises(GenerationCancelled):
        running.future.result(timeout=5)
    with pytest.raises(GenerationCancelled, match="superseded"):
        queued.future.result(timeout=5)
    assert other.future.result(timeout=5) == "other"
    assert newest.future.result(timeout=5) == "newest"
    scheduler.close()


async def test_cancelling_the_awaiter_stops_the_job_and_frees_the_engine() -> None:
    scheduler: ModelScheduler[object] = ModelScheduler(object(), "test")
    started = threading.Event()
    task = asyncio.ensure_future(scheduler.run(blocking_job(started, 30)))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The engine is free again: the next job runs at once, not after 30 s.
    assert await asyncio.wait_for(scheduler.run(lambda e, c: 42), timeout=5) == 42
    scheduler.close()


async def test_errors_reach_the_awaiter_and_the_scheduler_keeps_going() -> None:
    scheduler: ModelScheduler[object] = ModelScheduler(object(), "test")

    def boom(engine: object, cancel: threading.Event) -> None:
        raise ValueError("bad model output")

    with pytest.raises(ValueError, match="bad model output"):
        await scheduler.run(boom)
    assert await scheduler.run(lambda e, c: "still here") == "still here"
    scheduler.close()
    with pytest.raises(GenerationCancelled):
        scheduler.submit(lambda e, c: None)


def test_line_by_line_token_counts_match_the_tokenizer_closely() -> None:
    """The cached per-line count stays within a token per line of the model's own count."""
    from swarm_lsp.config import ModelSettings
    from swarm_lsp.models.local import LocalModels

    models = LocalModels(ModelSettings())
    engine = models.completion.engine
    engine.load()
    text = "def area(radius: float) -> float:\n    return 3.14159 * radius ** 2\n" * 20
    exact = engine.count_tokens(text)
    counted = models.count_tokens(text)
    assert abs(counted - exact) <= text.count("\n")
    assert models.count_tokens(text) == counted  # served from the cache the second time
    models.close()


async def test_a_background_job_gives_way_to_any_other_job() -> None:
    scheduler: ModelScheduler[object] = ModelScheduler(object(), "test")
    started = threading.Event()
    speculation = scheduler.submit(blocking_job(started), key="doc#next", background=True)
    await asyncio.to_thread(started.wait, 5)
    queued = scheduler.submit(lambda e, c: "later", key="other#next", background=True)
    # A background job never stops another background job of another key ...
    assert not speculation.cancel.is_set()
    # ... and any foreground job stops the running one and drops the queued one.
    real = scheduler.submit(lambda e, c: "real", key="other-doc")
    with pytest.raises(GenerationCancelled):
        speculation.future.result(timeout=5)
    with pytest.raises(GenerationCancelled, match="superseded"):
        queued.future.result(timeout=5)
    assert real.future.result(timeout=5) == "real"
    scheduler.close()
