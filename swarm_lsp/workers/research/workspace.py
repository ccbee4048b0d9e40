"""An open workspace of the long-lived research worker: its index and its background fill.

The worker keeps each workspace's index open between tasks (no reopen, and only changed files
are read again) and fills its dense vectors in a background thread, in :mod:`.priority` order.
A question pauses the fill (:meth:`Workspace.paused`) so the question's embedding and the chat
model have the cores; the fill resumes afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from swarm_lsp.config import Settings
from swarm_lsp.workers.research import budget, priority
from swarm_lsp.workers.research.index import LOCK_WAIT_S, WorkspaceIndex

log = logging.getLogger(__name__)


class Workspace:
    """One workspace's open index and dense fill."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self.focus: list[str] = []
        self.ranks: dict[str, float] = {}
        self.last_used = time.monotonic()
        self.done = 0
        self.total = 0
        self.error = ""
        self._pauses = 0
        self._state = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()  # set while no fill runs
        self.idle.set()
        self.lock = threading.Lock()  # one update at a time per workspace

    @classmethod
    def open(
        cls, root: Path, settings: Settings, identity: str | None, lock_wait_s: float = LOCK_WAIT_S
    ) -> Workspace:
        return cls(WorkspaceIndex(root, settings, identity=identity, lock_wait_s=lock_wait_s))

    def rebase(self, root: Path) -> None:
        """A new task's copy of the same workspace: walk it from now on."""
        self.index.root = root.resolve()

    # -- fill -------------------------------------------------------------------------------

    def order(self) -> Sequence[str]:
        return priority.file_order(
            self.index.root,
            self.index.missing_dense(),
            focus=self.focus,
            ranks=self.ranks,
            use_mtime=not self.index.snapshot,
        )

    def _may_run(self) -> None:
        with self._state:
            while self._pauses and not self._stop.is_set():
                self._state.wait(0.5)

    def _progress(self, done: int, total: int, rel: str) -> None:
        self.done, self.total = done, total

    def _run(self) -> None:
        budget.background_thread()
        try:
            if not self.ranks:
                self.ranks = priority.repomap_ranks(
                    self.index.root,
                    self.index.cache_dir / "repomap",
                    self.index.max_file_bytes,
                    self.focus,
                )
            self.index.fill_dense(
                order=self.order, progress=self._progress, cancel=self._stop, may_run=self._may_run
            )
        except Exception as err:  # reported with the next answer and in the logs
            self.error = str(err)
            log.warning("dense fill of %s stopped: %s", self.index.root, err)
        finally:
            self.idle.set()

    def start_fill(self) -> None:
        """Start filling dense vectors in the background unless already running or complete."""
        with self._state:
            if self._thread is not None and self._thread.is_alive():
                return
            if not self.index.missing_dense():
                return
            self._stop.clear()
            self.idle.clear()
            self.error = ""
            self._thread = threading.Thread(
                target=self._run, name=f"research-fill-{self.index.root.name}", daemon=True
            )
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the fill to end; True when it has."""
        return self.idle.wait(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the fill between two batches while the caller runs."""
        with self._state:
            self._pauses += 1
        try:
            yield
        finally:
            with self._state:
                self._pauses -= 1
                self._state.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._state:
            self._state.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def close(self) -> None:
        self.stop()
        self.index.close()
