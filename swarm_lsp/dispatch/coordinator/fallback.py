"""The local fallback: a worker process the coordinator starts on its own machine.

It registers like any other worker (``swarm-lsp worker --all-roles --fallback``), with a token
only this coordinator knows, and gets a task only when no other worker for the task's role is
connected (results say ``fallback: local``). Role code never runs in the coordinator's
process, so a slow role cannot stall its event loop and dispatch imports no worker code. The
process exits with the coordinator (it watches its parent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path

from swarm_lsp.dispatch.credentials import TokenTable
from swarm_lsp.dispatch.locality import is_wildcard, split_host_port

log = logging.getLogger(__name__)

NAME = "local"


class CoordinatorTokens:
    """The token table, plus the local worker's token (the guard accepts both)."""

    def __init__(self, table: TokenTable, local_token: str) -> None:
        self.table = table
        self.local_token = local_token.encode()

    def active(self) -> bool:
        return self.table.active()

    def accepts(self, token: bytes) -> bool:
        return secrets.compare_digest(token, self.local_token) or self.table.accepts(token)


def dial_address(listen: str) -> str:
    """Where a process on this machine reaches a coordinator listening on ``listen``."""
    host, port = split_host_port(listen)
    if not host or is_wildcard(host):
        return f"127.0.0.1:{port}"
    return listen


class LocalWorker:
    def __init__(self, state_dir: Path, capacity: int, token: str) -> None:
        self.state_dir = state_dir
        self.capacity = max(1, capacity)
        self.token = token
        self.proc: asyncio.subprocess.Process | None = None
        self.registered = asyncio.Event()

    async def start(self, address: str) -> None:
        env = dict(os.environ)
        env["SWARM_LSP_SWARM__TOKEN"] = self.token
        env["SWARM_LSP_PARENT_PID"] = str(os.getpid())
        env.pop("SWARM_LSP_SWARM__COORDINATOR", None)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "local-worker.log", "ab") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "swarm_lsp.cli",
                "worker",
                "--all-roles",
                "--fallback",
                "--name",
                NAME,
                "--capacity",
                str(self.capacity),
                "--coordinator",
                dial_address(address),
                "--cache-dir",
                str(self.state_dir / "local-worker"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
            )
        log.info("local fallback worker started (pid %s)", self.proc.pid)

    async def wait_registered(self, timeout: float) -> bool:
        """True once the local worker has registered (False after ``timeout`` or its exit)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.registered.wait(), timeout)
        return self.registered.is_set()

    async def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
