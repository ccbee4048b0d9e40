"""A swarm of one: a mesh node and workers as child processes, on 127.0.0.1 by default.

``swarm-lsp up`` runs one in the foreground; ``swarm-lsp serve`` starts one when no coordinator
is configured and stops it with the server. Children watch their parent (``SWARM_LSP_PARENT_PID``)
and exit if it dies, so a killed editor leaves no stray processes behind.

The coordinator is a ``swarm-lsp node`` (docs/mesh.md): on 127.0.0.1 a mesh of one; given a
LAN address or 0.0.0.0 (``listen_host``, ``swarm.listen``, ``up --listen``; TLS required) it
advertises itself, peers join it, and its roles work for them too, every worker of the machine
sharing one capacity (the workers' capacities together). Star workers and clients dial it as
they dialled ``swarm-lsp coordinator``.

On loopback every call needs the swarm's token: a fresh random one per start (unless one is
given), written 0600 to ``<state folder>/token`` and handed to the children as
``--token-file`` (never through the environment, which tasks could inherit). Local CLIs find
it through :mod:`swarm_lsp.dispatch.local_token`. A swarm of one that peers can join makes no
token of its own (they could not know it): mTLS is its credential, with ``swarm.token`` on top
when one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

from swarm_lsp import paths
from swarm_lsp.config import Settings
from swarm_lsp.dispatch import local_token
from swarm_lsp.dispatch.locality import is_loopback_target, is_wildcard, split_host_port
from swarm_lsp.errors import EXIT_ROLE_UNAVAILABLE, DispatchError

DEFAULT_ROLES = ("refactor", "research", "test")
PARENT_ENV = "SWARM_LSP_PARENT_PID"


class _StartTimeout(DispatchError):
    """The coordinator did not write its ready file in time."""


class LocalSwarm:
    """Start with ``await start()`` (returns the address), stop with ``await stop()``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        roles: tuple[str, ...] = DEFAULT_ROLES,
        port: int = 0,
        state_dir: Path | None = None,
        worker_capacity: int = 2,
        heartbeat_ms: int = 500,
        lease_timeout_ms: int = 2000,
        token: str | None = None,
        listen_host: str | None = None,
    ) -> None:
        self.base_settings = settings or Settings()
        # Where the node listens: loopback (a mesh of one), or an address peers can join.
        self.listen_host = listen_host or self.base_settings.swarm.listen or "127.0.0.1"
        self.joinable = not is_loopback_target(f"{self.listen_host}:0")
        self.roles = roles
        self.port = port
        # Without a state_dir each swarm gets its own (two editors, two swarms), removed
        # again by stop(): its tasks end with the process that started them anyway.
        self._own_state_dir = state_dir is None
        self.state_dir = (
            state_dir or paths.user_cache_dir() / "local-swarm" / str(os.getpid())
        ).absolute()
        self.worker_capacity = worker_capacity
        self.heartbeat_ms = heartbeat_ms
        self.lease_timeout_ms = lease_timeout_ms
        # A fresh random token unless one is given (or configured): never none at all on
        # loopback; none of its own when peers may join (mTLS is then every caller's credential).
        self.token = token or self.base_settings.swarm.token
        if not self.token and not self.joinable:
            self.token = local_token.new_token()
        self.token_file = self.state_dir / local_token.TOKEN_FILE
        self._registered_port = 0
        self.address = ""
        self.workers: dict[str, asyncio.subprocess.Process] = {}
        self.skipped: dict[str, str] = {}  # role -> why no worker runs it
        self.coordinator: asyncio.subprocess.Process | None = None

    @property
    def settings(self) -> Settings:
        """Settings for clients of this swarm (its address and token)."""
        swarm = dataclasses.replace(
            self.base_settings.swarm, coordinator=self.address, token=self.token
        )
        return dataclasses.replace(self.base_settings, swarm=swarm)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[PARENT_ENV] = str(os.getpid())
        env.pop("SWARM_LSP_SWARM__TOKEN", None)  # children read --token-file
        env.pop("SWARM_LSP_SWARM__COORDINATOR", None)
        return env

    async def _spawn(self, name: str, *args: str) -> asyncio.subprocess.Process:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "swarm_lsp.cli",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self._env(),
                cwd=str(self.state_dir),
            )

    async def restart_coordinator(self, timeout: float = 30.0) -> str:
        """Start the coordinator again after it exited: same port, token and state folder.

        Its store is recovered (tasks accepted before the exit keep their ids); the workers,
        which retry a lost coordinator on their own, find it again on the same address.
        """
        if self.coordinator is not None and self.coordinator.returncode is None:
            return self.address
        if self.address:
            self.port = int(split_host_port(self.address)[1] or 0)
        try:
            starting_token = await self._start_coordinator(time.monotonic() + timeout, timeout)
        except DispatchError:
            proc = self.coordinator
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        if starting_token is not None:
            os.replace(starting_token, self.token_file)
        return self.address

    async def _start_coordinator(self, deadline: float, timeout: float) -> Path | None:
        """Spawn the node, wait for its ready file, set ``address``; its start token file."""
        # The coordinator reads its token from a file of this start's own; it becomes the
        # swarm's ``token`` only once the coordinator is up, so a second `up` on a busy port
        # cannot overwrite the token of the swarm already running there.
        starting_token = (
            local_token.write_token(self.state_dir, self.token, name=f".token-{os.getpid()}")
            if self.token
            else None
        )
        token_args = ["--token-file", str(starting_token)] if starting_token else []
        if starting_token is None:
            self.token_file.unlink(missing_ok=True)  # an earlier run's, in a kept state folder
        ready = self.state_dir / "coordinator.ready"
        ready.unlink(missing_ok=True)
        node_state = self.state_dir / "coordinator"
        mesh_args = [arg for role in self.roles for arg in ("--role", role)]  # advertised
        if not self.joinable:
            mesh_args.append("--no-mdns")
        self.coordinator = await self._spawn(
            "coordinator",
            "node",
            "--listen",
            f"{self.listen_host}:{self.port}",
            "--state-dir",
            str(node_state),
            "--ready-file",
            str(ready),
            "--heartbeat-ms",
            str(self.heartbeat_ms),
            "--lease-timeout-ms",
            str(self.lease_timeout_ms),
            # The machine's capacity: what its role workers run at once, for every peer.
            "--capacity",
            str(self.worker_capacity * max(1, len(self.roles))),
            "--no-work-for-self",  # the role workers below work for it
            *mesh_args,
            *token_args,
        )
        try:
            while not ready.exists():
                if self.coordinator.returncode is not None:
                    raise DispatchError(self._exit_message(self.coordinator.returncode))
                if time.monotonic() > deadline:
                    raise _StartTimeout(f"the local coordinator did not start within {timeout:g}s")
                await asyncio.sleep(0.05)
        except BaseException:
            if starting_token is not None:
                starting_token.unlink(missing_ok=True)
            raise
        listening = ready.read_text(encoding="utf-8").strip()
        host, port = split_host_port(listening)
        # Local clients and workers dial a wildcard listener on loopback.
        self.address = f"127.0.0.1:{port}" if is_wildcard(host) else listening
        return starting_token

    async def start(self, timeout: float = 30.0, *, wait_for_workers: bool = True) -> str:
        """Start the coordinator, then one worker per available role; return host:port.

        With ``wait_for_workers`` (the default) it returns once every worker has registered
        (or exited, or ``timeout`` passed: see ``skipped``); tasks submitted before a worker
        registers run on the coordinator's local fallback.
        """
        deadline = time.monotonic() + timeout
        try:
            starting_token = await self._start_coordinator(deadline, timeout)
        except _StartTimeout as err:
            await self.stop()
            raise DispatchError(str(err)) from None
        port = split_host_port(self.address)[1]
        node_state = self.state_dir / "coordinator"
        # Peers may join: the role workers share the machine's capacity with the workers the
        # node runs for them (on loopback each keeps its own, as before).
        shared = ["--machine-slots", str(node_state / "machine-slots")] if self.joinable else []
        worker_token: list[str] = []
        if starting_token is not None:
            os.replace(starting_token, self.token_file)
            self._registered_port = int(port or 0)
            local_token.register(self._registered_port, self.token_file)
            worker_token = ["--token-file", str(self.token_file)]
        for role in self.roles:
            self.workers[role] = await self._spawn(
                f"worker-{role}",
                "worker",
                "--role",
                role,
                "--coordinator",
                self.address,
                "--name",
                f"local-{role}",
                "--capacity",
                str(self.worker_capacity),
                "--cache-dir",
                str(self.state_dir / "worker-cache"),
                *shared,
                *worker_token,
            )
        if wait_for_workers:
            await self._wait_for_workers(deadline)
        return self.address

    def _exit_message(self, code: int) -> str:
        """Why the coordinator exited: the last line it wrote (one line, by design), and where."""
        log = self.state_dir / "logs" / "coordinator.log"
        last = ""
        with contextlib.suppress(OSError):
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            last = lines[-1].removeprefix("swarm-lsp node: ") if lines else ""
        why = f": {last}" if last else ""
        return f"the local coordinator exited ({code}){why}; see {log}"

    async def _wait_for_workers(self, deadline: float) -> None:
        from swarm_lsp.dispatch.client import DispatchClient

        client = await DispatchClient.connect(self.settings, self.address)
        try:
            while True:
                status = await client.status(recent=1)
                registered = {m.name for m in status.machines}
                waiting = []
                for role, proc in list(self.workers.items()):
                    if f"local-{role}" in registered:
                        continue
                    if proc.returncode == EXIT_ROLE_UNAVAILABLE:
                        self.skipped.setdefault(role, "role not installed in this build")
                        del self.workers[role]  # only running workers stay listed
                        continue
                    if proc.returncode is not None:
                        self.skipped.setdefault(
                            role,
                            f"worker exited ({proc.returncode}); see "
                            f"{self.state_dir / 'logs' / f'worker-{role}.log'}",
                        )
                        del self.workers[role]
                        continue
                    waiting.append(role)
                if not waiting or time.monotonic() > deadline:
                    for role in waiting:
                        self.skipped.setdefault(role, "worker did not register in time")
                    return
                await asyncio.sleep(0.1)
        finally:
            await client.close()

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the workers, then the coordinator; SIGKILL whatever is left after timeout."""
        procs = [*self.workers.values()]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        await self._reap(procs, timeout)
        if self.coordinator is not None:
            with contextlib.suppress(ProcessLookupError):
                self.coordinator.terminate()
            await self._reap([self.coordinator], timeout)
        self.workers.clear()
        self.coordinator = None
        if self._registered_port:
            local_token.unregister(self._registered_port, self.token_file)
            self._registered_port = 0
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @staticmethod
    async def _reap(procs: list[asyncio.subprocess.Process], timeout: float) -> None:
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
