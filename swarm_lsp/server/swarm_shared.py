"""This server's part in the project's shared local swarm (``dispatch/shared_swarm.py``).

Attach to the swarm another server recorded, or start it and record it; restart its coordinator
when it exits (``watch``: only the server that watches it, named in ``local-swarm/owner``);
take that job over when the watching server is gone and the coordinator exited (``take_over``:
one server does, under the folder's lock); detach, the last server stopping the processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types

from swarm_lsp.config import Settings
from swarm_lsp.dispatch.local_swarm import LocalSwarm
from swarm_lsp.dispatch.shared_swarm import CLIENTS_ENV, SharedSwarmState, pid_alive, terminate
from swarm_lsp.errors import DispatchError, SwarmError
from swarm_lsp.server.app import SwarmLanguageServer
from swarm_lsp.server.swarm_local import ServerLocalSwarm, child_environment, stop_quickly

LOCAL_START_TIMEOUT_S = 90.0
RESTARTS = 3  # restarts of an exited local coordinator within RESTART_WINDOW_S, then give up
RESTART_WINDOW_S = 300.0
RESTART_BACKOFF_S = 0.5  # before the first restart; doubles with each restart in the window
OWNER_FILE = "owner"  # in the shared folder: the pid of the server that restarts the coordinator


def _running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie does not (an orphan's parent may never reap it)."""
    if not pid_alive(pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no /proc: pid_alive is all we know
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class SwarmHost(Protocol):
    """What the shared local swarm needs of the bridge that uses it."""

    ls: SwarmLanguageServer

    @property
    def stopping(self) -> bool: ...

    async def connect(self, settings: Settings, address: str) -> None: ...

    async def lost(self, why: str) -> None: ...

    def set_state(self, state: str, message: str, address: str = "") -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...


class SharedLocalSwarm:
    """One per bridge that uses the project's local swarm (``base``: the project's cache)."""

    def __init__(self, host: SwarmHost, base: Path, settings: Settings) -> None:
        self.host = host
        self.shared = SharedSwarmState(base)
        self.settings = settings
        self.local: LocalSwarm | None = None  # the coordinator (and workers) this server runs
        self.target: tuple[Settings, str] | None = None  # the swarm's settings and address
        self._state_dir: Path | None = None
        self._adopted: list[int] = []  # workers a gone server started, now stopped by this one
        self._taking_over = False

    @property
    def _owner_file(self) -> Path:
        return self.shared.folder / OWNER_FILE

    def _owner(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(self._owner_file.read_text(encoding="utf-8"))
        return 0

    def _own(self) -> None:
        """Record this server as the one that restarts the coordinator (lock held)."""
        tmp = self._owner_file.with_name(OWNER_FILE + ".tmp")
        tmp.write_text(str(os.getpid()), encoding="utf-8")
        os.replace(tmp, self._owner_file)

    def _record(self, local: LocalSwarm, state_dir: Path, workers: list[int]) -> None:
        assert local.coordinator is not None
        pids = [local.coordinator.pid, *workers]
        self.shared.write(local.address, local.token_file, pids, state_dir)
        self._own()

    def _new_local(self, state_dir: Path, **kwargs: Any) -> ServerLocalSwarm:
        env = child_environment(self.settings) | {CLIENTS_ENV: str(self.shared.clients)}
        return ServerLocalSwarm(self.settings, env, state_dir=state_dir, **kwargs)

    async def attach_or_start(self) -> None:
        """Attach to the recorded swarm, or start one and record it; then connect."""
        host, shared = self.host, self.shared
        async with shared.locked():
            if host.stopping:
                return
            record = shared.read()
            if record is not None:
                shared.register(os.getpid())
                address = str(record["address"])
                swarm = dataclasses.replace(
                    self.settings.swarm, coordinator=address, token=str(record.get("token") or "")
                )
                host.ls.log(f"swarm: using the project's local swarm on {address}")
                self.target = (dataclasses.replace(self.settings, swarm=swarm), address)
                await host.connect(*self.target)
                return
            self._state_dir = shared.run_dir(os.getpid())
            local = self._new_local(self._state_dir)
            self.local = local
            address = await local.start(timeout=LOCAL_START_TIMEOUT_S)
            self._record(local, self._state_dir, [p.pid for p in local.workers.values()])
            shared.register(os.getpid())
        if host.stopping:
            return
        if local.skipped:
            skipped = ", ".join(f"{role} ({why})" for role, why in local.skipped.items())
            host.ls.log(f"swarm: local workers not running: {skipped}", types.MessageType.Warning)
        host.ls.log(f"swarm: local swarm of one on {address}")
        self.target = (local.settings, address)
        host.spawn(self.watch(local))
        await host.connect(local.settings, address)

    async def watch(self, local: LocalSwarm) -> None:
        """Restart the local coordinator this server runs whenever it exits (a crash, a kill, a
        failed store: exit 4), on the same port with the same token and state folder (its store
        is recovered, so followed tasks keep their ids); at most ``RESTARTS`` times within
        ``RESTART_WINDOW_S``, with a doubling backoff. Servers attached to the shared swarm
        reconnect by themselves: the address and token do not change."""
        host = self.host
        loop = asyncio.get_running_loop()
        restarts: list[float] = []
        while (proc := local.coordinator) is not None:
            code = await proc.wait()
            if host.stopping or self.local is not local:
                return
            restarts = [t for t in restarts if loop.time() - t < RESTART_WINDOW_S]
            why = f"the local coordinator exited with code {code}"
            if len(restarts) >= RESTARTS:
                message = f"{why}; not restarted ({RESTARTS} restarts already)"
                host.set_state("down", message)
                host.ls.notify_user(f"swarm-lsp: {message}", types.MessageType.Error)
                return
            await host.lost(why)
            try:
                # Under the shared lock: a server arriving meanwhile waits for the new record
                # instead of taking the dead one's place.
                async with self.shared.locked():
                    await asyncio.sleep(RESTART_BACKOFF_S * 2 ** len(restarts))
                    restarts.append(loop.time())
                    if host.stopping or self.local is not local:
                        return
                    address = await local.restart_coordinator(timeout=LOCAL_START_TIMEOUT_S)
                    if self._state_dir is not None:
                        workers = [p.pid for p in local.workers.values()] + self._adopted
                        self._record(local, self._state_dir, workers)
            except DispatchError as err:
                host.ls.log(f"swarm: restarting the local swarm failed: {err}")
                continue  # counted as one more exit
            host.ls.notify_user(
                f"swarm-lsp: local swarm restarted after it exited with code {code}"
            )
            with contextlib.suppress(SwarmError):
                await host.connect(local.settings, address)

    async def take_over(self) -> bool:
        """For a server attached to the swarm whose coordinator does not answer: when the
        coordinator exited and the server that restarts it is gone too, restart it here (same
        port, token and state folder; its workers find it again) and watch it from now on.

        Under the folder's lock, so one surviving server does it; the others find the new
        coordinator in the record. True when this server restarted it.
        """
        owner = self._owner()
        busy = self._taking_over or self.local is not None or self.target is None
        if busy or self.host.stopping or (owner != os.getpid() and _running(owner)):
            return False
        self._taking_over = True
        try:
            async with self.shared.locked():
                return await self._take_over_locked()
        except DispatchError as err:
            self.host.ls.log(f"swarm: taking over the local swarm failed: {err}")
            return False
        finally:
            self._taking_over = False

    async def _take_over_locked(self) -> bool:
        host, shared = self.host, self.shared
        try:
            record = json.loads(shared.record.read_text(encoding="utf-8"))
            pids = [int(p) for p in record["pids"]]
            address, state_dir = str(record["address"]), Path(record["stateDir"])
            token = Path(record["tokenFile"]).read_text(encoding="utf-8").strip()
        except (OSError, ValueError, KeyError, TypeError):
            return False  # no swarm recorded: nothing to take over
        owner = self._owner()
        if host.stopping or _running(pids[0]) or (owner != os.getpid() and _running(owner)):
            return False  # running (or restarted meanwhile), or its owner restarts it
        local = self._new_local(state_dir, token=token)
        local.address = address
        await local.restart_coordinator(timeout=LOCAL_START_TIMEOUT_S)
        self._adopted = [p for p in pids[1:] if _running(p)]
        self._record(local, state_dir, self._adopted)
        self.local, self._state_dir = local, state_dir
        self.target = (local.settings, local.address)
        host.ls.notify_user(
            f"swarm-lsp: the local swarm's coordinator exited after the server that started it "
            f"(pid {owner}) was gone; restarted it here on {local.address}"
        )
        host.spawn(self.watch(local))
        with contextlib.suppress(SwarmError):
            await host.connect(*self.target)
        return True

    async def release(self) -> None:
        """Detach from the shared local swarm; the last server to leave stops it."""
        local, self.local = self.local, None
        self.target = None
        shared, host = self.shared, self.host
        try:
            async with shared.locked(timeout=5.0):
                if shared.unregister(os.getpid()):
                    host.ls.log(
                        "swarm: other servers still use the local swarm; leaving it running"
                    )
                    return
                record = shared.read()
                if local is not None:
                    await stop_quickly(local)
                    terminate(self._adopted)
                elif record is not None:
                    terminate([int(p) for p in record.get("pids") or []])
                shared.remove()
        except DispatchError as err:  # the lock is busy: our processes follow their parent
            (shared.clients / str(os.getpid())).unlink(missing_ok=True)
            host.ls.log(f"swarm: {err}; leaving the local swarm to stop by itself")
