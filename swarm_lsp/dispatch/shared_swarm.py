"""One local swarm per project root per user, shared by every server an editor starts there.

Editors start a server per project (eglot: per folder without a VCS root); each would start its
own swarm of one (a coordinator and three workers). Instead the first server starts it and
records it in the project's state folder; later servers attach to it::

    <state>/local-swarm.lock   flock(2) held while a server attaches or detaches
    <state>/local-swarm/
        swarm.json    {"address", "tokenFile", "pids", "stateDir"} (0600, like the token file
                      the swarm of one keeps in its state folder)
        clients/<pid> one file per server using the swarm (the reference count)
        run-<pid>/    the swarm's own state (coordinator store, logs, worker caches)

The swarm's processes stay alive while any registered server lives (they watch ``clients/``,
see :func:`any_client_alive`), so the server that started them may exit first; the last server
to detach stops them. A server that dies without detaching is skipped as a dead pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from swarm_lsp.errors import DispatchError

CLIENTS_ENV = "SWARM_LSP_CLIENTS_DIR"
LOCK_TIMEOUT_S = 120.0  # a swarm that starts takes up to its start timeout under the lock


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (cannot happen in a private folder)
        return True
    return True


def live_clients(clients: Path) -> list[int]:
    """Pids registered in ``clients`` whose process still runs (dead entries are removed)."""
    alive: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in clients.iterdir():
            if not entry.name.isdigit():
                continue
            if pid_alive(int(entry.name)):
                alive.append(int(entry.name))
            else:
                entry.unlink(missing_ok=True)
    return sorted(alive)


def any_client_alive(clients: Path) -> bool:
    """For the swarm's processes: whether any server still uses them."""
    return bool(live_clients(clients))


class SharedSwarmState:
    """The files in one project's shared-swarm folder; every method expects the lock held."""

    def __init__(self, base: Path) -> None:
        self.folder = base / "local-swarm"
        self.lock = base / "local-swarm.lock"
        self.clients = self.folder / "clients"
        self.record = self.folder / "swarm.json"

    @contextlib.asynccontextmanager
    async def locked(self, timeout: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
        """Hold the folder's lock (bounded wait; the event loop keeps running meanwhile)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.clients.mkdir(exist_ok=True, mode=0o700)
        with open(self.lock, "a+") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DispatchError(
                            f"another server holds {self.lock} for over {timeout:g}s"
                        ) from None
                    await asyncio.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any] | None:
        """The recorded swarm (with its ``token``), if its processes still run."""
        try:
            record = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pids = [int(p) for p in record.get("pids") or [] if str(p).isdigit()]
        if not isinstance(record.get("address"), str) or not pids or not pid_alive(pids[0]):
            self.record.unlink(missing_ok=True)
            return None
        try:
            token = Path(str(record.get("tokenFile"))).read_text(encoding="utf-8").strip()
        except OSError:
            self.record.unlink(missing_ok=True)
            return None
        return {**record, "token": token}

    def run_dir(self, pid: int) -> Path:
        return self.folder / f"run-{pid}"

    def write(self, address: str, token_file: Path, pids: list[int], state_dir: Path) -> None:
        tmp = self.record.with_name("swarm.json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        record = {
            "address": address,
            "tokenFile": str(token_file),
            "pids": pids,
            "stateDir": str(state_dir),
        }
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(tmp, self.record)

    def register(self, pid: int) -> None:
        (self.clients / str(pid)).touch()

    def unregister(self, pid: int) -> list[int]:
        """Remove ``pid``; the servers still using the swarm."""
        (self.clients / str(pid)).unlink(missing_ok=True)
        return live_clients(self.clients)

    def remove(self) -> None:
        """The last server is done: remove the record, the count and the swarm's state."""
        shutil.rmtree(self.folder, ignore_errors=True)


def terminate(pids: list[int]) -> None:
    """SIGTERM the swarm's processes that another server started (coordinator last)."""
    for pid in [*pids[1:], *pids[:1]]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
