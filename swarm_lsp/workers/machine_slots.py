"""One capacity per machine, shared by the worker processes that run on it.

A mesh node runs one worker per peer it works for (``swarm_lsp.mesh.peer_workers``) and its
coordinator's local fallback worker: separate processes, each registered with its own
coordinator. They share the machine's capacity through a folder of ``slot-<n>`` files: a task
runs only while its worker holds one of them with ``flock`` (exclusive, released by the kernel
when the process dies, even by SIGKILL), so the machine never runs more tasks at once than
there are slot files. Each worker tells its coordinator how many slots the others hold
(``Heartbeat.busy_elsewhere``), which counts them as taken; a lease that still arrives while
the machine is full (the others took the slot since the last heartbeat) waits for a slot.

The folder is named by ``--machine-slots`` or ``SWARM_LSP_MACHINE_SLOTS``; ``prepare`` makes
it with the machine's capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from swarm_lsp.errors import ConfigError
from swarm_lsp.workers.execution import TaskFailure

ENV = "SWARM_LSP_MACHINE_SLOTS"
SLOTS_POLL_S = 0.05  # how often the shared slots are looked at (a waiting task, the heartbeat)


def prepare(folder: Path, capacity: int) -> Path:
    """Make ``folder`` hold exactly ``capacity`` slot files (the machine's capacity)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"slot-{n}" for n in range(max(1, capacity))}
    for path in folder.glob("slot-*"):
        if path.name not in wanted:
            path.unlink(missing_ok=True)
    for name in wanted:
        (folder / name).touch()
    return folder


class MachineSlots:
    """The slot files of ``folder``: take one while a task runs, count the others'."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        paths = sorted(folder.glob("slot-*"), key=lambda p: int(p.name.split("-")[1]))
        if not paths:
            raise ConfigError(f"machine slots: {folder} has no slot files")
        # One open file per slot for this process: flock conflicts between open files, so
        # this process's own probes never pass through a slot another process holds.
        try:
            self._fds = [os.open(p, os.O_RDWR) for p in paths]
        except OSError as err:
            raise ConfigError(f"machine slots: cannot open {folder}'s slot files: {err}") from err
        self._held: set[int] = set()

    @property
    def capacity(self) -> int:
        return len(self._fds)

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds, self._held = [], set()

    def _try(self, index: int) -> bool:
        try:
            fcntl.flock(self._fds[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def try_acquire(self) -> int | None:
        """A free slot's index, now held by this process; None when the machine is full."""
        for index in range(len(self._fds)):
            if index not in self._held and self._try(index):
                self._held.add(index)
                return index
        return None

    def release(self, index: int) -> None:
        if index in self._held:
            self._held.discard(index)
            fcntl.flock(self._fds[index], fcntl.LOCK_UN)

    def held_elsewhere(self) -> int:
        """Slots other processes hold now (a probe takes a free slot for an instant)."""
        busy = 0
        for index in range(len(self._fds)):
            if index in self._held:
                continue
            if self._try(index):
                fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            else:
                busy += 1
        return busy


def from_environment(folder: Path | None = None) -> MachineSlots | None:
    """The slots named by ``folder`` or ``$SWARM_LSP_MACHINE_SLOTS``; None when neither is set."""
    named = folder or (Path(os.environ[ENV]) if os.environ.get(ENV) else None)
    return MachineSlots(named) if named is not None else None


@contextlib.asynccontextmanager
async def holding_slot(slots: MachineSlots | None, cancel: asyncio.Event) -> AsyncIterator[None]:
    """Hold one of the machine's shared slots (if it has any) while a task runs.

    A lease that arrives while the machine's other workers hold every slot (they took the
    last one since the worker's last heartbeat) waits here; a cancellation meanwhile ends it.
    """
    if slots is None:
        yield
        return
    while (index := slots.try_acquire()) is None:
        if cancel.is_set():
            raise TaskFailure("CANCELLED", "cancelled while waiting for a slot of this machine")
        await asyncio.sleep(SLOTS_POLL_S)
    try:
        yield
    finally:
        slots.release(index)
