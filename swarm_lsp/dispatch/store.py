"""The coordinator's durable task store: SQLite in WAL mode.

A task is written (and committed) before SubmitTask returns, so an accepted task survives a
coordinator crash. Calls are short and synchronous; the coordinator makes them on its event
loop, which is cheaper than a thread hop for statements that take microseconds.

Group commits (:meth:`TaskStore.group_commits`): a commit costs far more than the statement
(~100 µs against ~20), so the coordinator has every write of one event-loop pass join one
transaction, committed by a callback scheduled when the group opened (so it runs at the start
of the next pass, before anything scheduled after that first write). What must not be seen
before it is durable (a receipt, a lease, a final result) waits for it: :meth:`TaskStore.durable`
or :meth:`TaskStore.after_commit`. The first wait of a pass commits the group at once (a lone
submit on a quiet coordinator answers without waiting a pass, and nothing else runs before its
answer); any later wait in the same pass yields once, and what was written after that commit
shares the next one (a burst costs two commits, not one each).

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL (the OS's page cache)
when it returns, so it survives a crash or SIGKILL of the coordinator; the WAL is fsynced
only when it is checkpointed (``Checkpointer``, every 0.5 s), so a power cut or kernel crash
can lose the commits of the last moments (SQLite stays consistent: whole transactions go).

A failed group commit is fatal (fail-stop): its writes are rolled back but the coordinator's
memory already holds them, so from then on nothing is committed any more (``failed``), every
wait for durability answers False, and ``on_failure`` tells the coordinator to stop; a
restart recovers from what the store does hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "DEADLINE_EXCEEDED"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    type TEXT NOT NULL,
    role TEXT NOT NULL,
    priority TEXT NOT NULL,
    complexity TEXT NOT NULL,
    context BLOB NOT NULL,
    context_dict_id INTEGER NOT NULL DEFAULT 0,
    context_dict_blob TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL,
    manifest TEXT NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    worker TEXT NOT NULL DEFAULT '',
    fallback TEXT NOT NULL DEFAULT '',
    submitted_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    started_ms INTEGER NOT NULL DEFAULT 0,
    finished_ms INTEGER NOT NULL DEFAULT 0,
    result_text TEXT NOT NULL DEFAULT '',
    result_data BLOB NOT NULL DEFAULT x'',
    result_stats TEXT NOT NULL DEFAULT '{}',
    error_code TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks(submitted_ms);
"""


CHECKPOINT_S = 0.5  # how often the checkpointer copies the WAL into the database
BACKSTOP_PAGES = 20_000  # ... and the WAL size (pages) at which a commit does it itself


class Checkpointer:
    """Copies the WAL into the database from a thread, with a connection of its own.

    SQLite checkpoints from the committing connection every 1000 pages by default, and with
    ``synchronous=NORMAL`` that is where the fsync is: a pause of the event loop every few
    hundred tasks. A passive checkpoint here runs beside the writer (sqlite3 releases the
    GIL) and never blocks it; durability is the same (a commit is in the WAL either way).
    """

    def __init__(self, path: Path, interval: float = CHECKPOINT_S) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._thread = threading.Thread(target=self._run, name="task-store-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as err:  # busy, or the disk: the next round tries again
                log.debug("task store checkpoint: %s", err)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._db.close()


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(kw_only=True)
class TaskRecord:
    id: str
    idempotency_key: str | None
    type: str
    role: str
    priority: str
    complexity: str
    context: bytes
    context_dict_id: int
    metadata: dict[str, str]
    manifest: dict[str, str]
    route: dict[str, Any]
    state: str
    context_dict_blob: str = ""
    attempt: int = 0
    worker: str = ""
    fallback: str = ""
    submitted_ms: int = 0
    deadline_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    result_text: str = ""
    result_data: bytes = b""
    result_stats: dict[str, str] = dataclasses.field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    owner: str = ""  # the submitting credential's identity, e.g. "cert:editor"

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


_COLUMNS = [f.name for f in dataclasses.fields(TaskRecord)]
# Columns added after the first release, with their definitions for ALTER TABLE.
_ADDED_COLUMNS = {
    "context_dict_blob": "TEXT NOT NULL DEFAULT ''",
    "owner": "TEXT NOT NULL DEFAULT ''",
}
_JSON_COLUMNS = {"metadata", "manifest", "route", "result_stats"}
_INSERT = f"INSERT INTO tasks ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if value else "{}"


def _row_to_record(row: sqlite3.Row) -> TaskRecord:
    values: dict[str, Any] = {}
    for name in _COLUMNS:
        value = row[name]
        if name in _JSON_COLUMNS:
            value = json.loads(value)
        elif name in ("context", "result_data"):
            value = bytes(value)
        values[name] = value
    return TaskRecord(**values)


class TaskStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a process crash (the case that matters here);
        # only a power cut can lose the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        for name in _COLUMNS:
            if name not in columns:  # a store made by an older version
                default = _ADDED_COLUMNS[name]
                self._db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {default}")

        self._loop: asyncio.AbstractEventLoop | None = None  # set: group commits
        self._checkpointer: Checkpointer | None = None
        self._group_open = False  # a group transaction is open (commit scheduled)
        self._group = 0  # groups opened so far (the open one's number, while open)
        self._commit_call: asyncio.Handle | None = None
        self._waited_this_pass = False  # a wait committed at once this pass (reset next pass)
        self._after: list[Callable[[bool], None]] = []
        self._savepoints = 0
        self.failed = False  # a group commit failed: nothing is committed any more
        self.on_failure: Callable[[], None] | None = None

    def close(self) -> None:
        if self.failed:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        else:
            self.commit()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._db.close()

    # -- group commits ----------------------------------------------------------------------

    def group_commits(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, writes made during one pass of ``loop`` share one commit, and the
        WAL is copied into the database by a thread of its own (``Checkpointer``)."""
        self._loop = loop
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self.path)
            # Only a backstop now: the thread keeps the WAL far below this.
            self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")

    def _join_group(self) -> None:
        if self.failed:  # writes go on in memory (the coordinator is stopping), never to disk
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            return
        if self._loop is None or self._group_open:
            return
        self._db.execute("BEGIN")
        self._group_open = True
        self._group += 1
        self._commit_call = self._loop.call_soon(self.commit)

    def commit(self) -> bool:
        """Commit the open group now (if any); run what waited for it. False if it failed."""
        ok = not self.failed
        if self._commit_call is not None:
            self._commit_call.cancel()  # (when called before its turn)
            self._commit_call = None
        if self._group_open:
            self._group_open = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                ok = False
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._fail(err)
        waiting, self._after = self._after, []
        for callback in waiting:
            try:
                callback(ok)
            except Exception:
                log.exception("a callback after a task store commit failed")
        return ok

    def _fail(self, err: sqlite3.Error) -> None:
        if self.failed:
            return
        self.failed = True
        log.critical(
            "the task store could not commit (%s): this pass's writes are lost and nothing more "
            "is committed; the coordinator stops (a restart recovers from the store)",
            err,
        )
        if self.on_failure is not None:
            self.on_failure()

    def after_commit(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(committed)`` once what was written so far is durable (now, if it is)."""
        if self._group_open:
            self._after.append(callback)
        else:
            callback(not self.failed)

    def pending(self) -> bool:
        """Whether writes wait for the group commit."""
        return self._group_open

    async def durable(self) -> bool:
        """Wait until every write so far is committed; False if the commit failed.

        The first wait of a loop pass commits at once (no yield); later ones in the same pass
        wait one pass for the group that collects the rest of it.
        """
        if self.failed:
            return False
        if not self._group_open or self._loop is None:
            return True
        if not self._waited_this_pass:
            self._waited_this_pass = True
            self._loop.call_soon(self._next_pass)
            return self.commit()
        group = self._group
        # The commit was scheduled when the group opened, so it is ahead of this task's
        # wake-up in the loop's FIFO queue: one yield, no future, no extra pass.
        await asyncio.sleep(0)
        if self._group_open and self._group == group:  # not expected; never go out unstored
            return self.commit()
        return not self.failed

    def _next_pass(self) -> None:
        self._waited_this_pass = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several statements, all or none (one commit: the group's, when grouping)."""
        self._join_group()
        if not self._group_open and not self.failed:
            self._db.execute("BEGIN")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._db.execute(f"ROLLBACK TO {name}")
            self._db.execute(f"RELEASE {name}")
            raise
        finally:
            self._savepoints -= 1
        self._db.execute(f"RELEASE {name}")

    def insert(self, record: TaskRecord) -> None:
        values = [
            (_json(getattr(record, name)) if name in _JSON_COLUMNS else getattr(record, name))
            for name in _COLUMNS
        ]
        self._join_group()
        self._db.execute(_INSERT, values)

    def update(self, task_id: str, **fields: Any) -> None:
        if not fields:
            return
        names = []
        values = []
        for name, value in fields.items():
            if name not in _COLUMNS:
                raise KeyError(name)
            names.append(f"{name}=?")
            values.append(json.dumps(value) if name in _JSON_COLUMNS else value)
        values.append(task_id)
        self._join_group()
        self._db.execute(f"UPDATE tasks SET {','.join(names)} WHERE id=?", values)

    def get(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        return _row_to_record(row) if row else None

    def by_idempotency_key(self, key: str) -> TaskRecord | None:
        row = self._db.execute("SELECT * FROM tasks WHERE idempotency_key=?", (key,)).fetchone()
        return _row_to_record(row) if row else None

    def unfinished(self) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT * FROM tasks WHERE state IN ('QUEUED','RUNNING') ORDER BY submitted_ms"
        ).fetchall()
        return [_row_to_record(row) for row in rows]

    def recent(self, limit: int, owner: str | None = None) -> list[sqlite3.Row]:
        """The latest tasks (only ``owner``'s when given)."""
        where, args = ("WHERE owner=? ", (owner, limit)) if owner is not None else ("", (limit,))
        return self._db.execute(
            "SELECT id, type, role, priority, state, worker, fallback, submitted_ms, started_ms, "
            "finished_ms, error_code, error_message "
            f"FROM tasks {where}ORDER BY submitted_ms DESC, rowid DESC LIMIT ?",
            args,
        ).fetchall()

    def prune(self, finished_before_ms: int) -> int:
        """Forget finished tasks older than the given time; return how many went."""
        self._join_group()
        cursor = self._db.execute(
            "DELETE FROM tasks WHERE state NOT IN ('QUEUED','RUNNING') AND finished_ms < ?",
            (finished_before_ms,),
        )
        return cursor.rowcount

    def live_bytes(self) -> int:
        """Bytes the stored tasks take (pages in use; freed pages are reused, not counted)."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def prune_oldest(self, count: int) -> int:
        """Forget the ``count`` finished tasks that finished first; return how many went."""
        self._join_group()
        cursor = self._db.execute(
            "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks WHERE state NOT IN "
            "('QUEUED','RUNNING') ORDER BY finished_ms LIMIT ?)",
            (count,),
        )
        return cursor.rowcount

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
        return {row[0]: int(row[1]) for row in rows}
