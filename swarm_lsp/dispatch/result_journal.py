"""A machine's short journal of the final results its workers reported to *other* mesh peers.

An owner SIGKILLed in the instant after its task completed, before the result reached the
editor, would take the only record of that result with it: the editor resubmits the task to
another peer, which cannot ask the dead owner, and the task would run a second time. So a mesh
node's workers for the other peers write each success here, durably (SQLite, ``synchronous =
FULL``: fsynced at commit) *before* they report it; the node's coordinator answers a peer's
``SupersedeTask`` with ``journal_of`` from it, and a new owner whose old owner does not answer
asks its own machine's journal and its live peers before it runs the copy
(``dispatch/coordinator/journal_ask.py``, docs/mesh.md).

Bounded: entries older than ``MAX_AGE_S`` go, the journal keeps at most ``MAX_BYTES`` of
results (the oldest go first), and a result larger than ``MAX_ENTRY_BYTES`` is not journaled
(that task would run again). Only tasks with an idempotency key and an owner (the credential
that submitted them, which the lease carries) are journaled: nothing else can be resubmitted.
Several worker processes (one per peer) write the same file: SQLite's WAL locking serialises
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

from swarm_lsp.dispatch.proto import swarm_pb2 as pb

log = logging.getLogger(__name__)

JOURNAL_FILE = "result-journal.sqlite3"  # in the node's state folder
MAX_AGE_S = 600.0
MAX_BYTES = 8 * 1024 * 1024
MAX_ENTRY_BYTES = 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    task_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    owner TEXT NOT NULL,
    coordinator TEXT NOT NULL,
    state TEXT NOT NULL,
    result BLOB NOT NULL,
    size INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS results_key ON results (idempotency_key);
CREATE INDEX IF NOT EXISTS results_at ON results (at_ms);
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class ResultJournal:
    """One worker's writer (and any reader) of the machine's journal at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one transaction at a time on the connection

    async def keep(self, lease: pb.LeaseTask, coordinator: str, result: pb.TaskResult) -> None:
        """``record`` in a thread; a failure is logged (the report goes out all the same)."""
        try:
            await asyncio.to_thread(self.record, lease, coordinator, result)
        except Exception:
            log.exception("task %s: could not journal its result", lease.task.id)

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # each commit is on disk before we report
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def record(self, lease: pb.LeaseTask, coordinator: str, result: pb.TaskResult) -> bool:
        """Journal ``result``, ``lease``'s final result for ``coordinator``; False if skipped."""
        task = lease.task
        if not task.idempotency_key or not lease.owner:
            return False
        blob = result.SerializeToString()
        if len(blob) > MAX_ENTRY_BYTES:
            log.info("task %s: result of %d bytes not journaled", task.id, len(blob))
            return False
        now = _now_ms()
        with self._lock, contextlib.closing(self._open().cursor()) as cur:
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        task.id,
                        task.idempotency_key,
                        lease.owner,
                        coordinator,
                        pb.TaskState.Name(result.state),
                        blob,
                        len(blob),
                        now,
                    ),
                )
                cur.execute("DELETE FROM results WHERE at_ms < ?", (now - MAX_AGE_S * 1000,))
                (total,) = cur.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()
                while total > MAX_BYTES:  # the oldest go first
                    rowid, size = cur.execute(
                        "SELECT rowid, size FROM results ORDER BY rowid LIMIT 1"
                    ).fetchone()
                    cur.execute("DELETE FROM results WHERE rowid = ?", (rowid,))
                    total -= size
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return True


def success(
    lease: pb.LeaseTask, worker: str, text: str, data: bytes, stats: dict[str, str]
) -> pb.TaskResult:
    """The final result the owner makes of ``lease``'s success (what a new owner adopts)."""
    return pb.TaskResult(
        task_id=lease.task.id,
        kind=pb.TaskResult.FINAL,
        text=text,
        data=data,
        attempt=lease.attempt,
        worker=worker,
        percentage=100,
        state=pb.SUCCEEDED,
        stats=stats,
    )


def find(
    path: Path, *, idempotency_key: str, owner: str, coordinator: str, task_id: str = ""
) -> pb.TaskResult | None:
    """The journaled final result of the copy of ``idempotency_key`` that ``owner`` submitted
    to ``coordinator`` (``task_id``'s, if given), not older than ``MAX_AGE_S``; None if none."""
    if not path.exists():
        return None
    query = (
        "SELECT result FROM results WHERE idempotency_key = ? AND owner = ? AND coordinator = ?"
        " AND at_ms >= ?"
    )
    args: list[object] = [idempotency_key, owner, coordinator, _now_ms() - MAX_AGE_S * 1000]
    if task_id:
        query += " AND task_id = ?"
        args.append(task_id)
    query += " ORDER BY at_ms DESC LIMIT 1"
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
            row = db.execute(query, args).fetchone()
    except sqlite3.Error as err:
        log.warning("result journal %s: %s", path, err)
        return None
    if row is None:
        return None
    result = pb.TaskResult()
    result.ParseFromString(row[0])
    return result
