"""The task store's group commit: when a wait for durability commits, and what it shares.

A lone wait commits at once (a quiet coordinator's receipt goes out in the pass that wrote
it); the other waits of the same event-loop pass share the group that collects the rest of
the pass, committed at the start of the next one (a burst costs two commits, not one each).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarm_lsp.dispatch.store import TaskStore

from .conftest import task_record


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "tasks.sqlite3")
    yield store
    store.close()


def _commits(store: TaskStore) -> list[str]:
    """Every COMMIT the store's connection runs from now on (a SQLite trace callback)."""
    seen: list[str] = []
    store._db.set_trace_callback(
        lambda sql: seen.append(sql) if sql.lstrip().upper().startswith("COMMIT") else None
    )
    return seen


def _stored(path: Path) -> set[str]:
    """Task ids committed, as another connection (another process) sees them."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return {row[0] for row in other.execute("SELECT id FROM tasks")}


async def test_a_lone_wait_commits_at_once_without_yielding(store: TaskStore) -> None:
    store.group_commits(asyncio.get_running_loop())
    await asyncio.sleep(0)  # a fresh pass
    commits = _commits(store)
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "ready before the wait")
    store.insert(task_record("a"))
    store.update("a", state="RUNNING")  # a lease: the same group
    assert store.pending() and _stored(store.path) == set()
    assert await store.durable()
    # Committed before anything else that was ready got to run: no pass went by.
    assert ran == [] and not store.pending() and len(commits) == 1
    assert _stored(store.path) == {"a"}
    await asyncio.sleep(0)
    assert ran == ["ready before the wait"] and len(commits) == 1  # its scheduled commit is off


async def test_a_burst_in_one_pass_commits_as_a_group(store: TaskStore) -> None:
    store.group_commits(asyncio.get_running_loop())
    await asyncio.sleep(0)
    commits = _commits(store)
    passes = 0

    async def count() -> None:
        nonlocal passes
        while True:
            await asyncio.sleep(0)
            passes += 1

    async def submit(task_id: str) -> tuple[int, set[str]]:
        """What a SubmitTask call does: write, wait, answer (here: what was stored then)."""
        store.insert(task_record(task_id))
        store.update(task_id, state="RUNNING")
        before = passes
        assert await store.durable()
        return passes - before, _stored(store.path)

    counter = asyncio.create_task(count())
    await asyncio.sleep(0)
    ids = [f"t{i}" for i in range(20)]
    answers = await asyncio.gather(*(submit(task_id) for task_id in ids))
    counter.cancel()
    # The first call of the pass committed at once; the other 19 shared one commit, made at
    # the start of the next pass, and each waited that one pass. No answer before its task
    # was stored.
    assert len(commits) == 2
    assert [waited for waited, _ in answers] == [0] + [1] * 19
    for task_id, (_, stored) in zip(ids, answers, strict=True):
        assert task_id in stored
    assert _stored(store.path) == set(ids)


async def test_the_next_pass_commits_at_once_again(store: TaskStore) -> None:
    store.group_commits(asyncio.get_running_loop())
    await asyncio.sleep(0)
    commits = _commits(store)
    for round_ in range(3):  # one lone submit per pass, as on a quiet coordinator
        store.insert(task_record(f"a{round_}"))
        assert await store.durable() and not store.pending()
        assert len(commits) == round_ + 1
        await asyncio.sleep(0)
    store.insert(task_record("b"))
    assert store.commit() and not store.pending()  # early, by hand: its scheduled call is off
    store.insert(task_record("c"))  # a new group, committed by this pass's first wait
    assert store.pending() and await store.durable() and len(commits) == 5
    assert _stored(store.path) == {"a0", "a1", "a2", "b", "c"}
